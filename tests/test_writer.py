"""Unit tests of rtl/writer.py: array psums become addressed GLB element writes."""

import random

import numpy as np
import pytest

from gen.rowstationary import ConvShape, output_slots, plan_conv
from rtl.config import preset
from rtl.writer import PsumWriter
from tests.simutil import Stalls, pulse_and_wait, run_sim, stream_get, stream_put


def placement(cfg, ap, shape, rng):
    """Writer table for pass ``ap`` with the tile = whole layer stored (e, f, m), random modes."""
    table = []
    for k, (_, _, block, j) in enumerate(ap.tops(cfg)):
        base = (block.e0 + j) * shape.F * shape.M + block.m0
        table.append({"index": k, "base": base, "accumulate": bool(rng.integers(0, 2))})
    return table


def run_writer(cfg, jobs, stall_prob, seed, bad_last_at=None):
    """``jobs``: list of (job dict, table, psum list). Returns (writes per job, errors per job)."""
    dut = PsumWriter(cfg)
    rng = random.Random(seed)
    writes, errors = [], []

    async def control(ctx):
        for job, table, psums in jobs:
            for entry in table:
                await stream_put(ctx, dut.i_table, entry)
            ctx.set(dut.job, job)
            await pulse_and_wait(ctx, dut.start, dut.done)
            errors.append(ctx.get(dut.error))
            await ctx.tick()

    async def source(ctx):
        for job, table, psums in jobs:
            for i, v in enumerate(psums):
                last = (i == len(psums) - 1) if bad_last_at is None else i == bad_last_at
                await stream_put(ctx, dut.i_psum, {"data": v, "last": last}, Stalls(rng, stall_prob))
                if last:
                    break

    async def sink(ctx):
        for job, table, psums in jobs:
            got = []
            n = len(psums) if bad_last_at is None else bad_last_at + 1
            for _ in range(n):
                w = await stream_get(ctx, dut.o_write, Stalls(rng, stall_prob))
                got.append((w.addr, w.data, w.accumulate))
            writes.append(got)

    run_sim(dut, control, source, sink, deadline_cycles=100_000)
    return writes, errors


@pytest.mark.parametrize("stall_prob", [0.0, 0.4])
@pytest.mark.parametrize("name,shape", [
    ("tiny", ConvShape(C=3, H=8, W=7, M=3, R=3, S=3, stride=1)),
    ("tiny", ConvShape(C=4, H=5, W=5, M=3, R=1, S=1, stride=1)),      # many tops, filters 3
    ("default", ConvShape(C=2, H=9, W=6, M=1, R=2, S=2, stride=1)),   # filters 1: top per psum
])
def test_writer_places_every_psum(name, shape, stall_prob):
    cfg = preset(name)
    rng = np.random.default_rng(0)
    jobs, expected = [], []
    for ap in plan_conv(cfg, shape, chain=False):
        table = placement(cfg, ap, shape, rng)
        slots = output_slots(cfg, ap)
        psums = [int(v) for v in rng.integers(-(1 << 31), 1 << 31, len(slots))]
        job = {"tops": len(table), "filters": ap.pe.filters, "cols": ap.pe.cols,
               "col_stride": shape.M}
        jobs.append((job, table, psums))
        mode = {t["index"]: t["accumulate"] for t in table}
        tops_per_col = len(table)
        exp = []
        for i, ((m, e, f), v) in enumerate(zip(slots, psums)):
            k = (i // ap.pe.filters) % tops_per_col
            exp.append(((e * shape.F + f) * shape.M + m, v, mode[k]))
        expected.append(exp)
    writes, errors = run_writer(cfg, jobs, stall_prob, seed=1)
    assert writes == expected
    assert errors == [0] * len(jobs)


def test_writer_flags_misplaced_last():
    cfg = preset("tiny")
    job = {"tops": 2, "filters": 2, "cols": 3, "col_stride": 4}
    table = [{"index": 0, "base": 0, "accumulate": 0}, {"index": 1, "base": 2, "accumulate": 1}]
    writes, errors = run_writer(cfg, [(job, table, list(range(12)))], 0.0, 0, bad_last_at=5)
    assert errors == [1]
    assert len(writes[0]) == 6
