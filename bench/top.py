"""Complete accelerator: the system-test layers (and the demo layer on ``default``) on the
generated Verilog under Verilator with a DRAM without wait states, each checked bit-exact, with
the hardware counters next to the analytical model's (``gen.model.layer_model``)."""

import sys

from bench.common import load_result, markdown_table, save_figure, write_result
from rtl.config import preset

__all__ = ["layers", "report", "plots", "main"]

#: Counters the model predicts exactly.
EXACT = ("dram_rd", "dram_wr", "glb_rd", "glb_wr", "spad_rd", "spad_wr", "pe_active")
#: Phase counters; they sum to `cycles`.
PHASES = ("t_program", "t_load", "t_pass", "t_store", "t_sync")


def _runs():
    """``(variant, cfg, runs)``: every CONFIGS variant of the system test, then the demo layer."""
    from gen.__main__ import DEMO_LAYER
    from gen.layer import Layer
    from tests.test_top_cocotb import CONFIGS, layer_job, variant_runs
    for variant in CONFIGS:
        cfg, _, runs = variant_runs(variant)
        yield variant, cfg, runs
    cfg = preset("default")
    yield "demo", cfg, [layer_job(cfg, Layer.from_dict(DEMO_LAYER), 0)]


def layers():
    """One row per layer: cycles, utilisation, DRAM bytes, phase split and the model's figures."""
    from gen.model import layer_model
    from gen.runlayer import layer_stats, simulate
    from tests.test_top_cocotb import check_layer

    rows = []
    for variant, cfg, runs in _runs():
        print(f"  {variant} ({cfg.name}, {cfg.mac}): {len(runs)} layers on verilator",
              file=sys.stderr, flush=True)
        results = simulate(cfg, [job for job, _, _ in runs], sim="verilator")
        for (job, image, expected), r in zip(runs, results):
            check_layer(cfg, r, image, expected)          # a wrong result is no benchmark
            hw, model = r["counters"], layer_model(cfg, image).counters
            s = layer_stats(cfg, image.layer, hw)
            rows.append({"variant": variant, "config": cfg.name, "layer": image.layer.name,
                         "pa": image.layer.act_bits, "macs": s["macs"],
                         "passes": len(image.passes) * image.layer.N, "cycles": hw["cycles"],
                         "model_cycles": model["cycles"],
                         "model/rtl": model["cycles"] / hw["cycles"],
                         "accesses_exact": all(hw[k] == model[k] for k in EXACT),
                         "mac_util": s["mac_utilisation"], "pe_util": s["pe_utilisation"],
                         "dram_rd": hw["dram_rd"], "dram_wr": hw["dram_wr"],
                         **{k: hw[k] for k in PHASES}})
    return rows


def report(result):
    """Markdown: the per-layer table and the model's largest cycle error."""
    rows = result["rows"]
    worst = max(rows, key=lambda r: abs(r["model/rtl"] - 1))
    exact = sum(r["accesses_exact"] for r in rows)
    return (markdown_table(rows, ["variant", "layer", "pa", "macs", "passes", "cycles",
                                  "model_cycles", "model/rtl", "accesses_exact", "mac_util",
                                  "pe_util", "dram_rd", "dram_wr"])
            + f"\n\nModel vs RTL: largest cycle error {100 * abs(worst['model/rtl'] - 1):.2f}% "
              f"({worst['variant']} / {worst['layer']}); DRAM, GLB and spad accesses and "
              f"`pe_active` exact on {exact}/{len(rows)} layers.")


def plots(result, out_dir):
    """Model vs RTL cycles (scatter, log-log) and the phase split of every layer (stacked bars)."""
    import matplotlib.pyplot as plt
    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for variant in dict.fromkeys(r["variant"] for r in rows):
        sel = [r for r in rows if r["variant"] == variant]
        ax.scatter([r["cycles"] for r in sel], [r["model_cycles"] for r in sel], label=variant,
                   s=18)
    lo = min(r["cycles"] for r in rows) * 0.8
    hi = max(r["cycles"] for r in rows) * 1.25
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="model = RTL")
    ax.set(xscale="log", yscale="log", xlabel="RTL cycles (Verilator)", ylabel="model cycles",
           title="Model vs RTL, system-test layers")
    ax.legend(fontsize=7)
    scatter = save_figure(fig, out_dir, "model_vs_rtl")

    fig, ax = plt.subplots(figsize=(9, 3.8))
    bottom = [0.0] * len(rows)
    for phase in PHASES:
        share = [r[phase] / r["cycles"] for r in rows]
        ax.bar(range(len(rows)), share, bottom=bottom, label=phase[2:])
        bottom = [b + s for b, s in zip(bottom, share)]
    ax.set_xticks(range(len(rows)), [f"{r['variant'][:3]}: {r['layer']}" for r in rows],
                  rotation=75, fontsize=6)
    ax.set(ylabel="share of cycles", title="Where the cycles go (t_* counters)")
    ax.legend(fontsize=7, ncol=len(PHASES))
    return [scatter, save_figure(fig, out_dir, "top_phases")]


def main():
    write_result("top", layers())
    print(report(load_result("top")))


if __name__ == "__main__":
    main()
