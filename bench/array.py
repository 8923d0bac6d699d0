"""PE array: utilisation on test layers, elaboration cost, Verilator build time and simulation speed."""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.common import markdown_table, write_result
from rtl.config import preset

__all__ = ["utilisation", "elaboration", "simulation_speed"]

#: (config, shape, pa) of the utilisation rows: the array test layers, unstalled.
UTIL_LAYERS = [
    ("tiny", dict(C=2, H=7, W=7, M=4, R=3, S=3, stride=1), 8),
    ("tiny", dict(C=2, H=7, W=7, M=4, R=3, S=3, stride=1), 2),
    ("tiny", dict(C=2, H=7, W=5, M=2, R=5, S=2, stride=1), 4),
    ("tiny", dict(C=4, H=9, W=5, M=4, R=1, S=3, stride=1), 3),
    ("tiny", dict(C=2, H=9, W=8, M=2, R=2, S=2, stride=2), 8),
]

#: Layers of the simulation-speed runs (cocotb on generated Verilog).
SPEED_LAYERS = {
    "tiny": dict(shape=dict(C=2, H=8, W=10, M=2, R=3, S=3, stride=1), pa=8, act_signed=False),
    "eyeriss": dict(shape=dict(C=2, H=16, W=12, M=2, R=3, S=3, stride=1), pa=8,
                    act_signed=False),
}


def utilisation():
    """MAC utilisation = summed MAC-active cycles / (PEs x cycles), and the mapping's ideal."""
    from gen.rowstationary import ConvShape
    from gen.pe_model import pe_mac_bound
    from tests.test_array import check_layer      # Amaranth simulation of the array, checked

    rows = []
    for name, shape_d, pa in UTIL_LAYERS:
        cfg = preset(name)
        shape = ConvShape(**shape_d)
        driver, passes = check_layer(cfg, shape, seed=1, pa=pa, stall_prob=0.0)
        cycles = sum(driver.pass_cycles)
        used = sum(len(ap.pe_roles()) * pe_mac_bound(cfg, ap.pe) * ap.pe.cols for ap in passes)
        ideal = sum(len(ap.pe_roles()) for ap in passes) / (cfg.pes * len(passes))
        rows.append({"config": name, **shape_d, "pa": pa, "passes": len(passes),
                     "cycles": cycles, "mac_active": driver.stats["mac_active"],
                     "utilisation": driver.stats["mac_active"] / (cfg.pes * cycles),
                     "pe_occupancy": ideal, "mac_cycles_planned": used})
        print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def elaboration(names=("tiny", "default", "eyeriss")):
    """Seconds to elaborate the array to Verilog (one shared PE module) and its size, per preset."""
    from gen.verilog import array_verilog
    rows = []
    for name in names:
        cfg = preset(name)
        t0 = time.perf_counter()
        text = array_verilog(cfg)
        rows.append({"config": name, "pes": cfg.pes, "elab_s": time.perf_counter() - t0,
                     "verilog_lines": text.count("\n"), "verilog_kb": len(text) / 1024})
        print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def simulation_speed(names=("tiny", "eyeriss"), sims=("verilator", "icarus")):
    """Cold build time and cycles/s of the array running a layer in cocotb, per simulator."""
    from gen.verilog import array_verilog, write_build
    from sim_tb.runner import run_cocotb

    rows = []
    os.environ["OBJCACHE"] = ""                   # cold C++ builds: no ccache
    for name in names:
        cfg = preset(name)
        for sim in sims:
            with tempfile.TemporaryDirectory() as tmp:
                vpath = write_build(cfg, tmp, name="pe_array", text=array_verilog(cfg))
                report = Path(tmp) / "report.json"
                params = {"config": cfg.to_dict(), "seed": 1, "stall_prob": 0.0,
                          "layers": [SPEED_LAYERS[name]], "report": str(report)}
                times = run_cocotb(vpath, "pe_array", "sim_tb.tb_array", sim, Path(tmp) / "sim",
                                   params=params)
                layer = json.loads(report.read_text())[0]
            rows.append({"config": name, "pes": cfg.pes, "sim": sim,
                         "build_s": times["build_s"], "cycles": layer["cycles"],
                         "cycles_per_s": layer["cycles_per_s"]})
            print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def main():
    print("array utilisation (Amaranth simulation, no stalls)", file=sys.stderr)
    util = utilisation()
    print("elaboration", file=sys.stderr)
    elab = elaboration()
    print("simulation speed (cocotb, cold builds)", file=sys.stderr)
    speed = simulation_speed()
    path = write_result("array", {"utilisation": util, "elaboration": elab, "speed": speed})
    print(markdown_table(util, ["config", "C", "H", "W", "M", "R", "S", "stride", "pa", "passes",
                                "cycles", "utilisation", "pe_occupancy"]))
    print()
    print(markdown_table(elab, ["config", "pes", "elab_s", "verilog_lines", "verilog_kb"]))
    print()
    print(markdown_table(speed, ["config", "pes", "sim", "build_s", "cycles", "cycles_per_s"]))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
