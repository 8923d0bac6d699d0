"""gen/golden.py against independent direct-loop references (conv2d, FC, output stage)."""

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gen.golden import OutputStage, conv2d, fully_connected, output_stage, pad_input, value_range


# Independent references: Python integers and explicit loops, no padding array, no NumPy arithmetic.

def ref_conv2d(x, w, bias, stride, pad):
    """Direct seven-loop convolution; out-of-bounds taps (the padding) contribute nothing."""
    x, w = np.asarray(x).tolist(), np.asarray(w).tolist()
    n_, c_, h_, w_ = len(x), len(x[0]), len(x[0][0]), len(x[0][0][0])
    m_, r_, s_ = len(w), len(w[0][0]), len(w[0][0][0])
    e_ = (h_ + 2 * pad - r_) // stride + 1
    f_ = (w_ + 2 * pad - s_) // stride + 1
    out = []
    for n in range(n_):
        planes = []
        for m in range(m_):
            rows = []
            for e in range(e_):
                row = []
                for f in range(f_):
                    acc = int(bias[m]) if bias is not None else 0
                    for c in range(c_):
                        for r in range(r_):
                            for s in range(s_):
                                hh, ww = e * stride + r - pad, f * stride + s - pad
                                if 0 <= hh < h_ and 0 <= ww < w_:
                                    acc += w[m][c][r][s] * x[n][c][hh][ww]
                    row.append(acc)
                rows.append(row)
            planes.append(rows)
        out.append(planes)
    return out


def ref_fc(x, w, bias):
    x, w = np.asarray(x).tolist(), np.asarray(w).tolist()
    return [[sum(a * b for a, b in zip(xn, wm)) + (int(bias[m]) if bias is not None else 0)
             for m, wm in enumerate(w)] for xn in x]


def ref_output_stage(acc, stage):
    """The documented formula from first principles: exact rational, then round half up."""
    y = Fraction(acc * stage.mult, 1 << stage.shift)
    y = math.floor(y + Fraction(1, 2)) if stage.shift else int(y)
    if stage.relu:
        y = max(y, 0)
    bits = stage.out_bits
    lo, hi = (0, (1 << bits) - 1) if stage.relu else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    return min(max(y, lo), hi)


def random_with_extremes(rng, shape, lo, hi, p_extreme=0.25):
    """Uniform values in lo..hi with a share forced to lo and to hi."""
    a = rng.integers(lo, hi, shape, dtype=np.int64, endpoint=True)
    u = rng.random(shape)
    a[u < p_extreme] = lo
    a[u > 1 - p_extreme] = hi
    return a


def check_conv(x, w, bias, stride, pad):
    got = conv2d(x, w, bias, stride=stride, pad=pad)
    assert got.dtype == np.int64
    assert got.tolist() == ref_conv2d(x, w, bias, stride, pad)


# value_range ------------------------------------------------------------------------------------

@pytest.mark.parametrize("bits", range(1, 17))
def test_value_range(bits):
    assert value_range(bits, False) == (0, 2**bits - 1)
    assert value_range(bits, True) == (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


# conv2d -----------------------------------------------------------------------------------------

@st.composite
def conv_cases(draw):
    r, s = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride, pad = draw(st.integers(1, 4)), draw(st.integers(0, 3))
    h = draw(st.integers(max(1, r - 2 * pad), max(1, r - 2 * pad) + 6))
    w = draw(st.integers(max(1, s - 2 * pad), max(1, s - 2 * pad) + 6))
    dims = dict(n=draw(st.integers(1, 3)), c=draw(st.integers(1, 3)), m=draw(st.integers(1, 3)),
                h=h, w=w, r=r, s=s, stride=stride, pad=pad)
    act_bits, act_signed = draw(st.integers(1, 16)), draw(st.booleans())
    weight_bits = draw(st.integers(2, 16))
    with_bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    return dims, act_bits, act_signed, weight_bits, with_bias, seed


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_cases())
def test_conv2d_matches_direct_loops(case):
    d, act_bits, act_signed, weight_bits, with_bias, seed = case
    rng = np.random.default_rng(seed)
    x = random_with_extremes(rng, (d["n"], d["c"], d["h"], d["w"]), *value_range(act_bits, act_signed))
    w = random_with_extremes(rng, (d["m"], d["c"], d["r"], d["s"]), *value_range(weight_bits, True))
    bias = random_with_extremes(rng, (d["m"],), *value_range(32, True)) if with_bias else None
    check_conv(x, w, bias, d["stride"], d["pad"])


