"""Mapper and analytical model: model vs RTL counters on the system-test layers (one Verilator
run, ideal DRAM), mapping speed, and AlexNet CONV1-5 on the ``eyeriss`` preset next to the
published Eyeriss chip numbers."""

import sys
import time

from bench.common import markdown_table, write_result
from rtl.config import preset

__all__ = ["EYERISS_CHIP", "model_vs_rtl", "eyeriss_anchor", "main"]

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


def model_vs_rtl():
    """Every system-test layer on Verilator without DRAM wait states, counters next to the
    model's: one row per layer with both cycle counts, their ratio and the exact counters'
    agreement."""
    from gen.model import layer_model
    from gen.runlayer import simulate
    from tests.test_top_cocotb import CONFIGS, check_layer, variant_runs

    rows = []
    for variant in CONFIGS:
        cfg, _, runs = variant_runs(variant)
        print(f"  {variant}: {len(runs)} layers on verilator", file=sys.stderr, flush=True)
        results = simulate(cfg, [job for job, _, _ in runs], sim="verilator")
        for (job, image, expected), r in zip(runs, results):
            check_layer(cfg, r, image, expected)
            hw, model = r["counters"], layer_model(cfg, image).counters
            exact = all(hw[k] == model[k] for k in ("dram_rd", "dram_wr", "glb_rd", "glb_wr",
                                                     "spad_rd", "spad_wr", "pe_active"))
            rows.append({"variant": variant, "layer": image.layer.name,
                         "rtl_cycles": hw["cycles"], "model_cycles": model["cycles"],
                         "model/rtl": round(model["cycles"] / hw["cycles"], 4),
                         "rtl_t_pass": hw["t_pass"], "model_t_pass": model["t_pass"],
                         "accesses_exact": exact})
    return rows


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


def main():
    rows = model_vs_rtl()
    worst = max(abs(r["model/rtl"] - 1) for r in rows)
    print(markdown_table(rows, ["variant", "layer", "rtl_cycles", "model_cycles", "model/rtl",
                                "accesses_exact"]))
    print(f"largest cycle error {100 * worst:.2f}%; accesses exact on "
          f"{sum(r['accesses_exact'] for r in rows)}/{len(rows)} layers")
    write_result("model_vs_rtl", rows, {"worst_cycle_error": worst})
    rows = eyeriss_anchor()
    print(markdown_table(rows, ["layer", "mapping", "PEs", "chip_PEs", "ms", "chip_ms",
                                "MAC_util", "chip_MAC_util", "DRAM_MB", "chip_DRAM_MB",
                                "DRAM_acc_per_MAC", "search_s", "map_and_model_s"]))
    total = sum(r["DRAM_MB"] for r in rows)
    print(f"DRAM total {total:.1f} MB (chip 15.4 MB)")
    write_result("eyeriss_alexnet", rows, {"batch": 4, "clock_mhz": CLOCK_MHZ,
                                           "dram_total_mb": total})


if __name__ == "__main__":
    main()
