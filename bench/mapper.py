"""Mapper: AlexNet CONV1-5 mapped on the ``eyeriss`` preset next to the published Eyeriss chip
numbers, and the mapper's speed. (Model vs RTL counters: ``bench/top.py``.)"""

import time

from bench.common import (grouped_bars, load_result, markdown_table, save_figure,
                          write_result)
from rtl.config import preset

__all__ = ["EYERISS_CHIP", "eyeriss_anchor", "report", "plots", "main"]

#: Eyeriss (JSSC 2017) AlexNet CONV1-5 at batch 4, 200 MHz: active PEs, processing time (ms),
#: DRAM traffic (MB).
EYERISS_CHIP = {
    "alexnet.conv1": (154, 16.5, 5.0),
    "alexnet.conv2": (135, 39.2, 4.0),
    "alexnet.conv3": (156, 21.8, 3.0),
    "alexnet.conv4": (156, 16.0, 2.1),
    "alexnet.conv5": (156, 10.0, 1.3),
}
CLOCK_MHZ = 200


def eyeriss_anchor(batch=4):
    """AlexNet CONV1-5 mapped on ``eyeriss`` (cycles objective) with the chip's numbers."""
    from gen.mapper import map_layer
    from gen.networks import network
    cfg = preset("eyeriss")
    rows = []
    for lay in network("alexnet", batch=batch, act_bits=16, weight_bits=16):
        t0 = time.perf_counter()
        res = map_layer(cfg, lay, detailed=0)
        t_search = time.perf_counter() - t0
        res = map_layer(cfg, lay)
        t_total = time.perf_counter() - t0 - t_search
        e = res.estimate
        pes, ms, mb = EYERISS_CHIP[lay.name]
        chip_util = lay.macs / (ms * 1e-3 * CLOCK_MHZ * 1e6 * cfg.pes)
        m = res.mapping
        rows.append({
            "layer": lay.name, "mapping": f"q{m.chans} p{m.filters} mg{m.mg} eb{m.eb} "
                                          f"{m.order}{' chain' if m.chain else ''}",
            "PEs": e.active_pes, "chip_PEs": pes,
            "ms": round(e.cycles / (CLOCK_MHZ * 1e3), 2), "chip_ms": ms,
            "MAC_util": round(e.mac_utilisation(cfg, lay), 3), "chip_MAC_util": round(chip_util, 3),
            "DRAM_MB": round((e.dram_rd + e.dram_wr) / 1e6, 2), "chip_DRAM_MB": mb,
            "DRAM_acc_per_MAC": round((e.dram_rd + e.dram_wr) / 2 / lay.macs, 4),
            "search_s": round(t_search, 2), "map_and_model_s": round(t_total, 2)})
    return rows


def report(result):
    """Markdown: the per-layer table next to the chip and the DRAM totals."""
    rows = result["rows"]
    model = sum(r["DRAM_MB"] for r in rows)
    chip = sum(r["chip_DRAM_MB"] for r in rows)
    ms, chip_ms = sum(r["ms"] for r in rows), sum(r["chip_ms"] for r in rows)
    return (markdown_table(rows, ["layer", "mapping", "PEs", "chip_PEs", "ms", "chip_ms",
                                  "MAC_util", "chip_MAC_util", "DRAM_MB", "chip_DRAM_MB",
                                  "DRAM_acc_per_MAC", "search_s", "map_and_model_s"])
            + f"\n\nCONV1-5 at batch {result['meta']['batch']}, "
              f"{result['meta']['clock_mhz']} MHz: {ms:.1f} ms (chip {chip_ms:.1f} ms, "
              f"{ms / chip_ms:.2f}x), DRAM {model:.1f} MB (chip {chip:.1f} MB, "
              f"{model / chip:.2f}x).")


def plots(result, out_dir):
    """Per-layer MAC utilisation and DRAM traffic, model vs the Eyeriss chip."""
    import matplotlib.pyplot as plt
    rows = result["rows"]
    names = [r["layer"].split(".")[-1] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, (ours, chip, label) in zip(axes, (("MAC_util", "chip_MAC_util", "MAC utilisation"),
                                              ("DRAM_MB", "chip_DRAM_MB", "DRAM traffic (MB)"))):
        grouped_bars(ax, names, {"this generator (model, eyeriss preset)": [r[ours] for r in rows],
                                 "Eyeriss chip (JSSC 2017)": [r[chip] for r in rows]})
        ax.set_title(f"AlexNet, batch {result['meta']['batch']}: {label}")
    return [save_figure(fig, out_dir, "eyeriss_alexnet")]


def main():
    rows = eyeriss_anchor()
    write_result("mapper", rows, {"batch": 4, "clock_mhz": CLOCK_MHZ})
    print(report(load_result("mapper")))


if __name__ == "__main__":
    main()
