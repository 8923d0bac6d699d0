"""Unit tests of rtl/outstage.py against gen.golden.output_stage (bias, requantise, ReLU, saturate)."""

import math
import random
from fractions import Fraction

import numpy as np
import pytest
from amaranth.hdl import Fragment, Shape

from gen.golden import OutputStage, output_stage, value_range
from rtl.config import AccelConfig, preset
from rtl.outstage import (BIAS_BITS, OUTSTAGE_LATENCY, OutputStageUnit, outstage_cfg_layout,
                          outstage_config_value)
from tests.simutil import Stalls, run_sim, stream_get, stream_put

INT64_LIMIT = 1 << 63

#: Table of edge-case stages (plus random ones per run); ``None`` is the raw pass-through.
EDGE_STAGES = [
    None,
    OutputStage(mult=1, shift=0, relu=False, out_bits=16),
    OutputStage(mult=1, shift=0, relu=True, out_bits=16),
    OutputStage(mult=-(1 << 15), shift=0, relu=False, out_bits=16),
    OutputStage(mult=-(1 << 15), shift=47, relu=False, out_bits=16),
    OutputStage(mult=(1 << 15) - 1, shift=47, relu=True, out_bits=16),
    OutputStage(mult=(1 << 15) - 1, shift=47, relu=False, out_bits=1),
    OutputStage(mult=0, shift=5, relu=False, out_bits=8),
    OutputStage(mult=0, shift=0, relu=True, out_bits=1),
    OutputStage(mult=-1, shift=1, relu=False, out_bits=1),
    OutputStage(mult=1, shift=1, relu=True, out_bits=1),
    OutputStage(mult=1, shift=3, relu=False, out_bits=16),
    OutputStage(mult=-1, shift=4, relu=False, out_bits=12),
    OutputStage(mult=12, shift=6, relu=False, out_bits=8),
    OutputStage(mult=-7, shift=9, relu=True, out_bits=12),
    OutputStage(mult=3, shift=20, relu=False, out_bits=8),
]


# Reference ----------------------------------------------------------------------------------------

def exact_output_stage(s, stage):
    """gen.golden.output_stage on one Python int, for values where its int64 arithmetic would wrap."""
    y = s * stage.mult
    if stage.shift:
        y = (y + (1 << (stage.shift - 1))) >> stage.shift
    if stage.relu:
        y = max(y, 0)
    lo, hi = value_range(stage.out_bits, stage.out_signed)
    return min(max(y, lo), hi)


def golden_defined(s, stage):
    """True when golden's int64 evaluation of ``s`` under ``stage`` cannot overflow."""
    return abs(s) < INT64_LIMIT and abs(s * stage.mult) + (1 << stage.shift) < INT64_LIMIT


def wrap(value, bits):
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def expected_data(cfg, acc, bias, stage):
    """The ``data`` the unit must produce for one word (``stage`` None: raw ``acc + bias``)."""
    s = acc + bias
    if stage is None:
        return wrap(s, cfg.psum_bits)
    if golden_defined(s, stage):
        return int(output_stage(np.array([s], dtype=np.int64), stage)[0])
    return exact_output_stage(s, stage)


def is_tie(s, stage):
    """``s * mult`` lies exactly half-way between two multiples of ``2**shift``."""
    return stage is not None and stage.shift > 0 and \
        (s * stage.mult) % (1 << stage.shift) == 1 << (stage.shift - 1)


# Stimulus -----------------------------------------------------------------------------------------

def random_stage(rng, cfg):
    relu = bool(rng.getrandbits(1))
    out_bits = rng.randint(1, min(16, cfg.psum_bits - relu))
    return OutputStage(mult=rng.randint(-(1 << 15), (1 << 15) - 1), shift=rng.randint(0, 47),
                       relu=relu, out_bits=out_bits)


def _split(rng, cfg, s):
    """``(acc, bias)`` in range with ``acc + bias == s`` (``s`` clipped to what is reachable)."""
    a_lo, a_hi = value_range(cfg.psum_bits, True)
    b_lo, b_hi = value_range(BIAS_BITS, True)
    s = min(max(s, a_lo + b_lo), a_hi + b_hi)
    lo, hi = max(b_lo, s - a_hi), min(b_hi, s - a_lo)
    bias = rng.choice([lo, hi, 0, rng.randint(lo, hi)]) if lo <= 0 <= hi else rng.randint(lo, hi)
    return s - bias, bias


