"""Unit tests of rtl/sender.py: GLB-resident filters and ifmaps become the array's word streams."""

import random
from collections import deque

import numpy as np
import pytest

from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from gen.golden import conv2d, value_range
from gen.rowstationary import ConvShape, filter_words, ifmap_words, output_slots, plan_conv
from rtl.array import PeArray
from rtl.config import preset
from rtl.passcfg import array_pe_cfg_layout, pe_pass_layout
from rtl.sender import (SENDER_ADDR_BITS, Sender, act_container_bits, filter_word_bits,
                        sender_job_layout, sender_table_layout)
from tests.simutil import Stalls, run_sim, stream_get, stream_put


def pack(values, bits, per_word):
    """Pack unsigned ``bits``-wide values, ``per_word`` to a word, into a list of word ints."""
    words = []
    for i in range(0, len(values), per_word):
        w = 0
        for k, v in enumerate(values[i:i + per_word]):
            w |= (int(v) & ((1 << bits) - 1)) << (k * bits)
        words.append(w)
    return words


def glb_image(cfg, ap, x, w):
    """GLB words holding the pass's filter keys (send order) then the ifmap tensor (H, W, C).

    Returns (words, filter table, ifmap table, job fields).
    """
    lanes, wcont = cfg.lanes, filter_word_bits(cfg) // cfg.lanes
    acont = act_container_bits(cfg)
    bus = cfg.dram_data_bits
    fw = filter_words(cfg, ap, w)
    ftags, itags = ap.tags()
    per_key = len(fw) // len(ftags)
    fvals = []
    for _, lanes_w in fw:
        fvals.append(sum((v & ((1 << wcont) - 1)) << (l * wcont) for l, v in enumerate(lanes_w)))
    fwords = pack(fvals, filter_word_bits(cfg), bus // filter_word_bits(cfg))
    C, H, W = x.shape
    hwc = np.transpose(x, (1, 2, 0)).reshape(-1)
    iwords = pack(hwc, acont, bus // acont)
    ibase_word = len(fwords)
    ibase = ibase_word * (bus // acont)                 # element address of the tensor
    ftable = {t: t * per_key for t in range(len(ftags))}
    itable = {t: ibase + (h * W) * C + c0 for (c0, h), t in itags.items()}
    job = {"filter_tags": len(ftags), "filter_words": per_key, "ifmap_tags": len(itags),
           "chans": ap.pe.chans, "taps": ap.pe.taps, "stride": ap.pe.stride,
           "cols": ap.pe.cols, "pos_stride": C}
    return fwords + iwords, ftable, itable, job


def run_sender(cfg, ap, x, w, stall_prob, seed):
    dut = Sender(cfg)
    words, ftable, itable, job = glb_image(cfg, ap, x, w)
    rng = random.Random(seed)
    pending = deque()
    got_f, got_i = [], []
    fw, iw = filter_words(cfg, ap, w), ifmap_words(cfg, ap, x)
    state = {"done": False}

    async def control(ctx):
        for t, base in ftable.items():
            await stream_put(ctx, dut.i_table, {"ifmap": 0, "index": t, "base": base})
        for t, base in itable.items():
            await stream_put(ctx, dut.i_table, {"ifmap": 1, "index": t, "base": base})
        ctx.set(dut.job, job)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        while not ctx.get(dut.done):
            await ctx.tick()
        state["done"] = True

    async def glb_requests(ctx):
        for _ in range(len(fw) + len(iw)):
            addr = await stream_get(ctx, dut.o_glb_addr, Stalls(rng, stall_prob))
            pending.append(words[addr])

    async def glb_responses(ctx):
        for _ in range(len(fw) + len(iw)):
            while not pending:
                await ctx.tick()
            await stream_put(ctx, dut.i_glb_data, pending.popleft(), Stalls(rng, stall_prob))

    async def filters(ctx):
        for _ in fw:
            v = await stream_get(ctx, dut.o_filter, Stalls(rng, stall_prob))
            got_f.append((v.tag, [int(x) for x in v.word]))

    async def ifmaps(ctx):
        for _ in iw:
            v = await stream_get(ctx, dut.o_ifmap, Stalls(rng, stall_prob))
            got_i.append((v.tag, v.act))

    run_sim(dut, control, glb_requests, glb_responses, filters, ifmaps, deadline_cycles=50_000)
    assert state["done"]
    assert got_f == fw
    assert got_i == iw


CASES = [
    ("tiny", ConvShape(C=3, H=7, W=6, M=3, R=3, S=3, stride=1), 8, False),
    ("tiny", ConvShape(C=2, H=9, W=8, M=2, R=5, S=2, stride=2), 5, True),
    ("default", ConvShape(C=5, H=6, W=9, M=6, R=2, S=3, stride=3), 8, True),
    ("eyeriss", ConvShape(C=2, H=6, W=6, M=2, R=3, S=3, stride=1), 16, True),
]


@pytest.mark.parametrize("stall_prob", [0.0, 0.3])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_sender_streams_match_schedule(case, stall_prob):
    """Every pass of the layer: the sender's streams equal gen.rowstationary's, word for word."""
    name, shape, pa, act_signed = CASES[case]
    cfg = preset(name)
    rng = np.random.default_rng(case)
    alo, ahi = value_range(pa, act_signed)
    wlo, whi = value_range(cfg.weight_bits, True)
    x = rng.integers(alo, ahi + 1, (shape.C, shape.H, shape.W))
    w = rng.integers(wlo, whi + 1, (shape.M, shape.C, shape.R, shape.S))
    for k, ap in enumerate(plan_conv(cfg, shape, pa=pa, act_signed=act_signed)[:2]):
        run_sender(cfg, ap, x, w, stall_prob, seed=case * 10 + k)


def test_sender_rejects_filter_words_wider_than_the_bus():
    with pytest.raises(ValueError, match="lanes: a filter word"):
        Sender(preset("tiny").replace(lanes=8))


class SenderArray(wiring.Component):
    """Test harness: the sender's buses drive a PE array (what the accelerator top will do)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.sender, self.array = Sender(cfg), PeArray(cfg)
        super().__init__({
            "i_table": In(stream.Signature(sender_table_layout(cfg))),
            "job": In(sender_job_layout(cfg)),
            "i_pe_cfg": In(stream.Signature(array_pe_cfg_layout(cfg))),
            "pass_cfg": In(pe_pass_layout(cfg)),
            "start": In(1),
            "o_glb_addr": Out(stream.Signature(unsigned(SENDER_ADDR_BITS))),
            "i_glb_data": In(stream.Signature(unsigned(cfg.dram_data_bits))),
            "o_psum": Out(stream.Signature(data.StructLayout({"data": signed(cfg.psum_bits),
                                                              "last": 1}))),
            "done": Out(1),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.sender, m.submodules.array = s, a = self.sender, self.array
        wiring.connect(m, wiring.flipped(self.i_table), s.i_table)
        wiring.connect(m, wiring.flipped(self.i_pe_cfg), a.i_pe_cfg)
        wiring.connect(m, s.o_glb_addr, wiring.flipped(self.o_glb_addr))
        wiring.connect(m, wiring.flipped(self.i_glb_data), s.i_glb_data)
        wiring.connect(m, a.o_psum, wiring.flipped(self.o_psum))
        wiring.connect(m, s.o_filter, a.i_filter)
        wiring.connect(m, s.o_ifmap, a.i_ifmap)
        m.d.comb += [s.job.eq(self.job), a.pass_cfg.eq(self.pass_cfg), s.start.eq(self.start),
                     a.start.eq(self.start), self.done.eq(a.done), self.error.eq(a.error)]
        return m


@pytest.mark.parametrize("case", [0, 1])
def test_sender_feeds_array_whole_layer(case):
    """GLB image -> sender -> PE array -> outputs: the layer equals the golden convolution."""
    name, shape, pa, act_signed = CASES[case]
    cfg = preset(name)
    rng = np.random.default_rng(100 + case)
    alo, ahi = value_range(pa, act_signed)
    wlo, whi = value_range(cfg.weight_bits, True)
    x = rng.integers(alo, ahi + 1, (shape.C, shape.H, shape.W))
    w = rng.integers(wlo, whi + 1, (shape.M, shape.C, shape.R, shape.S))
    passes = plan_conv(cfg, shape, pa=pa, act_signed=act_signed)
    dut = SenderArray(cfg)
    prng = random.Random(case)
    y = np.zeros((shape.M, shape.E, shape.F), dtype=np.int64)
    plan = [(ap, *glb_image(cfg, ap, x, w), output_slots(cfg, ap)) for ap in passes]
    pending = deque()

    async def control(ctx):
        for ap, words, ftable, itable, job, slots in plan:
            for t, base in ftable.items():
                await stream_put(ctx, dut.i_table, {"ifmap": 0, "index": t, "base": base})
            for t, base in itable.items():
                await stream_put(ctx, dut.i_table, {"ifmap": 1, "index": t, "base": base})
            roles = ap.pe_configs()
            for c in range(cfg.cols):
                for r in range(cfg.rows):
                    pc = roles.get((r, c))
                    word = {"index": c * cfg.rows + r, "enable": pc is not None}
                    if pc is not None:
                        word.update(filter_tag=pc.filter_tag, ifmap_tag=pc.ifmap_tag,
                                    accumulate=pc.accumulate, top=pc.top)
                    await stream_put(ctx, dut.i_pe_cfg, word)
            ctx.set(dut.job, job)
            ctx.set(dut.pass_cfg, ap.pe.const(cfg))
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            while not ctx.get(dut.done):
                await ctx.tick()
            assert not ctx.get(dut.error)
            await ctx.tick()

    async def glb_requests(ctx):
        for ap, words, *_ in plan:
            for _ in range(len(filter_words(cfg, ap, w)) + len(ifmap_words(cfg, ap, x))):
                addr = await stream_get(ctx, dut.o_glb_addr, Stalls(prng, 0.2))
                pending.append(words[addr])

    async def glb_responses(ctx):
        for ap, *_ in plan:
            for _ in range(len(filter_words(cfg, ap, w)) + len(ifmap_words(cfg, ap, x))):
                while not pending:
                    await ctx.tick()
                await stream_put(ctx, dut.i_glb_data, pending.popleft(), Stalls(prng, 0.2))

    async def outputs(ctx):
        for *_, slots in plan:
            for slot in slots:
                y[slot] += (await stream_get(ctx, dut.o_psum, Stalls(prng, 0.2))).data

    run_sim(dut, control, glb_requests, glb_responses, outputs, deadline_cycles=200_000)
    np.testing.assert_array_equal(y, conv2d(x[None], w, stride=shape.stride)[0])
