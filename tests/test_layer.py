"""gen/layer.py: validation, derived shapes, JSON form, array checks and the golden hook."""

import json

import numpy as np
import pytest

from gen.golden import OutputStage, conv2d, fully_connected, output_stage
from gen.layer import Layer

BASE = dict(N=2, C=3, H=7, W=6, M=4, R=3, S=2, stride=2, pad=1)


def make(**changes):
    return Layer(**{**BASE, **changes})


# Derived quantities ------------------------------------------------------------------------------

def test_derived_shapes_and_macs():
    lay = make()
    assert (lay.E, lay.F) == ((7 + 2 - 3) // 2 + 1, (6 + 2 - 2) // 2 + 1) == (4, 4)
    assert lay.input_shape == (2, 3, 7, 6)
    assert lay.weight_shape == (4, 3, 3, 2)
    assert lay.bias_shape == (4,)
    assert lay.output_shape == (2, 4, 4, 4)
    assert lay.macs == 2 * 4 * 4 * 4 * 3 * 3 * 2
    assert not lay.is_fc
    assert lay.act_range == (0, 255) and lay.weight_range == (-128, 127)
    assert make(act_signed=True, act_bits=4).act_range == (-8, 7)


def test_defaults():
    lay = Layer(N=1, C=1, H=3, W=3, M=1, R=3, S=3)
    assert (lay.stride, lay.pad, lay.act_bits, lay.weight_bits) == (1, 0, 8, 8)
    assert lay.act_signed is False and lay.output is None and lay.name == ""
    assert lay.output_shape == (1, 1, 1, 1)


def test_fc():
    lay = Layer.fc(3, 10, 5, act_bits=4, act_signed=True, name="fc")
    assert lay.is_fc and lay.input_shape == (3, 10, 1, 1) and lay.output_shape == (3, 5, 1, 1)
    assert lay.macs == 150 and lay.act_bits == 4 and lay.act_signed and lay.name == "fc"
    with pytest.raises(ValueError, match=r"H: fixed for a fully connected layer \(got 2\)"):
        Layer.fc(1, 2, 3, H=2)


def test_numpy_integers_are_stored_as_int():
    lay = make(C=np.int64(3), act_signed=np.True_)
    assert type(lay.C) is int and lay.act_signed is True
    json.dumps(lay.to_dict())


def test_frozen_and_replace():
    lay = make()
    with pytest.raises(AttributeError):
        lay.C = 5
    assert lay.replace(C=5).C == 5
    with pytest.raises(ValueError, match="C: must be >= 1"):
        lay.replace(C=0)


def test_summary():
    assert make(name="x.conv").summary() == \
        "x.conv: N=2 C=3 7x6 -> M=4 4x4, 3x2/2 pad 1, 2,304 MACs"
    assert "fc" in Layer.fc(1, 2, 3).summary()


# Validation: one case per rule --------------------------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    *[({f: 0}, rf"{f}: must be >= 1 \(got 0\)") for f in "NCHWMRS"],
    ({"N": True}, r"N: must be an integer \(got True\)"),
    ({"H": 7.0}, r"H: must be an integer \(got 7.0\)"),
    ({"stride": "2"}, r"stride: must be an integer \(got '2'\)"),
    ({"stride": 0}, r"stride: must be >= 1 \(got 0\)"),
    ({"pad": -1}, r"pad: must be >= 0 \(got -1\)"),
    ({"H": 2, "W": 9, "R": 7, "pad": 1}, r"R: must be <= H \+ 2\*pad = 4 \(got 7\)"),
    ({"H": 3, "R": 7, "pad": 1}, r"R: must be <= H \+ 2\*pad = 5 \(got 7\)"),
    ({"W": 1, "S": 4, "pad": 1}, r"S: must be <= W \+ 2\*pad = 3 \(got 4\)"),
    ({"act_bits": 0}, r"act_bits: must be in 1..16 \(got 0\)"),
    ({"act_bits": 17}, r"act_bits: must be in 1..16 \(got 17\)"),
    ({"weight_bits": 1}, r"weight_bits: must be in 2..16 \(got 1\)"),
    ({"weight_bits": 17}, r"weight_bits: must be in 2..16 \(got 17\)"),
    ({"act_signed": 1}, r"act_signed: must be a bool \(got 1\)"),
    ({"name": 3}, r"name: must be a str \(got 3\)"),
    ({"output": {"relu": True}}, r"output: must be an OutputStage or None \(got \{'relu': True\}\)"),
    ({"output": OutputStage(mult=1.5)}, r"output.mult: must be an integer \(got 1.5\)"),
    ({"output": OutputStage(relu=1)}, r"output.relu: must be a bool \(got 1\)"),
])
def test_validation(changes, message):
    with pytest.raises(ValueError, match=message):
        make(**changes)


