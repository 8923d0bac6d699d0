"""Run layers on the generated Verilog of the accelerator (cocotb, Verilator or Icarus).

:func:`simulate` runs a list of :class:`SimJob` (a DRAM image and its program) in one simulator
session on one build of the top; :func:`run_layer` runs one :class:`gen.layer.Layer` from its
tensors and checks the result against the golden model.
"""

import fcntl
import hashlib
import json
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["SimJob", "LayerRun", "simulate", "run_layer", "run_layer_on_board", "serve_board",
           "layer_stats", "DEFAULT_SIM"]

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SIM = "verilator"


@dataclass
class SimJob:
    """One program run: DRAM ``image`` bytes from address 0, the program at ``prog_addr``,
    ``read`` byte ranges to return, ``faults`` byte ranges that answer SLVERR, the controller's
    ``timeout`` CSR and the bench watchdog ``max_cycles``."""

    name: str
    image: bytes
    prog_addr: int = 0
    read: list = field(default_factory=list)
    faults: list = field(default_factory=list)
    timeout: int = 0
    max_cycles: int = 1_000_000


def build_dir_for(cfg, sim, waves=False):
    """Build folder of the top for ``cfg`` under ``sim`` (keyed by the config, reused; waveform
    builds apart, as they are compiled differently)."""
    key = hashlib.sha1(cfg.to_json().encode()).hexdigest()[:10]
    return REPO / "build" / "sim" / f"{cfg.name}-{key}-{sim}{'-waves' * waves}"


