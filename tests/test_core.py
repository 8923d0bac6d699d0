"""The on-chip datapath (rtl/core.py) runs whole layers from a GLB image: bit-exact vs golden."""

import random

import numpy as np
import pytest

from gen.golden import OutputStage, conv2d, output_stage, value_range
from gen.rowstationary import ConvShape, filter_words, plan_conv
from rtl.buffers import psum_container_bits, psums_per_word
from rtl.config import preset
from rtl.core import Core
from rtl.outstage import outstage_config_value
from rtl.sender import act_container_bits, filter_word_bits
from rtl.store import OUT_CONTAINERS
from tests.simutil import Stalls, run_sim, stream_get, stream_put


def pack(values, bits, per_word):
    return [sum((int(v) & ((1 << bits) - 1)) << (i * bits)
                for i, v in enumerate(values[k:k + per_word]))
            for k in range(0, len(values), per_word)]


def glb_image(cfg, shape, passes, x, w, bias):
    """GLB words: filter keys of every pass (send order), the HWC input, the psum tile (e, f, m)
    initialised with the bias. Returns (words, per-pass filter bases, ifmap base, psum base)."""
    bus = cfg.dram_data_bits
    fbits, acont, pc = filter_word_bits(cfg), act_container_bits(cfg), psum_container_bits(cfg)
    wcont = fbits // cfg.lanes
    f_per, a_per, k = bus // fbits, bus // acont, psums_per_word(cfg)
    words, fbases = [], []
    for ap in passes:
        fw = filter_words(cfg, ap, w)
        fbases.append(len(words) * f_per)
        vals = [sum((v & ((1 << wcont) - 1)) << (l * wcont) for l, v in enumerate(lanes))
                for _, lanes in fw]
        words += pack(vals, fbits, f_per)
    ibase = len(words) * a_per
    words += pack(np.transpose(x, (1, 2, 0)).reshape(-1), acont, a_per)
    pbase = len(words) * k
    tile = np.broadcast_to(bias, (shape.E, shape.F, shape.M)).reshape(-1)
    words += pack(tile, pc, k)
    return words, fbases, ibase, pbase


def run_layer(cfg, shape, x, w, bias, stage, pa, act_signed, stall_prob=0.2, seed=0):
    passes = plan_conv(cfg, shape, pa=pa, act_signed=act_signed, chain=False)
    words, fbases, ibase, pbase = glb_image(cfg, shape, passes, x, w, bias)
    assert len(words) <= cfg.glb_words, "test layer must fit the GLB"
    dut = Core(cfg)
    rng = random.Random(seed)
    container = 32 if stage is None else (8 if stage.out_bits <= 8 else 16)
    count = shape.M * shape.E * shape.F
    n_out = -(-count // (cfg.dram_data_bits // container))
    out = []
    status = {"pass_errors": []}

    async def control(ctx):
        for a, word in enumerate(words):
            await stream_put(ctx, dut.i_load, {"addr": a, "data": word})
        for ap, fbase in zip(passes, fbases):
            ftags, itags = ap.tags()
            per_key = len(filter_words(cfg, ap, w)) // len(ftags)
            for key, t in ftags.items():
                await stream_put(ctx, dut.i_sender_table,
                                 {"ifmap": 0, "index": t, "base": fbase + t * per_key})
            for (c0, h), t in itags.items():
                await stream_put(ctx, dut.i_sender_table,
                                 {"ifmap": 1, "index": t,
                                  "base": ibase + h * shape.W * shape.C + c0})
            roles = ap.pe_configs()
            for c in range(cfg.cols):
                for r in range(cfg.rows):
                    pc = roles.get((r, c))
                    role = {"index": c * cfg.rows + r, "enable": pc is not None}
                    if pc is not None:
                        role.update(filter_tag=pc.filter_tag, ifmap_tag=pc.ifmap_tag,
                                    accumulate=pc.accumulate, top=pc.top)
                    await stream_put(ctx, dut.i_roles, role)
            tops = ap.tops(cfg)
            for k, (_, _, block, j) in enumerate(tops):
                await stream_put(ctx, dut.i_writer_table, {
                    "index": k, "accumulate": 1,
                    "base": pbase + (block.e0 + j) * shape.F * shape.M + block.m0})
            ctx.set(dut.sender_job, {
                "filter_tags": len(ftags), "filter_words": per_key, "ifmap_tags": len(itags),
                "chans": ap.pe.chans, "taps": ap.pe.taps, "stride": ap.pe.stride,
                "cols": ap.pe.cols, "pos_stride": shape.C})
            ctx.set(dut.pass_cfg, ap.pe.const(cfg))
            ctx.set(dut.writer_job, {"tops": len(tops), "filters": ap.pe.filters,
                                     "cols": ap.pe.cols, "col_stride": shape.M})
            ctx.set(dut.start_pass, 1)
            await ctx.tick()
            ctx.set(dut.start_pass, 0)
            while not ctx.get(dut.pass_done):
                await ctx.tick()
            status["pass_errors"].append(ctx.get(dut.pass_error))
        while ctx.get(dut.busy):
            await ctx.tick()
        ctx.set(dut.store_job, {"src": pbase, "count": count,
                                "container": OUT_CONTAINERS.index(container),
                                "stage": outstage_config_value(cfg, stage)})
        ctx.set(dut.start_store, 1)
        await ctx.tick()
        ctx.set(dut.start_store, 0)
        while not ctx.get(dut.store_done):
            await ctx.tick()
        status["glb_error"] = ctx.get(dut.glb_error)

    async def sink(ctx):
        for _ in range(n_out):
            out.append(await stream_get(ctx, dut.o_wdata, Stalls(rng, stall_prob)))

    run_sim(dut, control, sink, deadline_cycles=400_000)
    assert status["pass_errors"] == [0] * len(passes) and status["glb_error"] == 0
    per = cfg.dram_data_bits // container
    signed_out = stage is None or not stage.relu
    vals = []
    for word in out:
        for i in range(per):
            v = (word >> (i * container)) & ((1 << container) - 1)
            vals.append(v - (1 << container) if signed_out and v >> (container - 1) else v)
    return np.array(vals[:count]).reshape(shape.E, shape.F, shape.M).transpose(2, 0, 1)


@pytest.mark.parametrize("name,shape,pa,act_signed,stage", [
    ("tiny", ConvShape(C=3, H=7, W=6, M=3, R=3, S=3, stride=1), 8, False,
     OutputStage(mult=5, shift=8, relu=True, out_bits=8)),
    ("tiny", ConvShape(C=2, H=8, W=7, M=2, R=5, S=2, stride=2), 4, True, None),
    ("default", ConvShape(C=5, H=6, W=7, M=5, R=2, S=3, stride=1), 6, True,
     OutputStage(mult=-3, shift=4, relu=False, out_bits=16)),
])
def test_core_runs_layer_from_glb(name, shape, pa, act_signed, stage):
    cfg = preset(name)
    rng = np.random.default_rng(shape.C * 7 + pa)
    alo, ahi = value_range(pa, act_signed)
    wlo, whi = value_range(cfg.weight_bits, True)
    x = rng.integers(alo, ahi + 1, (shape.C, shape.H, shape.W))
    w = rng.integers(wlo, whi + 1, (shape.M, shape.C, shape.R, shape.S))
    bias = rng.integers(-1000, 1000, shape.M)
    y = run_layer(cfg, shape, x, w, bias, stage, pa, act_signed)
    golden = output_stage(conv2d(x[None], w, bias, stride=shape.stride)[0], stage)
    np.testing.assert_array_equal(y, golden)