def test_boundary_values_accepted():
    make(H=1, W=1, R=3, S=3, pad=1)           # R == H + 2*pad
    make(act_bits=1, act_signed=True)          # 1-bit signed: -1..0
    make(act_bits=16, weight_bits=16)
    make(weight_bits=2, output=OutputStage(mult=-(2**15), shift=47, relu=True, out_bits=16))


# JSON ---------------------------------------------------------------------------------------------

DOC_EXAMPLE = {"N": 1, "C": 3, "H": 5, "W": 5, "M": 2, "R": 3, "S": 3, "stride": 1, "pad": 0,
               "act_bits": 8, "weight_bits": 8, "act_signed": False,
               "output": {"mult": 3, "shift": 4, "relu": True, "out_bits": 8}}


@pytest.mark.parametrize("lay", [
    make(),
    make(act_signed=True, act_bits=3, weight_bits=5, name="a.b",
         output=OutputStage(mult=-7, shift=9, relu=False, out_bits=12)),
    Layer.fc(2, 5, 3),
])
def test_dict_and_json_round_trip(lay):
    assert Layer.from_dict(lay.to_dict()) == lay
    assert Layer.from_json(lay.to_json()) == lay
    assert Layer.from_dict(json.loads(json.dumps(lay.to_dict()))) == lay


def test_to_dict_form():
    d = make(output=OutputStage(mult=2)).to_dict()
    assert d == {**BASE, "act_bits": 8, "weight_bits": 8, "act_signed": False, "name": "",
                 "output": {"mult": 2, "shift": 0, "relu": False, "out_bits": 8}}
    assert make().to_dict()["output"] is None


def test_from_dict_documented_format():
    lay = Layer.from_dict(DOC_EXAMPLE)
    assert lay.output == OutputStage(mult=3, shift=4, relu=True, out_bits=8)
    assert lay.output_shape == (1, 2, 3, 3)
    minimal = Layer.from_dict({k: DOC_EXAMPLE[k] for k in "NCHWMRS"})
    assert minimal == lay.replace(output=None)
    assert Layer.from_dict({**DOC_EXAMPLE, "output": None}).output is None
    # Output fields not given take OutputStage defaults.
    assert Layer.from_dict({**DOC_EXAMPLE, "output": {"relu": True}}).output == OutputStage(relu=True)


def test_load_and_save(tmp_path):
    path = tmp_path / "layer.json"
    path.write_text(json.dumps(DOC_EXAMPLE))
    assert Layer.load(path) == Layer.from_dict(DOC_EXAMPLE)
    assert Layer.load(str(path)) == Layer.from_dict(DOC_EXAMPLE)
    lay = make(name="saved", output=OutputStage(shift=3))
    lay.save(tmp_path / "saved.json")
    assert Layer.load(tmp_path / "saved.json") == lay


def test_load_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{\"N\": 1,")
    with pytest.raises(ValueError, match=r"bad.json: invalid JSON"):
        Layer.load(bad)
    bad.write_text(json.dumps({**DOC_EXAMPLE, "R": 9}))
    with pytest.raises(ValueError, match=r"bad.json: R: must be <= H \+ 2\*pad = 5 \(got 9\)"):
        Layer.load(bad)


