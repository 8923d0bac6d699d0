"""Unit tests of rtl/sender.py: GLB-resident filters and ifmaps become the array's word streams."""

import random
from collections import deque

import numpy as np
import pytest

from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from gen.glbplan import plan_layer
from gen.golden import conv2d, value_range
from gen.rowstationary import ConvShape, filter_words, ifmap_words, output_slots
from rtl.array import PeArray
from rtl.config import preset
from rtl.passcfg import array_pe_cfg_layout, pe_pass_layout
from rtl.sender import (SENDER_ADDR_BITS, Sender,
                        sender_job_layout, sender_table_layout)
from tests.simutil import Stalls, pulse_and_wait, run_sim, stream_get, stream_put


def run_sender(cfg, words, cmd, x, w, stall_prob, seed):
    """Run pass ``cmd`` (a gen.glbplan.PassCommands) from GLB image ``words``; check the streams.
    Returns the cycle of every ifmap word's handshake."""
    dut = Sender(cfg)
    ap, job = cmd.array_pass, cmd.sender_job
    rng = random.Random(seed)
    pending = deque()
    got_f, got_i = [], []
    fw, iw = filter_words(cfg, ap, w), ifmap_words(cfg, ap, x)
    state = {"done": False}

    async def control(ctx):
        for entry in cmd.sender_table:
            await stream_put(ctx, dut.i_table, entry)
        ctx.set(dut.job, job)
        await pulse_and_wait(ctx, dut.start, dut.done)
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

    cycle, times = [0], []

    async def ifmaps(ctx):
        for _ in iw:
            v = await stream_get(ctx, dut.o_ifmap, Stalls(rng, stall_prob))
            got_i.append((v.tag, v.act))
            times.append(cycle[0])

    async def clock(ctx):
        while True:
            await ctx.tick()
            cycle[0] += 1

    run_sim(dut, control, glb_requests, glb_responses, filters, ifmaps, monitors=[clock],
            deadline_cycles=50_000)
    assert state["done"]
    assert got_f == fw
    assert got_i == iw
    return times


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
    plan = plan_layer(cfg, shape, x, w, pa=pa, act_signed=act_signed, chain=True)
    for k, cmd in enumerate(plan.passes[:2]):
        run_sender(cfg, plan.words, cmd, x, w, stall_prob, seed=case * 10 + k)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_ifmap_keys_follow_each_other_without_a_gap(case):
    """Without stalls the ifmap words of a pass leave one per cycle, across keys and columns:
    the table is read one key ahead (keys of one word included: the 1x1 pass below)."""
    name, shape, pa, act_signed = CASES[case]
    cfg = preset(name)
    rng = np.random.default_rng(case)
    x = rng.integers(0, 2, (shape.C, shape.H, shape.W))
    w = rng.integers(-2, 2, (shape.M, shape.C, shape.R, shape.S))
    plan = plan_layer(cfg, shape, x, w, pa=pa, act_signed=act_signed, chain=True)
    times = run_sender(cfg, plan.words, plan.passes[0], x, w, 0.0, seed=case)
    assert times[-1] - times[0] == len(times) - 1
    one_word = ConvShape(C=1, H=4, W=6, M=2, R=1, S=1, stride=1)      # q*stride = 1 word a key
    x1, w1 = x[:1, :4, :6], w[:2, :1, :1, :1]
    plan = plan_layer(cfg, one_word, x1, w1, pa=pa, act_signed=act_signed, chain=True)
    times = run_sender(cfg, plan.words, plan.passes[0], x1, w1, 0.0, seed=case)
    assert times[-1] - times[0] == len(times) - 1


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
    dut = SenderArray(cfg)
    prng = random.Random(case)
    y = np.zeros((shape.M, shape.E, shape.F), dtype=np.int64)
    layer = plan_layer(cfg, shape, x, w, pa=pa, act_signed=act_signed, chain=True)
    words = layer.words
    pending = deque()

    def reads(cmd):
        ap = cmd.array_pass
        return len(filter_words(cfg, ap, w)) + len(ifmap_words(cfg, ap, x))

    async def control(ctx):
        for cmd in layer.passes:
            for entry in cmd.sender_table:
                await stream_put(ctx, dut.i_table, entry)
            for role in cmd.roles:
                await stream_put(ctx, dut.i_pe_cfg, role)
            ctx.set(dut.job, cmd.sender_job)
            ctx.set(dut.pass_cfg, cmd.array_pass.pe.const(cfg))
            await pulse_and_wait(ctx, dut.start, dut.done)
            assert not ctx.get(dut.error)
            await ctx.tick()

    async def glb_requests(ctx):
        for cmd in layer.passes:
            for _ in range(reads(cmd)):
                pending.append(words[await stream_get(ctx, dut.o_glb_addr, Stalls(prng, 0.2))])

    async def glb_responses(ctx):
        for cmd in layer.passes:
            for _ in range(reads(cmd)):
                while not pending:
                    await ctx.tick()
                await stream_put(ctx, dut.i_glb_data, pending.popleft(), Stalls(prng, 0.2))

    async def outputs(ctx):
        for cmd in layer.passes:
            for slot in output_slots(cfg, cmd.array_pass):
                y[slot] += (await stream_get(ctx, dut.o_psum, Stalls(prng, 0.2))).data

    run_sim(dut, control, glb_requests, glb_responses, outputs, deadline_cycles=200_000)
    np.testing.assert_array_equal(y, conv2d(x[None], w, stride=shape.stride)[0])
