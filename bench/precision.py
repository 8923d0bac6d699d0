"""Precision: cycles of the serial MAC at fixed 8 bits, at Stripes-style per-layer precisions and
with dynamic precision (zero skipping and significant bits only), against the parallel MAC, on
the trained digits CNN and on uniformly random 8-bit data of the same shapes; and the DRAM
traffic of the activations with the precision-packed format (``pack_group`` 8, with dynamic
precision) against the unpacked runs.

Every row runs the layers on the generated Verilog (Verilator, DRAM without wait states) of the
``default`` configuration, layer by layer (each layer's input is the previous layer's output
read back), checked bit-exact against the golden model; the model's cycles are listed beside."""

import numpy as np

from bench.common import (grouped_bars, load_result, markdown_table, save_figure,
                          write_result)

__all__ = ["report", "plots", "main"]

BATCH = 8


def _variants():
    from gen.digits import per_layer_precisions
    from rtl.config import preset
    base = preset("default")
    serial, dynamic = base, base.replace(dynamic_precision=True)
    return [("serial pa=8", serial, (8, 8, 8)),
            ("serial per-layer pa", serial, per_layer_precisions()),
            ("dynamic pa=8", dynamic, (8, 8, 8)),
            ("parallel", base.replace(mac="parallel"), (8, 8, 8)),
            ("dynamic + packed DRAM", dynamic.replace(pack_group=8), (8, 8, 8))]


def _run(cfg, net, x, random_data, seed):
    """Run the network's layers on ``x`` (or, with ``random_data``, each layer on uniform random
    activations); returns per-layer rows."""
    from gen.model import layer_model
    from gen.program import layer_image
    from gen.runlayer import SimJob, simulate
    rows = []
    rng = np.random.default_rng(seed)
    act = x
    for layer, w, b in zip(net.layers(len(x)), net.weights, net.biases):
        if random_data:
            act = rng.integers(0, 1 << layer.act_bits, layer.input_shape)
        image = layer_image(cfg, layer, act, w, b, pack=bool(cfg.pack_group))
        result, = simulate(cfg, [SimJob(layer.name, image.data, image.prog_addr,
                                        read=image.read_ranges(), max_cycles=5_000_000)])
        if result["status"] != 0b010:
            raise RuntimeError(f"{layer.name}: hardware status {result}")
        regions = dict(zip((a for a, _ in image.read_ranges()), result["read"]))
        out = image.output(lambda addr, n: regions[addr][:n])
        np.testing.assert_array_equal(out, layer.golden(act, w, b), err_msg=layer.name)
        c = result["counters"]
        rows.append({"layer": layer.name, "pa": layer.act_bits, "cycles": c["cycles"],
                     "t_pass": c["t_pass"], "pe_active": c["pe_active"],
                     "model_cycles": layer_model(cfg, image).counters["cycles"],
                     "dram_bytes": c["dram_rd"] + c["dram_wr"],
                     # input activations loaded plus outputs stored (the only writes)
                     "act_bytes": image.input_bytes + c["dram_wr"],
                     "zeros": float((act == 0).mean())})
        act = out
    return rows


def main():
    from gen.digits import digits_cnn
    rows = []
    for data in ("digits", "random"):
        for name, cfg, bits in _variants():
            net = digits_cnn(0, bits)
            x = net.test_x[:BATCH]
            for r in _run(cfg, net, x, data == "random", seed=1):
                rows.append({"data": data, "variant": name, **r})
            print(f"{data:7s} {name:20s} done", flush=True)
    # ratios against the fixed-precision serial run and the parallel run of the same layer
    for r in rows:
        ref = {v["variant"]: v for v in rows if v["data"] == r["data"] and v["layer"] == r["layer"]}
        r["speedup_vs_serial8"] = ref["serial pa=8"]["cycles"] / r["cycles"]
        r["speedup_vs_parallel"] = ref["parallel"]["cycles"] / r["cycles"]
        r["mac_speedup_vs_serial8"] = ref["serial pa=8"]["pe_active"] / r["pe_active"]
        r["act_bytes_vs_serial8"] = r["act_bytes"] / ref["serial pa=8"]["act_bytes"]
        r["act_bytes_vs_parallel"] = r["act_bytes"] / ref["parallel"]["act_bytes"]
    conv = {}
    for r in rows:
        if r["layer"] != "classifier":
            key = (r["data"], r["variant"])
            conv[key] = [a + b for a, b in zip(conv.get(key, [0, 0, 0, 0]), [
                r["cycles"], r["pe_active"], r["act_bytes"], r["dram_bytes"]])]
    summary = [{"data": d, "variant": v, "conv_cycles": c, "conv_mac_cycles": p,
                "speedup_vs_serial8": conv[(d, "serial pa=8")][0] / c,
                "speedup_vs_parallel": conv[(d, "parallel")][0] / c,
                "conv_act_bytes": a, "conv_dram_bytes": t,
                "act_bytes_vs_serial8": a / conv[(d, "serial pa=8")][2],
                "act_bytes_vs_parallel": a / conv[(d, "parallel")][2],
                "dram_bytes_vs_serial8": t / conv[(d, "serial pa=8")][3]}
               for (d, v), (c, p, a, t) in conv.items()]
    write_result("precision", rows, meta={"batch": BATCH, "config": "default",
                                          "summary": summary})
    print(report(load_result("precision")))


def report(result):
    """Markdown: per-layer rows, then the conv-layer totals with the speedups."""
    return "\n\n".join([
        markdown_table(result["rows"], ["data", "variant", "layer", "pa", "zeros", "cycles",
                                        "model_cycles", "pe_active", "speedup_vs_serial8",
                                        "speedup_vs_parallel", "mac_speedup_vs_serial8",
                                        "dram_bytes", "act_bytes", "act_bytes_vs_serial8"]),
        f"Conv layers only (batch {result['meta']['batch']}):",
        markdown_table(result["meta"]["summary"], ["data", "variant", "conv_cycles",
                                                   "conv_mac_cycles", "speedup_vs_serial8",
                                                   "speedup_vs_parallel"]),
        "DRAM traffic of the conv layers: activations (inputs loaded, outputs stored) and all "
        "bytes (with filters, biases, program), as ratios to the unpacked runs:",
        markdown_table(result["meta"]["summary"], ["data", "variant", "conv_act_bytes",
                                                   "act_bytes_vs_serial8",
                                                   "act_bytes_vs_parallel", "conv_dram_bytes",
                                                   "dram_bytes_vs_serial8"])])


def plots(result, out_dir):
    """Conv-layer cycles and MAC work (PE-active cycles) per variant, digits vs random data."""
    import matplotlib.pyplot as plt
    summary = result["meta"]["summary"]
    variants = list(dict.fromkeys(s["variant"] for s in summary))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    for ax, key, title in ((axes[0], "conv_cycles", "conv-layer cycles"),
                           (axes[1], "conv_mac_cycles", "MAC work (PE-active cycles)"),
                           (axes[2], "conv_act_bytes", "activation DRAM bytes")):
        values = {(s["data"], s["variant"]): s[key] for s in summary}
        grouped_bars(ax, variants, {f"{d} data": [values[(d, v)] for v in variants]
                                    for d in ("digits", "random")}, rotation=20, fontsize=7)
        ax.set_title(title)
    fig.suptitle("Digits CNN on the default preset: fixed, per-layer and dynamic precision")
    return [save_figure(fig, out_dir, "precision")]


if __name__ == "__main__":
    main()