@pytest.mark.parametrize("d, message", [
    ({**DOC_EXAMPLE, "dilation": 2},
     r"dilation: unknown layer field \(known: N, C, H, W, M, R, S, stride, pad, act_bits, "
     r"weight_bits, act_signed, output, name\)"),
    ({k: v for k, v in DOC_EXAMPLE.items() if k != "M"},
     r"M: required layer field missing \(required: N, C, H, W, M, R, S\)"),
    ({k: v for k, v in DOC_EXAMPLE.items() if k not in ("C", "S")},
     r"C, S: required layer fields missing \(required: N, C, H, W, M, R, S\)"),
    ({**DOC_EXAMPLE, "output": {"mult": 3, "round": 1}},
     r"output.round: unknown output field \(known: mult, shift, relu, out_bits\)"),
    ({**DOC_EXAMPLE, "output": 3}, r"output: must be an object or null \(got 3\)"),
    ({**DOC_EXAMPLE, "output": {"mult": 1.5}}, r"output.mult: must be an integer \(got 1.5\)"),
    ({**DOC_EXAMPLE, "output": {"relu": 1}}, r"output.relu: must be a bool \(got 1\)"),
    ({**DOC_EXAMPLE, "output": {"shift": 48}}, r"output.shift: must be in 0..47 \(got 48\)"),
    ({**DOC_EXAMPLE, "act_signed": "false"}, r"act_signed: must be a bool \(got 'false'\)"),
    ({**DOC_EXAMPLE, "stride": 1.0}, r"stride: must be an integer \(got 1.0\)"),
    ([1, 2], r"layer: must be a JSON object \(got list\)"),
])
def test_from_dict_errors(d, message):
    with pytest.raises(ValueError, match=message):
        Layer.from_dict(d)


# Arrays -------------------------------------------------------------------------------------------

def arrays(lay):
    x = np.zeros(lay.input_shape, dtype=np.int64)
    w = np.zeros(lay.weight_shape, dtype=np.int64)
    return x, w, np.zeros(lay.bias_shape, dtype=np.int64)


def test_check_arrays_accepts_extremes():
    for act_signed in (False, True):
        lay = make(act_bits=5, weight_bits=3, act_signed=act_signed)
        x, w, bias = arrays(lay)
        x[0, 0, 0, 0], x[-1, -1, -1, -1] = lay.act_range
        w[0, 0, 0, 0], w[-1, -1, -1, -1] = -4, 3
        bias[0], bias[1] = -(2**31), 2**31 - 1
        lay.check_arrays(x, w, bias)
        lay.check_arrays(x.astype(np.int8), w.astype(np.int16), bias.astype(np.int32))
        lay.check_arrays(x.tolist(), w.tolist())


@pytest.mark.parametrize("which, change, message", [
    ("x", lambda a: a[:, :2], r"x: shape must be \(N, C, H, W\) = \(2, 3, 7, 6\) \(got \(2, 2, 7, 6\)\)"),
    ("w", lambda a: a[0], r"w: shape must be \(M, C, R, S\) = \(4, 3, 3, 2\) \(got \(3, 3, 2\)\)"),
    ("bias", lambda a: a[:, None], r"bias: shape must be \(M,\) = \(4,\) \(got \(4, 1\)\)"),
    ("x", lambda a: a.astype(float), r"x: dtype must be an integer type \(got float64\)"),
    ("w", lambda a: a.astype(bool), r"w: dtype must be an integer type \(got bool\)"),
    ("bias", lambda a: a.astype(np.float32), r"bias: dtype must be an integer type \(got float32\)"),
])
def test_check_arrays_shape_and_dtype_errors(which, change, message):
    lay = make()
    x, w, bias = arrays(lay)
    args = {"x": x, "w": w, "bias": bias}
    args[which] = change(args[which])
    with pytest.raises(ValueError, match=message):
        lay.check_arrays(**args)


