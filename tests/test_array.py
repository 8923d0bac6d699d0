"""Unit tests of rtl/array.py: whole 2-D convolutions through the PE array against the golden model."""

import itertools
import random

import numpy as np
import pytest

from gen.golden import conv2d, value_range
from gen.rowstationary import (ConvShape, filter_words, ifmap_words, output_slots, plan_conv,
                               role_words, run_passes_reference)
from rtl.array import PeArray
from rtl.config import preset
from rtl.passcfg import ArrayPass, Block, PePass
from tests.simutil import Stalls, run_sim, stream_get, stream_put


class ArrayDriver:
    """Runs ArrayPasses through a PeArray with random stalls on every stream port.

    Per pass: writes every PE's role, starts, sends filter and ifmap words concurrently, collects
    the output psums and adds each into its output slot (partial sums of folded or unchained sets
    are accumulated here, as the global buffer does in the full accelerator).
    """

    def __init__(self, cfg, stall_prob=0.2, seed=0):
        self.cfg = cfg
        self.dut = PeArray(cfg)
        self.rng = random.Random(seed)
        self.stall_prob = stall_prob
        self.stats = {"mac_active": 0, "spad_reads": 0, "spad_writes": 0}
        self.pass_cycles = []

    def stalls(self):
        return Stalls(self.rng, self.stall_prob)

    def run(self, shape, passes, x, w, deadline_cycles=400_000):
        cfg, dut = self.cfg, self.dut
        y = np.zeros((shape.M, shape.E, shape.F), dtype=np.int64)
        plan = [(ap, filter_words(cfg, ap, w), ifmap_words(cfg, ap, x), output_slots(cfg, ap))
                for ap in passes]
        started = []            # one entry per started pass: senders wait for it
        errors = []

        async def control(ctx):
            for ap, *_ in plan:
                for word in role_words(cfg, ap):
                    await stream_put(ctx, dut.i_pe_cfg, word)
                ctx.set(dut.pass_cfg, ap.pe.const(cfg))
                ctx.set(dut.start, 1)
                await ctx.tick()
                ctx.set(dut.start, 0)
                started.append(ap)
                cycles = 1
                while not ctx.get(dut.done):
                    await ctx.tick()
                    cycles += 1
                self.pass_cycles.append(cycles)
                errors.append(ctx.get(dut.error))
                await ctx.tick()

        async def wait_started(ctx, k):
            while len(started) <= k:
                await ctx.tick()

        async def filters(ctx):
            for k, (ap, fw, _, _) in enumerate(plan):
                await wait_started(ctx, k)
                for tag, word in fw:
                    await stream_put(ctx, dut.i_filter, {"tag": tag, "word": word}, self.stalls())

        async def ifmaps(ctx):
            for k, (ap, _, iw, _) in enumerate(plan):
                await wait_started(ctx, k)
                for tag, act in iw:
                    await stream_put(ctx, dut.i_ifmap, {"tag": tag, "act": act}, self.stalls())

        async def outputs(ctx):
            for ap, _, _, slots in plan:
                for i, slot in enumerate(slots):
                    word = await stream_get(ctx, dut.o_psum, self.stalls())
                    assert word.last == (i == len(slots) - 1)
                    y[slot] += word.data

        async def monitor(ctx):
            while True:
                await ctx.tick()
                st = ctx.get(dut.stats)
                for key in self.stats:
                    self.stats[key] += getattr(st, key)

        run_sim(dut, control, filters, ifmaps, outputs, monitors=[monitor],
                deadline_cycles=deadline_cycles)
        assert not any(errors)
        return y


def random_layer(rng, shape, pa, act_signed, weight_bits):
    alo, ahi = value_range(pa, act_signed)
    wlo, whi = value_range(weight_bits, True)
    x = rng.integers(alo, ahi + 1, (shape.C, shape.H, shape.W))
    w = rng.integers(wlo, whi + 1, (shape.M, shape.C, shape.R, shape.S))
    x.flat[0], x.flat[-1], w.flat[0], w.flat[-1] = alo, ahi, wlo, whi
    return x, w


def check_layer(cfg, shape, seed, pa=None, act_signed=False, chain=True, stall_prob=0.2, **plan):
    """Plan, simulate and compare one layer; returns (driver, passes) for further checks."""
    rng = np.random.default_rng(seed)
    pa = pa or cfg.act_bits
    x, w = random_layer(rng, shape, pa, act_signed, cfg.weight_bits)
    passes = plan_conv(cfg, shape, pa=pa, act_signed=act_signed, chain=chain, **plan)
    golden = conv2d(x[None], w, stride=shape.stride)[0]
    np.testing.assert_array_equal(run_passes_reference(cfg, shape, passes, x, w), golden)
    driver = ArrayDriver(cfg, stall_prob=stall_prob, seed=seed)
    y = driver.run(shape, passes, x, w)
    np.testing.assert_array_equal(y, golden)
    return driver, passes