def random_word(rng, cfg, stage):
    """One ``(acc, bias)``: extremes, full-range, in-range-of-the-output, or an exact rounding tie."""
    a_lo, a_hi = value_range(cfg.psum_bits, True)
    b_lo, b_hi = value_range(BIAS_BITS, True)
    kind = rng.random()
    if kind < 0.2:
        return rng.choice([a_lo, a_hi, 0, -1, 1]), rng.choice([b_lo, b_hi, 0, -1, 1])
    if kind < 0.4 or stage is None or stage.mult == 0:
        return rng.randint(a_lo, a_hi), rng.randint(b_lo, b_hi)
    # Aim at an output value near the saturation range (a little outside it now and then).
    o_lo, o_hi = value_range(stage.out_bits, stage.out_signed)
    y = rng.randint(o_lo - 2, o_hi + 2)
    s = (y << stage.shift) // stage.mult + rng.randint(-2, 2)
    if kind < 0.7 and stage.shift:
        # Move s to the nearest exact tie s*mult = (2q+1) * 2**(shift-1) (if mult allows one).
        twos = (stage.mult & -stage.mult).bit_length() - 1
        k = stage.shift - twos
        if k >= 1:
            odd = stage.mult >> twos
            s0 = ((1 << (k - 1)) * pow(odd, -1, 1 << k)) % (1 << k)
            s -= (s - s0) % (1 << k)
    return _split(rng, cfg, s)


def make_words(cfg, seed, blocks, stages=None):
    """Blocks of words sharing a stage; ``last`` ends each block. Returns dicts with the expectation."""
    rng = random.Random(seed)
    stages = [st for st in (EDGE_STAGES if stages is None else stages)
              if st is None or st.out_bits + st.relu <= cfg.psum_bits]
    words = []
    for b in range(blocks):
        stage = stages[b] if b < len(stages) else random_stage(rng, cfg)
        n = rng.randint(1, 24)
        for i in range(n):
            acc, bias = random_word(rng, cfg, stage)
            words.append({"acc": acc, "bias": bias, "last": i == n - 1, "stage": stage,
                          "expected": expected_data(cfg, acc, bias, stage)})
    return words


# Simulation ---------------------------------------------------------------------------------------

CONFIGS = {
    "p32": preset("tiny"),                                          # psum_bits 32
    "p48": preset("eyeriss"),                                       # psum_bits 48
    "p64": preset("tiny").replace(name="p64", psum_bits=64),
    "p17": preset("tiny").replace(name="p17", psum_bits=17),
}


def run_words(cfg, words, in_stall, out_stall, seed):
    """Stream ``words`` through the unit with random stalls; return outputs and the o_data trace."""
    dut = OutputStageUnit(cfg)
    rng = random.Random(seed)
    got, trace = [], []

    async def producer(ctx):
        stalls = Stalls(rng, in_stall)
        for w in words:
            ctx.set(dut.stage_cfg, outstage_config_value(cfg, w["stage"]))
            await stream_put(ctx, dut.i_acc, {"acc": w["acc"], "bias": w["bias"], "last": w["last"]},
                             stalls)

    async def consumer(ctx):
        stalls = Stalls(rng, out_stall)
        for _ in words:
            out = await stream_get(ctx, dut.o_data, stalls)
            got.append((out.data, out.last))

    async def monitor(ctx):
        while True:
            _, _, valid, ready, payload, i_ready = await ctx.tick().sample(
                dut.o_data.valid, dut.o_data.ready, dut.o_data.payload, dut.i_acc.ready)
            trace.append((valid, ready, payload.as_value().value, i_ready))

    run_sim(dut, producer, consumer, monitors=[monitor], deadline_cycles=20 * len(words) + 1000)
    return got, trace


def check_outputs(cfg, words, got):
    assert len(got) == len(words)
    for n, (w, (data, last)) in enumerate(zip(words, got)):
        assert (data, last) == (w["expected"], w["last"]), \
            f"word {n}: acc={w['acc']} bias={w['bias']} stage={w['stage']}"


def check_stream_rules(trace):
    """A stalled o_data word stays offered, unchanged, until taken."""
    for (v0, r0, p0, _), (v1, _, p1, _) in zip(trace, trace[1:]):
        if v0 and not r0:
            assert v1 and p1 == p0, "o_data changed or dropped while stalled"


