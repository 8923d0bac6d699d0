"""Unit tests of gen/packing.py (the reference codec) and rtl/packing.py (packer, unpacker)."""

import random

import numpy as np
import pytest

from gen import packing
from rtl.config import preset
from rtl.packing import GroupPacker, GroupUnpacker
from rtl.sender import act_container_bits
from tests.simutil import (Stalls, cycle_counter, pulse_and_wait, run_sim, stream_collect,
                           stream_put)


def _values(rng, n, container, signed, zero_frac=0.3):
    """Random values of mixed magnitude (so groups get different precisions), some zeros."""
    lo, hi = (-(1 << (container - 1)), (1 << (container - 1)) - 1) if signed else \
        (0, (1 << container) - 1)
    v = rng.integers(lo, hi + 1, n) >> rng.integers(0, container, n)
    v[rng.random(n) < zero_frac] = 0
    return v


# ---- reference codec ---------------------------------------------------------------------

@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("container", [8, 16])
@pytest.mark.parametrize("group,bus", [(4, 32), (8, 64), (16, 64), (32, 128)])
def test_codec_round_trip(signed, container, group, bus):
    rng = np.random.default_rng(container * group + bus + signed)
    for n in (1, group - 1, group, 3 * group + 1, 200):
        v = _values(rng, n, container, signed)
        words = packing.pack(v, container, group, signed, bus)
        assert len(words) == packing.packed_words(v, container, group, signed, bus)
        assert len(words) <= packing.worst_case_words(n, container, group, bus)
        assert all(0 <= w < 1 << bus for w in words)
        np.testing.assert_array_equal(packing.unpack(words, n, container, group, signed, bus), v)


def test_codec_format_by_hand():
    # unsigned 8-bit, groups of 4 on 32-bit words: [3, 1, 0, 2] -> p=2: header 2 (4 bits), then
    # 11 01 00 10; [0, 0] -> p=0: header only
    words = packing.pack([3, 1, 0, 2, 0, 0], 8, 4, False, 32)
    bits = 2 | (3 << 4) | (1 << 6) | (0 << 8) | (2 << 10)          # then header 0 at bit 12
    assert words == [bits]
    # signed: -1 needs 1 bit, 1 needs 2: p=2 for [-1, 1] -> 11 01
    assert packing.pack([-1, 1], 8, 4, True, 32) == [2 | (3 << 4) | (1 << 6)]
    assert packing.value_width([0, 1, 255, 256], False).tolist() == [0, 1, 8, 9]
    assert packing.value_width([0, -1, 1, -128, 127, -129], True).tolist() == [0, 1, 2, 8, 8, 9]


def test_codec_errors():
    with pytest.raises(ValueError, match="container"):
        packing.pack([1], 12, 4, False, 32)
    with pytest.raises(ValueError, match="group"):
        packing.pack([1], 8, 0, False, 32)
    with pytest.raises(ValueError, match="values: must be in 0..255"):
        packing.pack([256], 8, 4, False, 32)
    with pytest.raises(ValueError, match="values: must be in -128..127"):
        packing.pack([-129], 8, 4, True, 32)
    with pytest.raises(ValueError, match="ends after"):
        packing.unpack([0xFFFF_FFF8], 9, 8, 4, False, 32)          # p=8: 32 more bits missing
    with pytest.raises(ValueError, match="precision 9"):
        packing.unpack([9], 1, 8, 4, False, 32)


def test_config_pack_group_rule():
    cfg = preset("default")
    assert cfg.replace(pack_group=16).pack_group == 16
    for bad in (4, 12, 512, -8):                 # default: 8 activations per 64-bit word
        with pytest.raises(ValueError, match=r"pack_group: must be 0 or a power of two .* "
                                             r"\(here 8\)"):
            cfg.replace(pack_group=bad)


# ---- packer ------------------------------------------------------------------------------

def run_packer(cfg, segments, stall_prob, seed):
    """Pack each ``(values, container, signed)`` segment; returns the word lists."""
    dut = GroupPacker(cfg)
    rng = random.Random(seed)
    outs, state = [], {"seg": 0}

    async def source(ctx):
        for k, (vals, container, signed) in enumerate(segments):
            while state["seg"] != k:             # the mode holds for a whole segment
                await ctx.tick()
            ctx.set(dut.container16, container == 16)
            ctx.set(dut.signed, signed)
            for i, v in enumerate(vals):
                await stream_put(ctx, dut.i_data, {"value": int(v) & 0xFFFF,
                                                   "last": i == len(vals) - 1},
                                 Stalls(rng, stall_prob))

    async def sink(ctx):
        for _ in segments:
            words = []
            await stream_collect(ctx, dut.o_data, words, rng, stall_prob,
                                 lambda: ctx.get(dut.done))
            outs.append(words)
            state["seg"] += 1

    run_sim(dut, source, sink, deadline_cycles=200_000)
    return outs


@pytest.mark.parametrize("name,group", [("tiny", 4), ("tiny", 16), ("default", 16),
                                        ("default", 8)])