SMALL = preset("tiny")                                    # 3x4 PEs, lanes 2
MEDIUM = preset("tiny").replace(rows=5, cols=6, psum_spad=8, filter_spad=48)


@pytest.mark.parametrize("R", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_array_3x4_filter_heights_and_strides(R, stride):
    """R in 1..rows on the 3x4 array, strides 1..3; several sets per pass when R < rows."""
    shape = ConvShape(C=2, H=5 + R, W=6, M=3, R=R, S=3, stride=stride)
    check_layer(SMALL, shape, seed=R * 10 + stride, pa=4)


@pytest.mark.parametrize("R,S,stride,chain", [(5, 3, 1, True), (2, 2, 2, False)])
def test_array_5x6(R, S, stride, chain):
    """5x6 array: a set as tall as the array; stacked unchained sets (small layers, pa = 2)."""
    shape = ConvShape(C=2, H=R + 5, W=S + 3, M=3, R=R, S=S, stride=stride)
    check_layer(MEDIUM, shape, seed=R * 100 + S * 10 + stride, chain=chain, pa=2)


@pytest.mark.slow
@pytest.mark.parametrize("R,S,stride,chain", [(5, 3, 1, True), (4, 2, 2, True), (2, 5, 1, False),
                                              (3, 1, 1, True), (5, 5, 2, False)])
def test_array_5x6_full_precision(R, S, stride, chain):
    """5x6 array at 8-bit activations on larger layers (minutes each in the Python simulator)."""
    shape = ConvShape(C=3, H=11, W=10, M=5, R=R, S=S, stride=stride)
    check_layer(MEDIUM, shape, seed=R * 100 + S * 10 + stride, chain=chain)


@pytest.mark.parametrize("chain", [True, False])
def test_array_folded_set_taller_than_array(chain):
    """R = 5 > 3 rows: the set folds into segments whose partial sums are added outside."""
    shape = ConvShape(C=2, H=7, W=5, M=2, R=5, S=2, stride=1)
    _, passes = check_layer(SMALL, shape, seed=7, chain=chain, pa=4)
    assert any(b.r0 > 0 for ap in passes for b in ap.blocks)        # really folded


def test_array_strip_mined_and_replicated():
    """E > cols (strip-mining) and several filter/channel groups stacked (replication)."""
    shape = ConvShape(C=4, H=9, W=5, M=4, R=1, S=3, stride=1)
    _, passes = check_layer(SMALL, shape, seed=3, chans=2, filters=2, pa=3)
    assert any(len(ap.blocks) > 1 for ap in passes)
    assert len({b.e0 for ap in passes for b in ap.blocks}) > 1


@pytest.mark.parametrize("mac,pa,act_signed", [("serial", 1, False), ("serial", 3, True),
                                                ("parallel", 8, True), ("parallel", 5, False)])
def test_array_precisions_and_mac_kinds(mac, pa, act_signed):
    cfg = SMALL.replace(mac=mac)
    shape = ConvShape(C=2, H=6, W=6, M=3, R=2, S=2, stride=1)
    check_layer(cfg, shape, seed=pa, pa=pa, act_signed=act_signed)


def test_array_counters_and_utilisation():
    """Summed PE counters equal the per-pass PE contract; utilisation is reported."""
    cfg = SMALL
    shape = ConvShape(C=2, H=6, W=7, M=4, R=3, S=3, stride=1)
    driver, passes = check_layer(cfg, shape, seed=1, stall_prob=0.0)
    macs = 0
    for ap in passes:
        pes = len(ap.pe_roles())
        job = ap.pe
        macs += pes * job.groups(cfg) * job.chans * job.taps * job.cols * job.pa
    assert driver.stats["mac_active"] == macs
    cycles = sum(driver.pass_cycles)
    util = driver.stats["mac_active"] / (cfg.pes * cycles)
    assert 0 < util <= 1


def test_array_dynamic_precision():
    """Dynamic precision: PEs finish their columns at different times (sparse, uneven data);
    outputs stay exact and the MAC cycles equal every PE's significant bits, pass by pass."""
    from gen.pe_model import pass_op_cycles
    cfg = MEDIUM.replace(dynamic_precision=True)
    shape = ConvShape(C=2, H=7, W=7, M=3, R=3, S=3, stride=1)
    rng = np.random.default_rng(12)
    for act_signed in (False, True):
        alo, ahi = value_range(8, act_signed)
        x = rng.integers(alo, ahi + 1, (shape.C, shape.H, shape.W))
        x[:, :3] >>= 6                                       # small values at the top
        x[rng.random(x.shape) < 0.4] = 0                     # ReLU-like zeros
        w = rng.integers(-128, 128, (shape.M, shape.C, shape.R, shape.S))
        passes = plan_conv(cfg, shape, pa=8, act_signed=act_signed)
        driver = ArrayDriver(cfg, stall_prob=0.0, seed=3)
        np.testing.assert_array_equal(driver.run(shape, passes, x, w),
                                      conv2d(x[None], w, stride=1)[0])
        want = sum(int(t.sum()) for ap in passes for t in pass_op_cycles(cfg, ap, x).values())
        worst = sum(int(t.sum()) for ap in passes for t in pass_op_cycles(cfg, ap, None).values())
        assert driver.stats["mac_active"] == want < worst


def test_array_unmatched_word_and_bad_roles_flag_error():
    """A word no PE takes, or an inconsistent psum chain, ends the pass with error (no hang)."""
    cfg = SMALL
    dut = PeArray(cfg)
    job = PePass(taps=1, chans=1, filters=1, cols=1)
    seen = []

    async def bench(ctx):
        # PE 0 alone, but claims to accumulate from a PE below that does not exist
        await stream_put(ctx, dut.i_pe_cfg, {"index": 0, "enable": 1, "filter_tag": 0,
                                             "ifmap_tag": 0, "accumulate": 1, "top": 1})
        ctx.set(dut.pass_cfg, job.const(cfg))
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        seen.append((ctx.get(dut.done), ctx.get(dut.error)))
        await ctx.tick()
        # now a valid role, then a filter word with a tag nobody has
        await stream_put(ctx, dut.i_pe_cfg, {"index": 0, "enable": 1, "filter_tag": 0,
                                             "ifmap_tag": 0, "accumulate": 0, "top": 1})
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        await stream_put(ctx, dut.i_filter, {"tag": 5, "word": [1, 1]})
        for _ in range(2):                    # through the bus's input stage, then flagged
            await ctx.tick()
        seen.append(ctx.get(dut.error))
        await stream_put(ctx, dut.i_filter, {"tag": 0, "word": [1, 1]})
        await stream_put(ctx, dut.i_ifmap, {"tag": 0, "act": 3})
        assert (await stream_get(ctx, dut.o_psum)).data == 3
        while not ctx.get(dut.done):
            await ctx.tick()
        seen.append(ctx.get(dut.error))

    run_sim(dut, bench, deadline_cycles=2000)
    assert seen == [(1, 1), 1, 1]


def test_array_pass_validation():
    cfg = SMALL
    job = PePass(taps=1, chans=1, filters=1, cols=1)
    with pytest.raises(ValueError, match="exceeds the 3x4 array"):
        ArrayPass(job, (Block(0, 3, 1, 2, 0, 0, 0, 0),)).check(cfg)
    with pytest.raises(ValueError, match=r"PE \(1, 0\) is used twice"):
        ArrayPass(job, (Block(0, 0, 2, 1, 0, 0, 0, 0), Block(1, 0, 1, 1, 0, 0, 0, 0))).check(cfg)
    with pytest.raises(ValueError, match="no block directly below"):
        ArrayPass(job, (Block(1, 0, 1, 1, 0, 0, 0, 0, chained=True),)).check(cfg)
    with pytest.raises(ValueError, match="ifmap spad: filter width S=17"):
        plan_conv(cfg, ConvShape(C=1, H=20, W=20, M=1, R=1, S=17))


def test_plan_covers_every_mac_exactly_once():
    """Planner sweep (no simulation): the NumPy execution of the plan equals the golden conv."""
    rng = np.random.default_rng(0)
    for cfg, (C, H, M, R, S, U), chain in itertools.product(
            (SMALL, MEDIUM, preset("default")),
            itertools.product((1, 3, 5), (5, 9), (1, 3, 7), (1, 2, 4, 7), (1, 3, 5), (1, 2, 3)),
            (True, False)):
        W = H + 1
        if R > H:
            continue
        shape = ConvShape(C, H, W, M, R, S, U)
        x = rng.integers(-8, 8, (C, H, W))
        w = rng.integers(-8, 8, (M, C, R, S))
        y = run_passes_reference(cfg, shape, plan_conv(cfg, shape, chain=chain), x, w)
        np.testing.assert_array_equal(y, conv2d(x[None], w, stride=U)[0])