@pytest.mark.parametrize("stalls", [(0.0, 0.0), (0.3, 0.3), (0.0, 0.6), (0.6, 0.0)],
                         ids=["free", "both", "out", "in"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_outstage_random_words(name, stalls):
    cfg = CONFIGS[name]
    seed = {"p32": 11, "p48": 12, "p64": 13, "p17": 14}[name] * 100 + int(stalls[0] * 10 + stalls[1])
    words = make_words(cfg, seed, blocks=100)
    got, trace = run_words(cfg, words, *stalls, seed)
    check_outputs(cfg, words, got)
    check_stream_rules(trace)
    ties = sum(is_tie(w["acc"] + w["bias"], w["stage"]) for w in words)
    negative_ties = sum(is_tie(w["acc"] + w["bias"], w["stage"])
                        and (w["acc"] + w["bias"]) * w["stage"].mult < 0 for w in words)
    assert ties >= 20 and negative_ties >= 5, "stimulus lost its rounding ties"
    if cfg.psum_bits == 64:   # |acc + bias| * 2**15 fits int64 up to psum_bits 48
        assert any(not golden_defined(w["acc"] + w["bias"], w["stage"])
                   for w in words if w["stage"] is not None), "no word beyond int64"


def test_outstage_saturates_both_ways_and_covers_edges():
    """The stimulus reaches both saturation limits for signed and unsigned outputs, shift 0 and 47."""
    cfg = CONFIGS["p48"]
    words = make_words(cfg, 7, blocks=60)
    seen = set()
    for w in words:
        st = w["stage"]
        if st is None:
            continue
        lo, hi = value_range(st.out_bits, st.out_signed)
        seen.add(("hi", st.relu) if w["expected"] == hi else ("lo", st.relu) if w["expected"] == lo
                 else ("mid", st.relu))
    assert seen == {(k, r) for k in ("hi", "lo", "mid") for r in (False, True)}
    shifts = {w["stage"].shift for w in words if w["stage"] is not None}
    assert {0, 47} <= shifts
    got, _ = run_words(cfg, words, 0.2, 0.2, 7)
    check_outputs(cfg, words, got)


def test_reference_matches_golden_and_first_principles():
    """exact_output_stage (used where int64 would wrap) agrees with golden where golden is defined,
    and with the exact rational definition everywhere."""
    rng = random.Random(3)
    cfg = CONFIGS["p32"]
    for _ in range(60):
        stage = random_stage(rng, cfg)
        vals = [rng.randint(-(1 << 40), 1 << 40) >> rng.randint(0, 40) for _ in range(200)]
        vals = [v for v in vals if golden_defined(v, stage)]
        gold = output_stage(np.array(vals, dtype=np.int64), stage)
        assert [exact_output_stage(v, stage) for v in vals] == [int(g) for g in gold]
    for _ in range(2000):
        stage = random_stage(rng, cfg)
        s = rng.randint(-(1 << 65), 1 << 65) >> rng.randint(0, 64)
        exact = Fraction(s * stage.mult, 1 << stage.shift)   # an integer when shift == 0
        y = math.floor(exact + Fraction(1, 2)) if stage.shift else int(exact)
        if stage.relu:
            y = max(y, 0)
        lo, hi = value_range(stage.out_bits, stage.out_signed)
        assert exact_output_stage(s, stage) == min(max(y, lo), hi)


def test_outstage_throughput_and_latency():
    """Unstalled, N words take N + latency cycles, one accepted per cycle, first out after 3 cycles."""
    cfg = CONFIGS["p32"]
    words = make_words(cfg, 21, blocks=8)
    dut = OutputStageUnit(cfg)
    accepted, emitted, got = [], [], []

    async def driver(ctx):
        ctx.set(dut.o_data.ready, 1)
        cycle = 0
        pending = list(words)
        while len(got) < len(words):
            if pending:
                w = pending[0]
                ctx.set(dut.stage_cfg, outstage_config_value(cfg, w["stage"]))
                ctx.set(dut.i_acc.payload, {"acc": w["acc"], "bias": w["bias"], "last": w["last"]})
            ctx.set(dut.i_acc.valid, bool(pending))
            _, _, i_ok, o_ok, out = await ctx.tick().sample(
                dut.i_acc.valid & dut.i_acc.ready, dut.o_data.valid, dut.o_data.payload)
            if i_ok:
                accepted.append(cycle)
                pending.pop(0)
            if o_ok:
                emitted.append(cycle)
                got.append((out.data, out.last))
            cycle += 1

    run_sim(dut, driver, deadline_cycles=2000)
    n = len(words)
    check_outputs(cfg, words, got)
    assert accepted == list(range(n)), "input stalled without back-pressure"
    assert emitted == [c + OUTSTAGE_LATENCY for c in range(n)]
    assert emitted[-1] - accepted[0] + 1 == n + OUTSTAGE_LATENCY


def test_outstage_fills_and_drains_under_full_stall():
    """With o_data stalled the pipeline takes exactly 3 words, then ready falls; ready never depends on
    i_acc.valid; releasing the stall delivers each word once, in order."""
    cfg = CONFIGS["p48"]
    words = make_words(cfg, 5, blocks=2)[:6]
    dut = OutputStageUnit(cfg)
    got = []

    async def bench(ctx):
        ctx.set(dut.o_data.ready, 0)
        assert ctx.get(dut.i_acc.ready) == 1, "not ready after reset"
        taken = 0
        for _ in range(10):
            w = words[taken]
            ctx.set(dut.stage_cfg, outstage_config_value(cfg, w["stage"]))
            ctx.set(dut.i_acc.payload, {"acc": w["acc"], "bias": w["bias"], "last": w["last"]})
            ctx.set(dut.i_acc.valid, 0)
            r0 = ctx.get(dut.i_acc.ready)
            ctx.set(dut.i_acc.valid, 1)
            assert ctx.get(dut.i_acc.ready) == r0, "i_acc.ready depends on i_acc.valid"
            _, _, ok = await ctx.tick().sample(dut.i_acc.ready)
            taken += ok
        ctx.set(dut.i_acc.valid, 0)
        assert taken == OUTSTAGE_LATENCY
        assert ctx.get(dut.o_data.valid) == 1
        for w in words[taken:]:
            ctx.set(dut.stage_cfg, outstage_config_value(cfg, w["stage"]))
            await stream_put(ctx, dut.i_acc, {"acc": w["acc"], "bias": w["bias"], "last": w["last"]})

    async def consumer(ctx):
        await ctx.tick().repeat(20)
        for _ in words:
            out = await stream_get(ctx, dut.o_data)
            got.append((out.data, out.last))

    run_sim(dut, bench, consumer, deadline_cycles=500)
    check_outputs(cfg, words, got)


# Configuration helper and constructor validation ----------------------------------------------------

def test_config_value_fields():
    cfg = CONFIGS["p32"]
    layout = outstage_cfg_layout(cfg)
    assert {name: Shape.cast(field.shape).width for name, field in layout} == \
        {"enable": 1, "mult": 16, "shift": 6, "relu": 1, "out_bits": 5}
    v = outstage_config_value(cfg, OutputStage(mult=-32768, shift=47, relu=True, out_bits=16))
    assert (v.enable, v.mult, v.shift, v.relu, v.out_bits) == (1, -32768, 47, 1, 16)
    v = outstage_config_value(cfg, OutputStage(mult=32767, shift=0, relu=False, out_bits=1))
    assert (v.enable, v.mult, v.shift, v.relu, v.out_bits) == (1, 32767, 0, 0, 1)
    assert outstage_config_value(cfg, None).enable == 0


BAD_HELPER = [
    ("p32", {"relu": True}, "stage: must be a gen.golden.OutputStage or None (got {'relu': True})"),
    ("p32", 3, "stage: must be a gen.golden.OutputStage or None (got 3)"),
    ("small", OutputStage(out_bits=8, relu=True),
     "stage.out_bits: result needs 9 bits but psum_bits is 8 (got 8)"),
]


@pytest.mark.parametrize("cfg_name,stage,message", BAD_HELPER)
def test_config_value_validation(cfg_name, stage, message):
    cfg = AccelConfig(act_bits=2, weight_bits=2, psum_bits=8) if cfg_name == "small" \
        else CONFIGS[cfg_name]
    with pytest.raises(ValueError) as info:
        outstage_config_value(cfg, stage)
    assert str(info.value) == message


def test_config_value_accepts_fitting_stage_on_small_psum():
    cfg = AccelConfig(act_bits=2, weight_bits=2, psum_bits=8)
    assert outstage_config_value(cfg, OutputStage(out_bits=8, relu=False)).out_bits == 8
    assert outstage_config_value(cfg, OutputStage(out_bits=7, relu=True)).out_bits == 7


def test_constructor_validation():
    with pytest.raises(TypeError) as info:
        OutputStageUnit("tiny")
    assert str(info.value) == "cfg: must be an AccelConfig (got 'tiny')"


def test_signature_follows_config():
    for psum in (17, 32, 48, 64):
        cfg = preset("tiny").replace(psum_bits=psum)
        dut = OutputStageUnit(cfg)
        Fragment.get(dut, None)   # elaborates at these widths
        assert dut.i_acc.payload.shape().size == psum + BIAS_BITS + 1
        assert dut.o_data.payload.shape().size == psum + 1
        assert dut.stage_cfg.shape() == outstage_cfg_layout(cfg)
