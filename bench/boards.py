"""FPGA boards: bitstream of the board SoC per board (resources, Fmax, MAC lanes, build time).
Slow: place and route of the 85F design takes tens of minutes."""

import json

from bench.common import markdown_table, write_result

__all__ = ["main"]


def main():
    from gen.boards import BOARDS, REPO, build_bitstream
    rows = []
    for name in BOARDS:
        try:
            report = build_bitstream(name)
        except ValueError as e:                       # does not fit: the report says how far
            report = json.loads((REPO / "build" / "bitstream" / name / "report.json").read_text())
            report["error"] = str(e)
        res = report["resources"]
        rows.append({"board": name, "mac_lanes": report["mac_lanes"],
                     **{k: f"{res[k]['used']}/{res[k]['available']}" if k in res else "-"
                        for k in ("lut", "ff", "bram", "dsp")},
                     "fmax_mhz": max(report["fmax_mhz"].values(), default=0.0),
                     "clock_mhz": report["clock_mhz"], "build_s": report["build_s"],
                     "fits": report["error"] is None})
    print(markdown_table(rows, ["board", "mac_lanes", "lut", "ff", "bram", "dsp", "fmax_mhz",
                                "clock_mhz", "build_s", "fits"]))
    write_result("boards", rows)


if __name__ == "__main__":
    main()
