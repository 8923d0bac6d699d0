"""FPGA boards: bitstream of the board SoC per board (resources, Fmax, MAC lanes, build time).
Slow: place and route of the 85F design takes tens of minutes. ``python -m bench.boards
--reuse`` tabulates the reports of the last ``make bitstream`` runs without rebuilding."""

import json

from bench.common import load_result, markdown_table, write_result

__all__ = ["report", "main"]


def row(name, rep):
    """One bench row from a board's ``report.json``."""
    res = rep["resources"]
    cfg = rep["config"]
    fmax = max(rep["fmax_mhz"].values(), default=0.0)
    routed = rep["error"] is None and rep.get("bitstream") is not None
    # peak 8-bit MACs per second at the clock the design runs at (serial: 8 cycles a MAC)
    per_cycle = rep["mac_lanes"] / (8 if cfg["mac"] == "serial" else 1)
    return {"board": name, "array": f"{cfg['rows']}x{cfg['cols']}x{cfg['lanes']}",
            "mac_lanes": rep["mac_lanes"],
            **{k: f"{res[k]['used']}/{res[k]['available']}" if k in res else "-"
               for k in ("lut", "ff", "bram", "dsp")},
            "fmax_mhz": fmax, "clock_mhz": rep["clock_mhz"],
            "timing_met": rep.get("timing_met", False),
            "peak_gmacs": per_cycle * rep["clock_mhz"] / 1e3 if routed else 0.0,
            "build_s": rep["build_s"], "bitstream": routed}


def main(reuse=False):
    """Build every board (``reuse``: take the reports of the last builds instead) and tabulate."""
    from gen.boards import BOARDS, REPO, build_bitstream
    rows = []
    for name in BOARDS:
        path = REPO / "build" / "bitstream" / name / "report.json"
        if not reuse:
            try:
                build_bitstream(name)
            except ValueError as e:                   # no fit or no timing: the report says
                print(f"  {e}")
        if path.exists():
            rows.append(row(name, json.loads(path.read_text())))
    write_result("boards", rows)
    print(report(load_result("boards")))


def report(result):
    """Markdown: one row per board."""
    return markdown_table(result["rows"], ["board", "array", "mac_lanes", "lut", "ff", "bram",
                                           "dsp", "fmax_mhz", "clock_mhz", "timing_met",
                                           "peak_gmacs", "build_s", "bitstream"])


if __name__ == "__main__":
    import sys
    main(reuse="--reuse" in sys.argv[1:])
