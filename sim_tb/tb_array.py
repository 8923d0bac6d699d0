"""cocotb bench: one convolution layer through the PE array's generated Verilog, checked against golden."""

import json
import random
import time

import cocotb
import numpy as np
from cocotb.triggers import RisingEdge

from gen.golden import conv2d, value_range
from gen.rowstationary import (ConvShape, filter_words, ifmap_words, output_slots, plan_conv,
                               role_words)
from rtl.config import AccelConfig
from rtl.passcfg import array_pe_cfg_layout, tag_bits
from sim_tb.common import StreamSink, StreamSource, load_params, start_clock, watchdog


def to_signed(v, bits):
    v = int(v) & ((1 << bits) - 1)
    return v - (1 << bits) if v >> (bits - 1) else v


@cocotb.test()
async def conv_layers(dut):
    """Run every layer of the ``layers`` parameter through the array and compare bit-exact."""
    p = load_params()
    cfg = AccelConfig.from_dict(p["config"])
    await start_clock(dut)
    reports = []
    for k, layer in enumerate(p["layers"]):
        reports.append(await run_layer(dut, cfg, layer, p["seed"] + k, p.get("stall_prob", 0.2),
                                       p.get("timeout_cycles", 2_000_000)))
    if p.get("report"):
        with open(p["report"], "w") as f:
            json.dump(reports, f, indent=1)


async def run_layer(dut, cfg, layer, seed, stall, timeout_cycles):
    """Plan one layer, send every pass through the array, accumulate the outputs, compare."""
    shape = ConvShape(**layer["shape"])
    pa, act_signed = layer["pa"], layer["act_signed"]
    rng = np.random.default_rng(seed)
    pyrng = random.Random(seed)
    alo, ahi = value_range(pa, act_signed)
    wlo, whi = value_range(cfg.weight_bits, True)
    x = rng.integers(alo, ahi + 1, (shape.C, shape.H, shape.W))
    w = rng.integers(wlo, whi + 1, (shape.M, shape.C, shape.R, shape.S))
    passes = plan_conv(cfg, shape, pa=pa, act_signed=act_signed, chain=layer.get("chain", True))

    cfg_src = StreamSource(dut, "i_pe_cfg")
    f_src = StreamSource(dut, "i_filter", pyrng, stall)
    i_src = StreamSource(dut, "i_ifmap", pyrng, stall)
    sink = StreamSink(dut, "o_psum", pyrng, stall)
    dut.start.value = 0
    role_layout = array_pe_cfg_layout(cfg)
    tb, wb = tag_bits(cfg), cfg.weight_bits
    y = np.zeros((shape.M, shape.E, shape.F), dtype=np.int64)
    t0, cycles = time.perf_counter(), 0

    async def run_pass(ap):
        for word in role_words(cfg, ap):
            await cfg_src.send(role_layout.const(word).as_value().value)
        dut.pass_cfg.value = ap.pe.const(cfg).as_value().value
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0

        async def send_filters():
            for tag, lanes in filter_words(cfg, ap, w):
                word = sum((v & ((1 << wb) - 1)) << (l * wb) for l, v in enumerate(lanes))
                await f_src.send(tag | word << tb)

        async def send_ifmaps():
            for tag, act in ifmap_words(cfg, ap, x):
                await i_src.send(tag | act << tb)

        cocotb.start_soon(send_filters())
        cocotb.start_soon(send_ifmaps())
        slots = output_slots(cfg, ap)
        start = cycles
        for i, slot in enumerate(slots):
            raw = int(await sink.recv())
            assert (raw >> cfg.psum_bits) & 1 == (i == len(slots) - 1), "last flag misplaced"
            y[slot] += to_signed(raw, cfg.psum_bits)
        while not dut.done.value:
            await RisingEdge(dut.clk)
        assert not dut.error.value, "array flagged an error"
        await RisingEdge(dut.clk)
        return start

    async def count_cycles():
        nonlocal cycles
        while True:
            await RisingEdge(dut.clk)
            cycles += 1

    counter = cocotb.start_soon(count_cycles())

    async def run_all():
        for ap in passes:
            await run_pass(ap)

    await watchdog(run_all(), timeout_cycles)
    counter.cancel()
    wall = time.perf_counter() - t0
    golden = conv2d(x[None], w, stride=shape.stride)[0]
    np.testing.assert_array_equal(y, golden)
    dut._log.info(f"PASS {shape} pa={pa} in {cycles} cycles ({cycles / wall:.0f} cycles/s)")
    return {"shape": layer["shape"], "pa": pa, "cycles": cycles, "wall_s": wall,
            "cycles_per_s": cycles / wall, "passes": len(passes)}
