"""Unit tests of rtl/pe.py: row-stationary 1-D convolutions against the golden model."""

import random

import numpy as np
import pytest

from gen.golden import conv2d, value_range
from rtl.config import preset
from rtl.passcfg import PePass
from rtl.pe import ProcessingElement
from tests.simutil import Stalls, run_sim, stream_get, stream_put


def random_pass(cfg, rng, **fixed):
    """A random valid PePass for ``cfg`` (fields in ``fixed`` are kept)."""
    while True:
        taps = fixed.get("taps", int(rng.integers(1, min(cfg.ifmap_spad, 7) + 1)))
        chans = fixed.get("chans", int(rng.integers(1, max(1, cfg.ifmap_spad // taps) + 1)))
        filters = fixed.get("filters", int(rng.integers(1, cfg.psum_spad * cfg.lanes + 1)))
        job = PePass(taps=taps, chans=chans, filters=filters,
                     cols=fixed.get("cols", int(rng.integers(1, 6))),
                     stride=fixed.get("stride", int(rng.integers(1, 5))),
                     pa=fixed.get("pa", int(rng.integers(1, cfg.act_bits + 1))),
                     act_signed=fixed.get("act_signed", bool(rng.integers(0, 2))),
                     load_filters=fixed.get("load_filters", True))
        try:
            job.check(cfg)
            return job
        except ValueError:
            continue


def random_data(cfg, job, rng):
    """Weights (P, Q, S), ifmap row (Q, row_length) at precision pa, psums from below (F, P)."""
    wlo, whi = value_range(cfg.weight_bits, True)
    w = rng.integers(wlo, whi + 1, (job.filters, job.chans, job.taps))
    alo, ahi = value_range(job.pa, job.act_signed)
    x = rng.integers(alo, ahi + 1, (job.chans, job.row_length()))
    # edge values: extremes of both ranges appear in every pass
    w.flat[0], x.flat[0] = wlo, alo
    w.flat[-1], x.flat[-1] = whi, ahi
    psum_in = rng.integers(-(1 << 20), 1 << 20, (job.cols, job.filters))
    return w, x, psum_in


def golden_row(job, w, x):
    """(F, P) psums of the 1-D row convolution via the golden conv2d (H = R = 1)."""
    y = conv2d(x[None, :, None, :], w[:, :, None, :], stride=job.stride)
    return y[0, :, 0, :].T


class PeDriver:
    """Runs PePass jobs through a ProcessingElement with random stalls on every port."""

    def __init__(self, cfg, stall_prob=0.3, seed=0):
        self.cfg = cfg
        self.dut = ProcessingElement(cfg)
        self.rng = random.Random(seed)
        self.stall_prob = stall_prob
        self.stats = {"mac_active": 0, "spad_reads": 0, "spad_writes": 0, "cycles": 0}

    def stalls(self):
        return Stalls(self.rng, self.stall_prob)

    def run(self, jobs, deadline_cycles=200_000):
        """``jobs``: list of (PePass, w, x, psum_in or None). Returns list of (F, P) outputs."""
        dut, cfg, lanes = self.dut, self.cfg, self.cfg.lanes
        outputs = []
        busy_cycles = []

        async def control(ctx):
            for job, w, x, psum_in in jobs:
                ctx.set(dut.pass_cfg, job.const(cfg))
                ctx.set(dut.accumulate, psum_in is not None)
                ctx.set(dut.start, 1)
                await ctx.tick()
                ctx.set(dut.start, 0)
                cycles = 1
                while not ctx.get(dut.done):
                    await ctx.tick()
                    cycles += 1
                busy_cycles.append(cycles)
                assert not ctx.get(dut.error)

        async def filters(ctx):
            for job, w, x, psum_in in jobs:
                if not job.load_filters:
                    continue
                groups = job.groups(cfg)
                padded = np.zeros((groups * lanes, job.chans, job.taps), dtype=np.int64)
                padded[:job.filters] = w
                for g in range(groups):
                    for q in range(job.chans):
                        for s in range(job.taps):
                            word = [int(v) for v in padded[g * lanes:(g + 1) * lanes, q, s]]
                            await stream_put(ctx, dut.i_filter, word, self.stalls())

        async def ifmaps(ctx):
            mask = (1 << cfg.act_bits) - 1
            for job, w, x, psum_in in jobs:
                for pos in range(job.row_length()):
                    for q in range(job.chans):
                        await stream_put(ctx, dut.i_ifmap, int(x[q, pos]) & mask, self.stalls())

        async def psums_in(ctx):
            for job, w, x, psum_in in jobs:
                if psum_in is None:
                    continue
                for v in psum_in.flat:
                    await stream_put(ctx, dut.i_psum, int(v), self.stalls())

        async def psums_out(ctx):
            for job, *_ in jobs:
                out = np.zeros((job.cols, job.filters), dtype=np.int64)
                for f in range(job.cols):
                    for p in range(job.filters):
                        out[f, p] = await stream_get(ctx, dut.o_psum, self.stalls())
                outputs.append(out)

        async def monitor(ctx):
            while True:
                await ctx.tick()
                st = ctx.get(dut.stats)
                self.stats["mac_active"] += st.mac_active
                self.stats["spad_reads"] += st.spad_reads
                self.stats["spad_writes"] += st.spad_writes

        run_sim(dut, control, filters, ifmaps, psums_in, psums_out, monitors=[monitor],
                deadline_cycles=deadline_cycles)
        self.stats["cycles"] = sum(busy_cycles)
        self.busy_cycles = busy_cycles
        return outputs


KINDS = {"serial": {"mac": "serial"}, "parallel": {"mac": "parallel"},
         "dynamic": {"mac": "serial", "dynamic_precision": True}}


def expected_stats(cfg, job, x):
    """Counter totals of one pass from the PE contract (MAC cycles from the data ``x``)."""
    from gen.pe_model import op_cycle_table
    g, q, s, f = job.groups(cfg), job.chans, job.taps, job.cols
    ops = g * q * s * f
    kept = job.row_length() if job.stride <= s else f * s
    return {
        "mac_active": int(op_cycle_table(cfg, job, x).sum()),
        "spad_reads": 2 * ops + g * f,                        # filter+ifmap per op, psum per group
        "spad_writes": (g * q * s if job.load_filters else 0) + q * kept + g * f,
    }


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", range(4))
def test_pe_random_passes(kind, seed):
    cfg = preset("tiny").replace(lanes=[1, 2, 3, 4][seed], psum_spad=[4, 3, 2, 4][seed],
                                 **KINDS[kind])
    rng = np.random.default_rng(seed)
    jobs = []
    for i in range(3):
        job = random_pass(cfg, rng)
        w, x, psum_in = random_data(cfg, job, rng)
        jobs.append((job, w, x, psum_in if i % 2 else None))
    driver = PeDriver(cfg, seed=seed)
    outs = driver.run(jobs)
    for (job, w, x, psum_in), out in zip(jobs, outs):
        ref = golden_row(job, w, x) + (0 if psum_in is None else psum_in)
        np.testing.assert_array_equal(out, ref, err_msg=str(job))
    for key in ("mac_active", "spad_reads", "spad_writes"):
        assert driver.stats[key] == sum(expected_stats(cfg, j, x)[key] for j, _, x, _ in jobs), key


@pytest.mark.parametrize("stride,taps", [(1, 1), (1, 3), (2, 3), (3, 3), (4, 3), (4, 1), (2, 5)])
@pytest.mark.parametrize("act_signed", [False, True])
def test_pe_strides_and_signedness(stride, taps, act_signed):
    cfg = preset("tiny")
    rng = np.random.default_rng(stride * 10 + taps)
    job = random_pass(cfg, rng, stride=stride, taps=taps, act_signed=act_signed, cols=4)
    w, x, psum_in = random_data(cfg, job, rng)
    out, = PeDriver(cfg, seed=taps).run([(job, w, x, psum_in)])
    np.testing.assert_array_equal(out, golden_row(job, w, x) + psum_in)


@pytest.mark.parametrize("kind", KINDS)
def test_pe_every_precision(kind):
    """pa = 1..act_bits, signed and unsigned, in one run of back-to-back passes."""
    cfg = preset("tiny").replace(**KINDS[kind])
    rng = np.random.default_rng(7)
    jobs = []
    for pa in range(1, cfg.act_bits + 1):
        for act_signed in (False, True):
            job = random_pass(cfg, rng, pa=pa, act_signed=act_signed, cols=2)
            w, x, _ = random_data(cfg, job, rng)
            jobs.append((job, w, x, None))
    outs = PeDriver(cfg, stall_prob=0.1, seed=3).run(jobs)
    for (job, w, x, _), out in zip(jobs, outs):
        np.testing.assert_array_equal(out, golden_row(job, w, x), err_msg=str(job))


def test_pe_filter_reuse():
    """load_filters=False computes with the filters of the previous pass."""
    cfg = preset("tiny")
    rng = np.random.default_rng(11)
    first = random_pass(cfg, rng, cols=3)
    w, x1, _ = random_data(cfg, first, rng)
    second = PePass(**{**first.__dict__, "load_filters": False})
    _, x2, _ = random_data(cfg, second, rng)
    out1, out2 = PeDriver(cfg, seed=1).run([(first, w, x1, None), (second, w, x2, None)])
    np.testing.assert_array_equal(out1, golden_row(first, w, x1))
    np.testing.assert_array_equal(out2, golden_row(second, w, x2))


@pytest.mark.parametrize("mac", ["serial", "parallel"])
@pytest.mark.parametrize("psum_spad", [1, 4])
def test_pe_cycles_per_column(mac, psum_spad):
    """Unstalled cycle count matches the contract formula (see docs/architecture.md)."""
    cfg = preset("tiny").replace(mac=mac, psum_spad=psum_spad)
    job = PePass(taps=3, chans=2, filters=2, cols=6, stride=1, pa=6)
    rng = np.random.default_rng(0)
    w, x, _ = random_data(cfg, job, rng)
    driver = PeDriver(cfg, stall_prob=0.0)
    out, = driver.run([(job, w, x, None)])
    np.testing.assert_array_equal(out, golden_row(job, w, x))
    assert driver.busy_cycles[0] == pe_pass_cycles(cfg, job)


def pe_pass_cycles(cfg, job, x=None):
    """Cycles from start to done of an unstalled pass (the PE contract)."""
    from gen.pe_model import pe_pass_cycles as model
    return model(cfg, job, x)


BAD_PASSES = [
    (dict(taps=0), "taps"), (dict(chans=0), "chans"), (dict(filters=0), "filters"),
    (dict(cols=0), "cols"), (dict(stride=0), "stride"), (dict(pa=0), "pa"), (dict(pa=9), "pa"),
    (dict(taps=5, chans=4), "ifmap spad"), (dict(taps=4, chans=4, filters=8), "filter spad"),
    (dict(filters=9), "psum spad"),
]


@pytest.mark.parametrize("fields,message", BAD_PASSES)
def test_pe_rejects_bad_pass(fields, message):
    """Impossible passes fail PePass.check with a message naming the limit and raise `error` in RTL."""
    cfg = preset("tiny")   # lanes 2, spads filter 32 / ifmap 16 / psum 4
    job = PePass(**{"taps": 3, "chans": 2, "filters": 2, "cols": 2, **fields})
    with pytest.raises(ValueError, match=message):
        job.check(cfg)
    dut = ProcessingElement(cfg)
    seen = {}

    async def bench(ctx):
        ctx.set(dut.pass_cfg, job.const(cfg))
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.i_filter.valid, 1)
        ctx.set(dut.i_ifmap.valid, 1)
        for _ in range(400):
            if ctx.get(dut.done):
                break
            await ctx.tick()
        seen["done"] = ctx.get(dut.done)
        seen["error"] = ctx.get(dut.error)
        await ctx.tick()
        seen["busy_after"] = ctx.get(dut.busy)

    run_sim(dut, bench, deadline_cycles=1000)
    assert seen == {"done": 1, "error": 1, "busy_after": 0}


@pytest.mark.parametrize("kind", KINDS)
def test_pe_cycle_model_on_random_passes(kind):
    """The step model gen/pe_model.py predicts every unstalled pass to the cycle (with dynamic
    precision from the data: sparse, small and full-range activations)."""
    from gen.pe_model import pe_column_cycles, pe_mac_bound
    rng = np.random.default_rng(5)
    for psum_spad in (1, 2, 4, 8):
        cfg = preset("tiny").replace(psum_spad=psum_spad, **KINDS[kind])
        for i in range(4):
            job = random_pass(cfg, rng)
            w, x, _ = random_data(cfg, job, rng)
            if i % 2:                             # ReLU-like: half zeros, small values
                x = np.where(rng.random(x.shape) < 0.5, 0, x >> (job.pa // 2))
            driver = PeDriver(cfg, stall_prob=0.0)
            out, = driver.run([(job, w, x, None)])
            np.testing.assert_array_equal(out, golden_row(job, w, x))
            assert driver.busy_cycles[0] == pe_pass_cycles(cfg, job, x), job
            assert pe_column_cycles(cfg, job) >= pe_mac_bound(cfg, job)