@pytest.mark.parametrize("act_signed", [False, True])
@pytest.mark.parametrize("act_bits", range(1, 17))
def test_conv2d_every_activation_precision(act_bits, act_signed):
    """Seeded sweep: each activation precision with a weight precision cycling through 2..16."""
    rng = np.random.default_rng(1000 * act_bits + act_signed)
    weight_bits = 2 + (act_bits + 7 * act_signed) % 15
    a_lo, a_hi = value_range(act_bits, act_signed)
    w_lo, w_hi = value_range(weight_bits, True)
    for n, c, h, wd, m, r, s, stride, pad in [(1, 2, 5, 6, 3, 3, 2, 1, 1), (2, 3, 7, 4, 2, 2, 4, 2, 0),
                                              (3, 1, 4, 4, 2, 1, 3, 3, 3), (1, 2, 9, 9, 2, 4, 1, 4, 2)]:
        x = random_with_extremes(rng, (n, c, h, wd), a_lo, a_hi)
        w = random_with_extremes(rng, (m, c, r, s), w_lo, w_hi)
        bias = rng.integers(-(2**31), 2**31 - 1, m, endpoint=True) if n != 2 else None
        check_conv(x, w, bias, stride, pad)


@pytest.mark.parametrize("weight_bits", range(2, 17))
@pytest.mark.parametrize("act_signed", [False, True])
def test_conv2d_all_extreme_values(weight_bits, act_signed):
    """Every operand at an extreme: the largest products and sums of a precision pair."""
    act_bits = 16
    a_lo, a_hi = value_range(act_bits, act_signed)
    w_lo, w_hi = value_range(weight_bits, True)
    for a, b in [(a_lo, w_lo), (a_hi, w_lo), (a_lo, w_hi), (a_hi, w_hi)]:
        x = np.full((2, 3, 5, 4), a, dtype=np.int64)
        w = np.full((2, 3, 3, 2), b, dtype=np.int64)
        bias = np.array([-(2**31), 2**31 - 1])
        check_conv(x, w, bias, stride=1, pad=1)
        # Every interior output sums all C*R*S taps.
        assert conv2d(x, w, bias, pad=1)[0, 1, 1, 1] == 2**31 - 1 + a * b * 3 * 3 * 2


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32])
def test_conv2d_narrow_input_dtypes_do_not_overflow(dtype):
    info = np.iinfo(dtype)
    x = np.full((1, 4, 3, 3), info.min if info.min else info.max, dtype=dtype)
    w = np.full((2, 4, 3, 3), np.iinfo(np.int8).min, dtype=np.int8)
    bias = np.array([info.max, info.min], dtype=dtype)
    check_conv(x, w, bias, stride=1, pad=0)


def test_conv2d_known_values():
    """A hand-checked case: 3x3 input, 2x2 filter of ones, stride 1, pad 1 (box sums)."""
    x = np.arange(9).reshape(1, 1, 3, 3)
    w = np.ones((1, 1, 2, 2), dtype=np.int64)
    expected = [[0, 1, 3, 2], [3, 8, 12, 7], [9, 20, 24, 13], [6, 13, 15, 8]]
    assert conv2d(x, w, stride=1, pad=1)[0, 0].tolist() == expected
    assert conv2d(x, w, np.array([-5]), stride=2, pad=1)[0, 0].tolist() == [[-5, -2], [4, 19]]


def test_pad_input():
    x = np.arange(4).reshape(1, 1, 2, 2)
    assert pad_input(x, 1)[0, 0].tolist() == [[0, 0, 0, 0], [0, 0, 1, 0], [0, 2, 3, 0], [0, 0, 0, 0]]
    assert pad_input(x, 0).tolist() == x.tolist()


@pytest.mark.parametrize("x_shape, w_shape, kwargs, message", [
    ((1, 3, 5), (2, 3, 3, 3), {}, r"conv2d: x and w must be 4-D \(got 3-D and 4-D\)"),
    ((1, 3, 5, 5), (2, 3, 3), {}, r"conv2d: x and w must be 4-D \(got 4-D and 3-D\)"),
    ((1, 3, 5, 5), (2, 4, 3, 3), {}, "conv2d: w has 4 channels but x has 3"),
    ((1, 3, 5, 5), (2, 3, 3, 3), {"stride": 0}, r"stride must be >= 1 and pad >= 0 \(got 0, 0\)"),
    ((1, 3, 5, 5), (2, 3, 3, 3), {"pad": -1}, r"stride must be >= 1 and pad >= 0 \(got 1, -1\)"),
    ((1, 3, 5, 5), (2, 3, 6, 3), {}, "conv2d: filter 6x3 larger than padded input 5x5"),
    ((1, 3, 2, 5), (2, 3, 5, 3), {"pad": 1}, "conv2d: filter 5x3 larger than padded input 4x7"),
])
def test_conv2d_shape_errors(x_shape, w_shape, kwargs, message):
    with pytest.raises(ValueError, match=message):
        conv2d(np.zeros(x_shape, dtype=np.int64), np.zeros(w_shape, dtype=np.int64), **kwargs)


