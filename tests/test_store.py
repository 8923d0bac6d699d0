"""Unit tests of rtl/store.py: GLB psums -> output stage -> packed DRAM words, against golden."""

import random
from collections import deque

import numpy as np
import pytest

from gen import packing
from gen.golden import OutputStage, output_stage
from rtl.buffers import psum_container_bits, psums_per_word
from rtl.config import preset
from rtl.outstage import outstage_config_value
from rtl.store import OUT_CONTAINERS, StorePath
from tests.simutil import (Stalls, cycle_counter, pulse_and_wait, run_sim, stream_collect,
                           stream_get, stream_put)


def run_store(cfg, glb_words, src, count, container, stage, stall_prob, seed, pack=False,
              pack_signed=False):
    dut = StorePath(cfg)
    rng = random.Random(seed)
    bus = cfg.dram_data_bits
    per = bus // container
    n_out = -(-count // per)
    k = psums_per_word(cfg)
    n_req = (src + count - 1) // k - src // k + 1
    pending, out, flags = deque(), [], {}

    async def control(ctx):
        ctx.set(dut.job, {"src": src, "count": count,
                          "container": OUT_CONTAINERS.index(container),
                          "stage": outstage_config_value(cfg, stage), "pack": pack,
                          "pack_signed": pack_signed})
        await pulse_and_wait(ctx, dut.start, dut.done)
        flags["error"] = ctx.get(dut.error)

    async def requests(ctx):
        for _ in range(n_req):
            pending.append(glb_words[await stream_get(ctx, dut.o_glb_addr, Stalls(rng, stall_prob))])

    async def responses(ctx):
        for _ in range(n_req):
            while not pending:
                await ctx.tick()
            await stream_put(ctx, dut.i_glb_data, pending.popleft(), Stalls(rng, stall_prob))

    async def sink(ctx):
        if not pack:
            for _ in range(n_out):
                out.append(await stream_get(ctx, dut.o_wdata, Stalls(rng, stall_prob)))
            return
        # packed: as many words as the data needs
        await stream_collect(ctx, dut.o_wdata, out, rng, stall_prob, lambda: "error" in flags)

    run_sim(dut, control, requests, responses, sink, cycle_counter(flags),
            deadline_cycles=50_000)
    assert flags["error"] == 0
    run_store.cycles = flags["cycles"]
    return out


@pytest.mark.parametrize("name,psum_bits", [("tiny", 32), ("default", 32), ("eyeriss", 48)])
@pytest.mark.parametrize("stall_prob", [0.0, 0.3])
def test_store_matches_golden_output_stage(name, psum_bits, stall_prob):
    cfg = preset(name).replace(psum_bits=psum_bits)
    rng = np.random.default_rng(len(name) + psum_bits)
    pc, k, bus = psum_container_bits(cfg), psums_per_word(cfg), cfg.dram_data_bits
    nwords = 40
    elems = rng.integers(-(1 << (psum_bits - 1)), 1 << (psum_bits - 1), nwords * k)
    elems[:4] = [-(1 << (psum_bits - 1)), (1 << (psum_bits - 1)) - 1, 0, -1]
    glb = [sum((int(elems[w * k + i]) & ((1 << pc) - 1)) << (i * pc) for i in range(k))
           for w in range(nwords)]
    cases = [(None, 32 if psum_bits <= 32 else 64),
             (OutputStage(mult=3, shift=20, relu=True, out_bits=8), 8),
             (OutputStage(mult=-7, shift=9, relu=False, out_bits=16), 16),
             (OutputStage(mult=1, shift=0, relu=False, out_bits=8), 16)]
    for j, (stage, container) in enumerate(cases):
        if container > bus:
            continue
        src = int(rng.integers(0, 5))
        count = int(rng.integers(1, nwords * k - src))
        words = run_store(cfg, glb, src, count, container, stage, stall_prob, seed=j)
        per = bus // container
        assert len(words) == -(-count // per)
        signed_out = stage is None or not stage.relu     # ReLU outputs are unsigned
        got = []
        for w in words:
            for i in range(per):
                v = (w >> (i * container)) & ((1 << container) - 1)
                got.append(v - (1 << container) if signed_out and v >> (container - 1) else v)
        expected = output_stage(elems[src:src + count], stage)
        assert got[:count] == [int(v) for v in expected]
        assert all(v == 0 for v in got[count:])              # zero padding


@pytest.mark.parametrize("name,group", [("tiny", 8), ("default", 16)])
@pytest.mark.parametrize("stall_prob", [0.0, 0.3])
def test_store_packed_matches_codec(name, group, stall_prob):
    """Packed stores: the words are the codec's packing of the golden output stage's values."""
    cfg = preset(name).replace(pack_group=group)
    rng = np.random.default_rng(group)
    pc, k, bus = psum_container_bits(cfg), psums_per_word(cfg), cfg.dram_data_bits
    nwords = 40
    elems = rng.integers(-(1 << 20), 1 << 20, nwords * k) >> rng.integers(0, 20, nwords * k)
    elems[rng.random(nwords * k) < 0.4] = 0
    glb = [sum((int(elems[w * k + i]) & ((1 << pc) - 1)) << (i * pc) for i in range(k))
           for w in range(nwords)]
    cases = [(OutputStage(mult=3, shift=12, relu=True, out_bits=8), 8, False),
             (OutputStage(mult=-7, shift=9, relu=False, out_bits=16), 16, True),
             (OutputStage(mult=5, shift=14, relu=False, out_bits=8), 8, True),
             (OutputStage(mult=1, shift=0, relu=True, out_bits=16), 16, False)]
    for j, (stage, container, signed) in enumerate(cases):
        src = int(rng.integers(0, 5))
        count = int(rng.integers(1, nwords * k - src))
        words = run_store(cfg, glb, src, count, container, stage, stall_prob, seed=j,
                          pack=True, pack_signed=signed)
        expected = output_stage(elems[src:src + count], stage)
        assert words == packing.pack(expected, container, group, signed, bus)


@pytest.mark.parametrize("pack_group,container", [(0, 8), (8, 32)])
def test_store_rejects_unpackable_jobs(pack_group, container):
    """A packed job without packing hardware or with raw 32-bit containers ends with error."""
    cfg = preset("tiny").replace(pack_group=pack_group)
    dut = StorePath(cfg)
    seen = {}

    async def bench(ctx):
        ctx.set(dut.job, {"src": 0, "count": 4, "container": OUT_CONTAINERS.index(container),
                          "stage": outstage_config_value(cfg, None), "pack": 1})
        await pulse_and_wait(ctx, dut.start, dut.done)
        seen["error"] = ctx.get(dut.error)

    run_sim(dut, bench, deadline_cycles=100)
    assert seen == {"error": 1}


@pytest.mark.parametrize("count,container", [(0, 8), (4, 64)])
def test_store_rejects_impossible_jobs(count, container):
    """A zero count or a container wider than the bus (tiny: 32 bits) ends with error, no hang."""
    cfg = preset("tiny")
    dut = StorePath(cfg)
    seen = {}

    async def bench(ctx):
        ctx.set(dut.job, {"src": 0, "count": count, "container": OUT_CONTAINERS.index(container),
                          "stage": outstage_config_value(cfg, None)})
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for _ in range(20):
            if ctx.get(dut.done):
                seen["error"] = ctx.get(dut.error)
                break
            assert not ctx.get(dut.o_glb_addr.valid)
            await ctx.tick()

    run_sim(dut, bench, deadline_cycles=100)
    assert seen == {"error": 1}


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_store_moves_one_element_per_cycle(name):
    """Without back-pressure a store takes ``count`` cycles plus a fixed pipeline latency,
    also when every GLB word holds one element (no bubble between words)."""
    cfg = preset(name)
    k = psums_per_word(cfg)
    glb = list(range(200))
    cycles = {}
    for count in (40, 120):
        run_store(cfg, glb, 0, count, 32, None, 0.0, seed=0)
        cycles[count] = run_store.cycles
    assert cycles[120] - cycles[40] == 80, (k, cycles)
