"""cocotb bench: the MAC on generated Verilog, random operations checked against NumPy dot products."""

import random

import cocotb
import numpy as np

from gen.golden import value_range
from rtl.config import AccelConfig
from cocotb.triggers import RisingEdge

from rtl.mac import mac_op_layout, op_cycles
from sim_tb.common import StreamSink, StreamSource, load_params, start_clock, watchdog


def signed_lanes(raw, bits, lanes):
    mask = (1 << bits) - 1
    out = []
    for l in range(lanes):
        v = (raw >> (l * bits)) & mask
        out.append(v - (1 << bits) if v >> (bits - 1) else v)
    return out


@cocotb.test()
async def random_dot_products(dut):
    p = load_params()
    cfg = AccelConfig.from_dict(p["config"])
    rng = np.random.default_rng(p.get("seed", 0))
    pyrng = random.Random(p.get("seed", 0))
    layout = mac_op_layout(cfg)
    await start_clock(dut)
    src = StreamSource(dut, "i_op", pyrng, 0.3)
    sink = StreamSink(dut, "o_sum", pyrng, 0.3)

    jobs = []
    for _ in range(p.get("jobs", 24)):
        pa = int(rng.integers(1, cfg.act_bits + 1))
        act_signed = bool(rng.integers(0, 2))
        n = int(rng.integers(1, 6))
        lo, hi = value_range(pa, act_signed)
        acts = rng.integers(lo, hi + 1, n)
        edges = rng.random(n) < 0.3                      # zeros, -1/1, extremes
        acts[edges] = rng.choice([0, min(1, hi), -1 if act_signed else 0, lo, hi], edges.sum())
        wlo, whi = value_range(cfg.weight_bits, True)
        weights = rng.integers(wlo, whi + 1, (n, cfg.lanes))
        jobs.append((pa, act_signed, acts, weights))

    async def produce():
        for pa, act_signed, acts, weights in jobs:
            for i, (a, w) in enumerate(zip(acts, weights)):
                op = layout.const({"act": int(a) & ((1 << cfg.act_bits) - 1),
                                   "weights": [int(x) for x in w], "pa": pa,
                                   "act_signed": act_signed, "first": i == 0,
                                   "last": i == len(acts) - 1})
                await src.send(op.as_value().value)

    async def check():
        for pa, act_signed, acts, weights in jobs:
            raw = int(await sink.recv())
            got = signed_lanes(raw, cfg.psum_bits, cfg.lanes)
            expected = [int(v) for v in weights.T.astype(np.int64) @ acts.astype(np.int64)]
            assert got == expected, f"pa={pa} signed={act_signed} acts={acts.tolist()}"

    busy = []

    async def count_busy():
        while True:
            await RisingEdge(dut.clk)
            busy.append(int(dut.busy.value))

    cocotb.start_soon(produce())
    cocotb.start_soon(count_busy())
    await watchdog(check(), 50_000)
    # busy cycles = each operation's cycles (pa, 1, or significant bits with dynamic precision)
    want = sum(int(op_cycles(cfg, acts, pa, act_signed).sum()) for pa, act_signed, acts, _ in jobs)
    assert sum(busy) == want, (sum(busy), want)