# fully_connected --------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(20))
def test_fully_connected_matches_direct_loops(seed):
    rng = np.random.default_rng(seed)
    n, c, m = (int(v) for v in rng.integers(1, 9, 3))
    act_bits, act_signed = int(rng.integers(1, 17)), bool(seed % 2)
    weight_bits = int(rng.integers(2, 17))
    x = random_with_extremes(rng, (n, c), *value_range(act_bits, act_signed))
    w = random_with_extremes(rng, (m, c), *value_range(weight_bits, True))
    bias = rng.integers(-(2**31), 2**31 - 1, m, endpoint=True) if seed % 3 else None
    got = fully_connected(x, w, bias)
    assert got.shape == (n, m)
    assert got.tolist() == ref_fc(x, w, bias)


# output_stage -----------------------------------------------------------------------------------

@pytest.mark.parametrize("acc, stage, expected", [
    (7, OutputStage(), 7),                                       # identity, shift 0
    (300, OutputStage(), 127),                                   # saturate signed 8
    (-300, OutputStage(), -128),
    (-300, OutputStage(relu=True), 0),                           # ReLU then unsigned 8
    (300, OutputStage(relu=True), 255),
    (3, OutputStage(shift=1), 2),                                # 1.5 -> 2 (half up)
    (-3, OutputStage(shift=1), -1),                              # -1.5 -> -1 (half up, not away)
    (-5, OutputStage(shift=2), -1),                              # -1.25 -> -1
    (-7, OutputStage(shift=2), -2),                              # -1.75 -> -2
    (5, OutputStage(mult=3, shift=2), 4),                        # 15/4 = 3.75 -> 4
    (5, OutputStage(mult=-3, shift=2), -4),                      # -3.75 -> -4
    (-1, OutputStage(shift=47), 0),                              # tiny negative rounds to 0
    (-(2**47), OutputStage(mult=-(2**15), shift=47, out_bits=16), 2**15 - 1),   # 2**15 saturates
    (-(2**47), OutputStage(mult=-(2**15), shift=47, out_bits=16, relu=True), 2**15),
    (1, OutputStage(out_bits=1), 0),                             # signed 1-bit: -1..0
    (-9, OutputStage(out_bits=1), -1),
    (9, OutputStage(relu=True, out_bits=1), 1),
])
def test_output_stage_table(acc, stage, expected):
    assert ref_output_stage(acc, stage) == expected
    assert output_stage(np.array([acc]), stage).tolist() == [expected]


@st.composite
def stages(draw):
    return OutputStage(mult=draw(st.integers(-(2**15), 2**15 - 1)), shift=draw(st.integers(0, 47)),
                       relu=draw(st.booleans()), out_bits=draw(st.integers(1, 16)))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-(2**47), 2**47 - 1), min_size=1, max_size=16), stages())
def test_output_stage_matches_formula(accs, stage):
    """Accumulators up to 48 bits signed (the widest preset psum) with any stage."""
    got = output_stage(np.array(accs, dtype=np.int64), stage)
    assert got.dtype == np.int64
    assert got.tolist() == [ref_output_stage(a, stage) for a in accs]


@pytest.mark.parametrize("shift", [0, 1, 5, 16])
def test_output_stage_sweep_small_accumulators(shift):
    """Every accumulator in -600..600, negative ones included, with and without ReLU."""
    accs = np.arange(-600, 601)
    for stage in [OutputStage(mult=1, shift=shift), OutputStage(mult=-7, shift=shift, relu=True, out_bits=4),
                  OutputStage(mult=300, shift=shift, out_bits=12)]:
        assert output_stage(accs, stage).tolist() == [ref_output_stage(int(a), stage) for a in accs]


def test_output_stage_none_is_raw_copy():
    acc = np.array([[-(2**40), 5]])
    out = output_stage(acc, None)
    assert out.dtype == np.int64 and out.tolist() == acc.tolist()
    out[0, 0] = 0
    assert acc[0, 0] == -(2**40)


@pytest.mark.parametrize("kwargs, message", [
    ({"mult": 2**15}, r"output.mult: must fit in 16 signed bits \(got 32768\)"),
    ({"mult": -(2**15) - 1}, r"output.mult: must fit in 16 signed bits \(got -32769\)"),
    ({"shift": -1}, r"output.shift: must be in 0..47 \(got -1\)"),
    ({"shift": 48}, r"output.shift: must be in 0..47 \(got 48\)"),
    ({"out_bits": 0}, r"output.out_bits: must be in 1..16 \(got 0\)"),
    ({"out_bits": 17}, r"output.out_bits: must be in 1..16 \(got 17\)"),
])
def test_output_stage_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OutputStage(**kwargs)


def test_output_stage_signedness():
    assert OutputStage(relu=False).out_signed and not OutputStage(relu=True).out_signed
