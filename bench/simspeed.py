"""Simulation speed: the demo layer (``make demo``) on the generated Verilog of ``tiny``,
``default`` and ``eyeriss`` under Verilator and Icarus, in the cocotb bench of the system tests
(cocotbext-axi RAM as DRAM, CSR polling: the speed a user's ``run-layer`` sees). Every run is
checked bit-exact. Builds reuse ``build/sim/`` (ccache on); cold build times: ``bench/build.py``."""

import sys

from bench.common import (grouped_bars, load_result, markdown_table, save_figure,
                          write_result)
from rtl.config import preset

__all__ = ["PRESETS", "SIMULATORS", "measure", "report", "plots", "main"]

PRESETS = ("tiny", "default", "eyeriss")
SIMULATORS = ("verilator", "icarus")


def measure():
    """One row per (preset, simulator): cycles, wall seconds of the run, cycles/s, build s."""
    from gen.__main__ import DEMO_LAYER
    from gen.layer import Layer
    from gen.runlayer import simulate
    from tests.test_top_cocotb import check_layer, layer_job

    rows = []
    layer = Layer.from_dict(DEMO_LAYER)
    for name in PRESETS:
        cfg = preset(name)
        job, image, expected = layer_job(cfg, layer, 0)
        for sim in SIMULATORS:
            print(f"  {name} on {sim} (first run builds the model)", file=sys.stderr, flush=True)
            r, = simulate(cfg, [job], sim=sim)
            check_layer(cfg, r, image, expected)
            cycles = r["counters"]["cycles"]
            rows.append({"config": name, "pes": cfg.pes, "lanes": cfg.lanes, "sim": sim,
                         "cycles": cycles, "wall_s": r["wall_s"],
                         "cycles_per_s": cycles / r["wall_s"], "build_s": r["build_s"]})
            print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def report(result):
    """Markdown: the table and Verilator's speed over Icarus' per preset."""
    rows = result["rows"]
    speed = {(r["config"], r["sim"]): r["cycles_per_s"] for r in rows}
    ratios = [f"{name} {speed[(name, 'verilator')] / speed[(name, 'icarus')]:.1f}x"
              for name in dict.fromkeys(r["config"] for r in rows)
              if (name, "icarus") in speed and (name, "verilator") in speed]
    return (markdown_table(rows, ["config", "pes", "lanes", "sim", "cycles", "wall_s",
                                  "cycles_per_s", "build_s"])
            + f"\n\nVerilator over Icarus (cycles/s, same run): {', '.join(ratios)}.")


def plots(result, out_dir):
    """Cycles/s per preset and simulator (log scale)."""
    import matplotlib.pyplot as plt
    rows = result["rows"]
    names = list(dict.fromkeys(r["config"] for r in rows))
    speed = {(r["config"], r["sim"]): r["cycles_per_s"] for r in rows}
    pes = {r["config"]: r["pes"] for r in rows}
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    grouped_bars(ax, [f"{n}\n({pes[n]} PEs)" for n in names],
                 {sim: [speed.get((n, sim), 0) for n in names] for sim in SIMULATORS})
    ax.set(yscale="log", ylabel="simulated cycles / s",
           title="Simulation speed, demo layer, whole accelerator")
    return [save_figure(fig, out_dir, "simspeed")]


def main():
    write_result("simspeed", measure())
    print(report(load_result("simspeed")))


if __name__ == "__main__":
    main()