@pytest.mark.parametrize("stall_prob", [0.0, 0.4])
def test_packer_matches_codec(name, group, stall_prob):
    cfg = preset(name).replace(pack_group=group)
    rng = np.random.default_rng(group + int(stall_prob * 10))
    segments = []
    for container, signed, n in [(8, False, 50), (8, True, 3 * group), (16, True, 1),
                                 (16, False, 2 * group + 3), (8, False, group)]:
        segments.append((_values(rng, n, container, signed), container, signed))
    segments.append((np.zeros(group + 1, dtype=np.int64), 8, False))     # zero groups: headers
    segments.append((np.full(group, 255), 8, False))                     # full precision
    segments.append((np.full(group, -128), 8, True))
    outs = run_packer(cfg, segments, stall_prob, seed=group)
    for (vals, container, signed), got in zip(segments, outs):
        assert got == packing.pack(vals, container, group, signed, cfg.dram_data_bits)


def test_packer_throughput():
    """Without stalls the packer takes one element per cycle, groups back to back."""
    cfg = preset("default").replace(pack_group=16)
    dut = GroupPacker(cfg)
    n = 16 * 8
    rng = np.random.default_rng(5)
    vals = _values(rng, n, 8, False, zero_frac=0.0)
    t = {}

    async def source(ctx):
        ctx.set(dut.o_data.ready, 1)
        for i, v in enumerate(vals):
            await stream_put(ctx, dut.i_data, {"value": int(v), "last": i == n - 1})
        t["in"] = t.get("cycle", 0)

    async def clock(ctx):
        t["cycle"] = 0
        while not ctx.get(dut.done):
            await ctx.tick()
            t["cycle"] += 1

    run_sim(dut, source, clock, deadline_cycles=10_000)
    assert t["in"] <= n + 1


def test_packer_needs_pack_group():
    with pytest.raises(ValueError, match="pack_group"):
        GroupPacker(preset("default"))
    with pytest.raises(ValueError, match="pack_group"):
        GroupUnpacker(preset("default"))


# ---- unpacker ----------------------------------------------------------------------------

def run_unpacker(cfg, words, n_out, signed, stall_prob, seed, extra_words=0):
    """Feed ``words`` (plus ``extra_words`` zero words) as one DMA read; returns (outputs,
    error, cycles)."""
    dut = GroupUnpacker(cfg)
    rng = random.Random(seed)
    feed = list(words) + [0] * extra_words
    outs, flags = [], {}

    async def control(ctx):
        ctx.set(dut.job, {"words": n_out, "signed": signed})
        await pulse_and_wait(ctx, dut.start, dut.done)
        flags["error"] = ctx.get(dut.error)

    async def source(ctx):
        for i, w in enumerate(feed):
            await stream_put(ctx, dut.i_data, {"data": w, "last": i == len(feed) - 1},
                             Stalls(rng, stall_prob))

    async def sink(ctx):
        await stream_collect(ctx, dut.o_data, outs, rng, stall_prob, lambda: "error" in flags)

    run_sim(dut, control, source, sink, cycle_counter(flags), deadline_cycles=100_000)
    return outs, flags["error"], flags["cycles"]


def _glb_words(vals, cfg):
    cont = act_container_bits(cfg)
    per = cfg.dram_data_bits // cont
    mask = (1 << cont) - 1
    return [sum((int(v) & mask) << (j * cont) for j, v in enumerate(vals[w:w + per]))
            for w in range(0, len(vals), per)]


@pytest.mark.parametrize("name,group", [("tiny", 4), ("tiny", 8), ("default", 8),
                                        ("default", 32), ("eyeriss", 16)])
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("stall_prob", [0.0, 0.4])
def test_unpacker_matches_codec(name, group, signed, stall_prob):
    cfg = preset(name).replace(pack_group=group)
    cont, bus = act_container_bits(cfg), cfg.dram_data_bits
    per = bus // cont
    rng = np.random.default_rng(group + signed)
    for n_words in (1, group // per, 7 * group // per + 1):
        vals = _values(rng, n_words * per, cont, signed)
        vals[:group] = 0                          # a zero group (header only)
        vals[-1] = (1 << (cont - 1)) - 1          # a full-precision group
        words = packing.pack(vals, cont, group, signed, bus)
        got, err, _ = run_unpacker(cfg, words, n_words, signed, stall_prob, seed=n_words,
                                   extra_words=1)
        assert err == 0
        assert got == _glb_words(vals, cfg)


def test_unpacker_rate():
    """At full precision the unpacker writes close to a GLB word per cycle."""
    cfg = preset("default").replace(pack_group=16)
    n_words = 64
    vals = np.full(n_words * 8, 255)
    words = packing.pack(vals, 8, 16, False, 64)
    got, err, cycles = run_unpacker(cfg, words, n_words, False, 0.0, seed=1)
    assert err == 0 and got == _glb_words(vals, cfg)
    assert cycles <= len(words) * 1.1 + 10


@pytest.mark.parametrize("case", ["truncated", "bad_header"])
def test_unpacker_errors_end_the_job(case):
    cfg = preset("default").replace(pack_group=8)
    vals = np.full(32, 7)
    words = packing.pack(vals, 8, 8, False, 64)
    if case == "truncated":
        words = words[:-1]
    else:
        words[0] |= 0xF                          # precision 15 > 8
    got, err, _ = run_unpacker(cfg, words, 4, False, 0.2, seed=3)
    assert err == 1
    assert len(got) < 4
