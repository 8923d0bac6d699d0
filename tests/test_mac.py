"""Unit tests of rtl/mac.py against the golden dot product, both MAC kinds."""

import random

import numpy as np
import pytest

from gen.golden import value_range
from rtl.config import preset
from rtl.mac import Mac, mac_cycles, op_cycles, significant_bits
from tests.simutil import Stalls, run_sim, stream_get, stream_put


def to_bits(value, bits):
    return value & ((1 << bits) - 1)


KINDS = {"serial": {"mac": "serial"}, "parallel": {"mac": "parallel"},
         "dynamic": {"mac": "serial", "dynamic_precision": True}}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("act_signed", [False, True])
def test_mac_dot_products(kind, act_signed):
    cfg = preset("tiny").replace(lanes=3, **KINDS[kind])
    rng = np.random.default_rng(1)
    pyrng = random.Random(2)
    dut = Mac(cfg)
    jobs = []
    for pa in range(1, cfg.act_bits + 1):
        n = int(rng.integers(1, 5))
        lo, hi = value_range(pa, act_signed)
        acts = rng.integers(lo, hi + 1, n)
        acts[0] = lo  # edge: most negative / zero
        acts[-1] = [0, -1, hi, 1][pa % 4] if act_signed or pa % 4 != 1 else 0   # edges
        wlo, whi = value_range(cfg.weight_bits, True)
        weights = rng.integers(wlo, whi + 1, (n, cfg.lanes))
        weights[-1] = wlo
        jobs.append((pa, acts, weights, weights.T @ acts))
    got = []

    async def producer(ctx):
        stalls = Stalls(pyrng, 0.3)
        for pa, acts, weights, _ in jobs:
            for i, (a, w) in enumerate(zip(acts, weights)):
                await stream_put(ctx, dut.i_op, {
                    "act": to_bits(int(a), cfg.act_bits), "weights": [int(x) for x in w],
                    "pa": pa, "act_signed": act_signed, "first": i == 0, "last": i == len(acts) - 1,
                }, stalls)

    async def consumer(ctx):
        stalls = Stalls(pyrng, 0.3)
        for _ in jobs:
            sums = await stream_get(ctx, dut.o_sum, stalls)
            got.append([int(x) for x in sums])

    run_sim(dut, producer, consumer, deadline_cycles=20_000)
    for (pa, *_, expected), sums in zip(jobs, got):
        assert sums == list(expected), f"pa={pa}"


@pytest.mark.parametrize("mac", ["serial", "parallel"])
@pytest.mark.parametrize("pa", [1, 5, 8])
def test_mac_back_to_back_throughput(mac, pa):
    """Unstalled, n operations keep the MAC busy n*mac_cycles(pa) cycles with no bubbles."""
    cfg = preset("tiny").replace(mac=mac)
    dut = Mac(cfg)
    n = 6
    trace = []

    async def producer(ctx):
        ctx.set(dut.o_sum.ready, 1)
        for i in range(n):
            ctx.set(dut.i_op.payload, {"act": 21 % (1 << pa), "weights": [3, -2], "pa": pa,
                                       "act_signed": 0, "first": i == 0, "last": i == n - 1})
            ctx.set(dut.i_op.valid, 1)
            await ctx.tick().until(dut.i_op.ready)
        ctx.set(dut.i_op.valid, 0)
        sums, = await ctx.tick().sample(dut.o_sum.payload).until(dut.o_sum.valid)
        assert [int(x) for x in sums] == [n * (21 % (1 << pa)) * 3, n * (21 % (1 << pa)) * -2]

    async def monitor(ctx):
        while True:
            await ctx.tick()
            trace.append((ctx.get(dut.busy), ctx.get(dut.o_sum.valid)))

    run_sim(dut, producer, monitors=[monitor], deadline_cycles=1000)
    busy = [b for b, _ in trace]
    first, last = busy.index(1), len(busy) - 1 - busy[::-1].index(1)
    assert sum(busy) == n * mac_cycles(cfg, pa)
    assert last - first + 1 == n * mac_cycles(cfg, pa), "bubbles between operations"


def test_significant_bits_exhaustive():
    """Against the definition: the fewest bits n >= 1 whose range (n-bit two's complement, or
    unsigned) holds the value, for every value of every precision; upper bits are ignored."""
    for pa in range(1, 17):
        for signed in (False, True):
            lo, hi = value_range(pa, signed)
            values = np.arange(lo, hi + 1)
            garbage = np.random.default_rng(pa).integers(0, 1 << 8, values.size) << pa
            got = significant_bits((values & ((1 << pa) - 1)) | garbage, pa, signed)
            for v, n in zip(values, got):
                lo_n, hi_n = value_range(int(n), signed)
                assert lo_n <= v <= hi_n, (pa, signed, v, n)
                if n > 1:
                    lo_m, hi_m = value_range(int(n) - 1, signed)
                    assert not lo_m <= v <= hi_m, (pa, signed, v, n)
    assert list(significant_bits([0, 1, 2, 255], 8, False)) == [1, 1, 2, 8]
    assert list(significant_bits([0, -1, 1, -128, 127], 8, True)) == [1, 1, 2, 8, 8]


@pytest.mark.parametrize("act_signed", [False, True])
def test_mac_dynamic_precision_timing(act_signed):
    """Dynamic precision: each operation keeps the MAC busy significant_bits(act) cycles, back to
    back with no bubbles, with random garbage above ``pa``; the sums stay exact."""
    cfg = preset("tiny").replace(dynamic_precision=True)
    dut = Mac(cfg)
    rng = np.random.default_rng(7)
    pa = 6
    lo, hi = value_range(pa, act_signed)
    acts = np.concatenate([[0, lo, hi, 1, 0, 0], rng.integers(lo, hi + 1, 20)])
    if act_signed:
        acts[4] = -1
    raw = [(int(a) & ((1 << pa) - 1)) | int(rng.integers(0, 4)) << pa for a in acts]
    weights = [5, -7]
    trace = []

    async def producer(ctx):
        ctx.set(dut.o_sum.ready, 1)
        for i, r in enumerate(raw):
            ctx.set(dut.i_op.payload, {"act": r, "weights": weights, "pa": pa,
                                       "act_signed": act_signed, "first": i == 0,
                                       "last": i == len(raw) - 1})
            ctx.set(dut.i_op.valid, 1)
            await ctx.tick().until(dut.i_op.ready)
        ctx.set(dut.i_op.valid, 0)
        sums, = await ctx.tick().sample(dut.o_sum.payload).until(dut.o_sum.valid)
        assert [int(x) for x in sums] == [int(acts.sum()) * w for w in weights]

    async def monitor(ctx):
        while True:
            await ctx.tick()
            trace.append(ctx.get(dut.busy))

    run_sim(dut, producer, monitors=[monitor], deadline_cycles=1000)
    want = int(op_cycles(cfg, raw, pa, act_signed).sum())
    assert want < len(raw) * pa                          # the data makes it faster
    first, last = trace.index(1), len(trace) - 1 - trace[::-1].index(1)
    assert sum(trace) == want and last - first + 1 == want, "busy cycles != significant bits"
