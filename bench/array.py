"""PE array: utilisation on the array test layers and the cost of elaborating it to Verilog.
(Simulation speed of the whole accelerator: ``bench/simspeed.py``.)"""

import sys
import time

from bench.common import load_result, markdown_table, write_result
from rtl.config import preset

__all__ = ["utilisation", "elaboration", "report", "main"]

#: (config, shape, pa) of the utilisation rows: the array test layers, unstalled.
UTIL_LAYERS = [
    ("tiny", dict(C=2, H=7, W=7, M=4, R=3, S=3, stride=1), 8),
    ("tiny", dict(C=2, H=7, W=7, M=4, R=3, S=3, stride=1), 2),
    ("tiny", dict(C=2, H=7, W=5, M=2, R=5, S=2, stride=1), 4),
    ("tiny", dict(C=4, H=9, W=5, M=4, R=1, S=3, stride=1), 3),
    ("tiny", dict(C=2, H=9, W=8, M=2, R=2, S=2, stride=2), 8),
]

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


def report(result):
    """Markdown: utilisation table (with the share of the mapping's ceiling) and elaboration."""
    util, elab = result["rows"]["utilisation"], result["rows"]["elaboration"]
    for r in util:
        r["of_ceiling"] = r["utilisation"] / r["pe_occupancy"]
    return "\n\n".join([
        markdown_table(util, ["config", "C", "H", "W", "M", "R", "S", "stride", "pa", "passes",
                              "cycles", "utilisation", "pe_occupancy", "of_ceiling"]),
        "Elaboration of the array to Verilog (one shared PE module instantiated per position):",
        markdown_table(elab, ["config", "pes", "elab_s", "verilog_lines", "verilog_kb"])])


def main():
    print("array utilisation (Amaranth simulation, no stalls)", file=sys.stderr)
    util = utilisation()
    print("elaboration", file=sys.stderr)
    elab = elaboration()
    write_result("array", {"utilisation": util, "elaboration": elab})
    print(report(load_result("array")))


if __name__ == "__main__":
    main()
