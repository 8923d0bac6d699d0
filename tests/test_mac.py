"""Unit tests of rtl/mac.py against the golden dot product, both MAC kinds."""

import random

import numpy as np
import pytest

from gen.golden import value_range
from rtl.config import preset
from rtl.mac import Mac, mac_cycles
from tests.simutil import Stalls, run_sim, stream_get, stream_put


def to_bits(value, bits):
    return value & ((1 << bits) - 1)


@pytest.mark.parametrize("mac", ["serial", "parallel"])
@pytest.mark.parametrize("act_signed", [False, True])
def test_mac_dot_products(mac, act_signed):
    cfg = preset("tiny").replace(mac=mac, lanes=3)
    rng = np.random.default_rng(1)
    pyrng = random.Random(2)
    dut = Mac(cfg)
    jobs = []
    for pa in range(1, cfg.act_bits + 1):
        n = int(rng.integers(1, 5))
        lo, hi = value_range(pa, act_signed)
        acts = rng.integers(lo, hi + 1, n)
        acts[0] = lo  # edge: most negative / zero
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