@pytest.mark.parametrize("act_signed, which, index, value, message", [
    (False, "x", (1, 2, 3, 4), -1,
     r"x: values must be in 0..15 \(4-bit unsigned\) \(got -1 at index \(1, 2, 3, 4\)\)"),
    (False, "x", (0, 0, 0, 1), 16,
     r"x: values must be in 0..15 \(4-bit unsigned\) \(got 16 at index \(0, 0, 0, 1\)\)"),
    (True, "x", (1, 0, 6, 5), -9,
     r"x: values must be in -8..7 \(4-bit signed\) \(got -9 at index \(1, 0, 6, 5\)\)"),
    (True, "x", (0, 1, 0, 0), 8, r"x: values must be in -8..7 \(4-bit signed\) \(got 8 at index"),
    (False, "w", (3, 2, 1, 0), -33,
     r"w: values must be in -32..31 \(6-bit signed\) \(got -33 at index \(3, 2, 1, 0\)\)"),
    (False, "w", (0, 0, 2, 1), 32, r"w: values must be in -32..31 \(6-bit signed\) \(got 32 at"),
    (False, "bias", (2,), 2**31,
     r"bias: values must be in -2147483648..2147483647 \(32-bit signed\) \(got 2147483648 at "
     r"index \(2,\)\)"),
    (False, "bias", (0,), -(2**31) - 1, r"bias: values must be in .* \(got -2147483649 at index \(0,\)\)"),
])
def test_check_arrays_range_errors(act_signed, which, index, value, message):
    lay = make(act_bits=4, weight_bits=6, act_signed=act_signed)
    x, w, bias = arrays(lay)
    args = {"x": x, "w": w, "bias": bias}
    args[which][index] = value
    with pytest.raises(ValueError, match=message):
        lay.check_arrays(**args)


def test_check_arrays_reports_first_offender_in_c_order():
    lay = make(act_bits=2)
    x, w, _ = arrays(lay)
    x[1, 0, 0, 0] = 9
    x[0, 2, 6, 5] = -1
    with pytest.raises(ValueError, match=r"got -1 at index \(0, 2, 6, 5\)"):
        lay.check_arrays(x, w)


def test_random_arrays():
    for act_signed in (False, True):
        lay = make(act_bits=3, weight_bits=2, act_signed=act_signed, N=3, H=9, W=9)
        x, w, bias = lay.random_arrays(np.random.default_rng(5))
        assert bias is None
        assert x.dtype == w.dtype == np.int64
        lay.check_arrays(x, w)
        # Small ranges are covered end to end.
        assert (x.min(), x.max()) == lay.act_range and (w.min(), w.max()) == (-2, 1)
        x, w, bias = lay.random_arrays(7, with_bias=True)
        lay.check_arrays(x, w, bias)
        assert bias.shape == (lay.M,) and bias.dtype == np.int64
    x1, w1, b1 = make().random_arrays(11, with_bias=True)
    x2, w2, b2 = make().random_arrays(np.random.default_rng(11), with_bias=True)
    assert np.array_equal(x1, x2) and np.array_equal(w1, w2) and np.array_equal(b1, b2)
    wide = make(act_bits=16, weight_bits=16, C=512, R=7, S=7, H=7, W=7)
    wide.check_arrays(*wide.random_arrays(0, with_bias=True))


def test_golden():
    stage = OutputStage(mult=5, shift=6, relu=True, out_bits=8)
    lay = make(act_signed=True, output=stage)
    x, w, bias = lay.random_arrays(3, with_bias=True)
    y = lay.golden(x, w, bias)
    assert y.shape == lay.output_shape
    assert np.array_equal(y, output_stage(conv2d(x, w, bias, stride=2, pad=1), stage))
    raw = lay.replace(output=None).golden(x, w)
    assert np.array_equal(raw, conv2d(x, w, stride=2, pad=1))
    with pytest.raises(ValueError, match="x: values must be in -128..127"):
        lay.golden(x * 1000, w)


def test_golden_fc_matches_fully_connected():
    lay = Layer.fc(4, 9, 5, act_signed=True, weight_bits=4)
    x, w, bias = lay.random_arrays(2, with_bias=True)
    y = lay.golden(x, w, bias)
    assert np.array_equal(y[:, :, 0, 0], fully_connected(x[:, :, 0, 0], w[:, :, 0, 0], bias))