class _echo_progress:
    """While active, print the bench's ``PROGRESS`` lines as they appear in the simulator log
    (the runner sends simulator output to the log file, not the terminal)."""

    def __init__(self, log, enabled):
        self.log = Path(log)
        self.enabled = enabled
        self.stop = threading.Event()

    def _follow(self):
        while not self.log.exists() and not self.stop.is_set():
            time.sleep(0.2)
        if not self.log.exists():
            return
        with self.log.open() as f:
            while True:
                line = f.readline()
                if line.startswith("PROGRESS "):
                    print(line[len("PROGRESS "):].rstrip(), flush=True)
                elif not line:
                    if self.stop.is_set():
                        return
                    time.sleep(0.2)

    def __enter__(self):
        if self.enabled:
            self.log.unlink(missing_ok=True)
            self.thread = threading.Thread(target=self._follow, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.stop.set()
            self.thread.join()


def simulate(cfg, jobs, sim=DEFAULT_SIM, waves=False, pause=0.0, seed=0, progress_s=0.0,
             build_dir=None):
    """Run ``jobs`` one after another on the top for ``cfg``; returns one result dict per job:
    ``status``, ``error_code``, ``error_pc``, ``counters``, ``read`` (bytes per range),
    ``wall_s``. The Verilog is regenerated only when it changes, so rebuilds are incremental."""
    out = Path(build_dir) if build_dir else build_dir_for(cfg, sim, waves)
    out.mkdir(parents=True, exist_ok=True)
    # one run at a time per build folder (parallel test workers share builds)
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _simulate_locked(cfg, jobs, sim, waves, pause, seed, progress_s, out)


def _simulate_locked(cfg, jobs, sim, waves, pause, seed, progress_s, out):
    from gen.verilog import TOP_NAME, top_verilog
    from rtl.top import COUNTERS, csr_map
    from sim_tb.runner import run_cocotb

    vpath = out / f"{TOP_NAME}.v"
    text = top_verilog(cfg)
    if not vpath.exists() or vpath.read_text() != text:
        vpath.write_text(text)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        specs = []
        for i, job in enumerate(jobs):
            image = Path(tmp) / f"job{i}.bin"
            image.write_bytes(job.image)
            specs.append({"name": job.name, "image": str(image), "prog_addr": job.prog_addr,
                          "read": [list(r) for r in job.read],
                          "faults": [list(r) for r in job.faults],
                          "timeout": job.timeout, "max_cycles": job.max_cycles,
                          "result": str(Path(tmp) / f"job{i}.json")})
        params = {"config": cfg.to_dict(), "csr": csr_map(cfg), "counters": list(COUNTERS),
                  "jobs": specs, "pause": pause, "seed": seed, "progress_s": progress_s}
        if progress_s > 0:
            print(f"building/running the {sim} model in {out} (a new config's first build "
                  f"takes a while; rebuilds are incremental)", flush=True)
        with _echo_progress(out / "sim" / "sim.log", enabled=progress_s > 0):
            run = run_cocotb(vpath, TOP_NAME, "sim_tb.tb_top", sim, out / "sim", params=params,
                             waves=waves)
        results = []
        for spec in specs:
            r = json.loads(Path(spec["result"]).read_text())
            r["read"] = [bytes.fromhex(h) for h in r["read"]]
            r["build_s"] = run["build_s"]
            results.append(r)
    return results


def layer_stats(cfg, layer, counters):
    """Counters plus derived figures: MACs of the layer, PE utilisation (active PE cycles over
    PEs x cycles) and MAC utilisation (MACs over cycles x the peak for this precision: PEs x
    lanes MACs per cycle, divided by ``pa`` for the serial MAC)."""
    cycles = max(counters["cycles"], 1)
    peak = cfg.pes * cfg.lanes / (layer.act_bits if cfg.mac == "serial" else 1)
    return {**counters, "macs": layer.macs,
            "pe_utilisation": counters["pe_active"] / (cfg.pes * cycles),
            "mac_utilisation": layer.macs / (cycles * peak)}


@dataclass
class LayerRun:
    """Outcome of :func:`run_layer`: the output tensor (``None`` when the run failed), the golden
    one, hardware status and :func:`layer_stats`."""

    layer: object
    output: object
    expected: object
    status: int
    error: str
    stats: dict
    wall_s: float
    build_s: float

    @property
    def passed(self):
        return self.output is not None and np.array_equal(self.output, self.expected)

    def mismatches(self):
        if self.output is None:
            return None
        return int(np.count_nonzero(self.output != self.expected))


def run_layer(cfg, layer, x, w, bias=None, sim=DEFAULT_SIM, waves=False, pause=0.0, seed=0,
              progress_s=0.0):
    """Run ``layer`` on ``x``/``w``/``bias`` in simulation; returns a :class:`LayerRun`.

    Raises ``ValueError`` when the arrays do not fit the layer or the layer does not fit ``cfg``.
    """
    from gen.program import layer_image

    image = layer_image(cfg, layer, x, w, bias)
    expected = layer.golden(x, w, bias)
    per_pe = layer.macs * (layer.act_bits if cfg.mac == "serial" else 1) // cfg.lanes
    job = SimJob(layer.name or "layer", image.data, image.prog_addr,
                 read=image.read_ranges(),
                 max_cycles=200_000 + 4 * per_pe + 64 * len(image.data) // cfg.dram_bytes)
    r = simulate(cfg, [job], sim=sim, waves=waves, pause=pause, seed=seed,
                 progress_s=progress_s)[0]
    return _layer_run(cfg, layer, image, expected, r)


def _layer_run(cfg, layer, image, expected, r):
    """The :class:`LayerRun` of a finished run ``r`` (status, error_code, counters, the image's
    read regions in ``read``, optional ``wall_s``/``build_s``)."""
    from rtl.control import ERRORS
    names = {v: k for k, v in ERRORS.items()}
    error = names.get(r["error_code"], f"code {r['error_code']}") if r["status"] & 4 else ""
    output = None
    if not error:
        regions = dict(zip((a for a, _ in image.read_ranges()), r["read"]))
        output = image.output(lambda addr, n: regions[addr][:n])
    return LayerRun(layer=layer, output=output, expected=expected, status=r["status"],
                    error=error, stats=layer_stats(cfg, layer, r["counters"]),
                    wall_s=r.get("wall_s", 0.0), build_s=r.get("build_s", 0.0))


def run_layer_on_board(cfg, layer, x, w, bias, port, baud=115_200, timeout_s=10.0,
                       mem_bytes=None):
    """Run ``layer`` on a board over its serial ``port`` (the SoC of gen/boards.py, built for
    ``cfg``, with ``mem_bytes`` of on-chip RAM as DRAM): the same compile and golden check as
    :func:`run_layer`, the host side of :func:`gen.hostlink.layer_session` over a
    :class:`gen.hostlink.SerialLink`. A DRAM image larger than ``mem_bytes`` is a
    ``ValueError`` before anything is sent."""
    from gen.hostlink import SerialLink, layer_session, run_session
    from gen.program import layer_image
    image = layer_image(cfg, layer, x, w, bias)
    if mem_bytes is not None and len(image.data) > mem_bytes:
        raise ValueError(f"layer: its DRAM image ({len(image.data):,} B: program, filters, "
                         f"inputs and outputs) exceeds the board's on-chip memory "
                         f"({mem_bytes:,} B)")
    expected = layer.golden(x, w, bias)
    link = SerialLink(port, baud, timeout_s)
    t0 = time.perf_counter()
    try:
        r = run_session(layer_session(cfg, image.data, image.prog_addr, image.read_ranges(),
                                      max_polls=1_000_000), link.run)
    finally:
        link.close()
    r["wall_s"] = time.perf_counter() - t0
    return _layer_run(cfg, layer, image, expected, r)


def serve_board(name, port, sim=DEFAULT_SIM, divisor=4, ready_file=None, max_cycles=500_000_000,
                overrides=()):
    """Simulate board ``name``'s SoC (gen/boards.py; ``overrides`` change its config as
    ``--set`` does) on its generated Verilog, its UART served
    on TCP ``port`` of 127.0.0.1 (``divisor`` clock cycles per UART bit), so that
    ``run-layer --board socket://127.0.0.1:PORT`` runs without a board. Serves one connection
    and returns when the client closes it (or after ``max_cycles``); ``ready_file`` is created
    once the simulation listens. The build is kept in ``build/sim/soc-<name>-<sim>``."""
    from gen.boards import board
    from gen.verilog import SOC_NAME, soc_verilog
    from sim_tb.runner import run_cocotb
    b = board(name, overrides)
    out = REPO / "build" / "sim" / f"soc-{b.name}-{sim}"
    out.mkdir(parents=True, exist_ok=True)
    vpath = out / f"{SOC_NAME}.v"
    text = soc_verilog(b.cfg, b.mem_bytes, divisor)
    if not vpath.exists() or vpath.read_text() != text:
        vpath.write_text(text)
    params = {"divisor": divisor, "socket_port": port, "max_cycles": max_cycles,
              **({"ready_file": str(ready_file)} if ready_file else {})}
    run_cocotb(vpath, SOC_NAME, "sim_tb.tb_soc", sim, out / "sim", params=params)
