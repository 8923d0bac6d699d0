"""One convolution layer: shape, number formats and output stage, with validation and JSON form."""

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from gen.golden import OutputStage, conv2d, output_stage, value_range

__all__ = ["Layer", "BIAS_BITS"]

#: Bias values are signed integers of this width (they are added to the accumulator before the
#: output stage).
BIAS_BITS = 32

_SHAPE_FIELDS = ("N", "C", "H", "W", "M", "R", "S")
_INT_FIELDS = _SHAPE_FIELDS + ("stride", "pad", "act_bits", "weight_bits")
_OUTPUT_FIELDS = {"mult": int, "shift": int, "relu": bool, "out_bits": int}


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class Layer:
    """A convolution layer ``y = conv2d(x, w, bias, stride, pad)`` followed by an output stage.

    Tensors are NCHW: activations ``x`` (N, C, H, W), weights ``w`` (M, C, R, S), bias ``(M,)``,
    outputs (N, M, E, F) with ``E = (H + 2*pad - R) // stride + 1`` and likewise ``F`` from W, S.
    Activations are ``act_bits`` wide (the runtime precision ``pa``), signed when ``act_signed``;
    weights are signed ``weight_bits``; bias is signed :data:`BIAS_BITS`. ``output`` is the
    write-back transform (:class:`gen.golden.OutputStage`); ``None`` stores raw accumulators.
    A fully connected layer is the 1x1 convolution built by :meth:`fc`.

    Construction validates every field and raises ``ValueError("<field>: <rule> (got <value>)")``.
    NumPy integer scalars are accepted and stored as ``int``.

    Parameters
    ----------
    N, C, H, W : batch, input channels, input height and width.
    M, R, S : filters (output channels), filter height and width.
    stride, pad : the same in both spatial dimensions; ``pad`` zeros on every side.
    act_bits, act_signed : activation precision (1..16) and signedness.
    weight_bits : signed weight precision (2..16).
    output : :class:`OutputStage` or ``None``.
    name : free-form label such as ``"alexnet.conv1"``.
    """

    N: int
    C: int
    H: int
    W: int
    M: int
    R: int
    S: int
    stride: int = 1
    pad: int = 0
    act_bits: int = 8
    weight_bits: int = 8
    act_signed: bool = False
    output: OutputStage | None = None
    name: str = ""

    def __post_init__(self):
        def rule(ok, field, text):
            if not ok:
                raise ValueError(f"{field}: {text} (got {getattr(self, field)!r})")

        for field in _INT_FIELDS:
            value = getattr(self, field)
            rule(_is_int(value), field, "must be an integer")
            object.__setattr__(self, field, int(value))
        rule(isinstance(self.act_signed, (bool, np.bool_)), "act_signed", "must be a bool")
        object.__setattr__(self, "act_signed", bool(self.act_signed))
        rule(isinstance(self.name, str), "name", "must be a str")
        rule(self.output is None or isinstance(self.output, OutputStage), "output",
             "must be an OutputStage or None")
        if self.output is not None:
            # OutputStage checks ranges only; the types matter to the hardware encoding.
            for key, kind in _OUTPUT_FIELDS.items():
                value = getattr(self.output, key)
                ok = isinstance(value, bool) if kind is bool else _is_int(value)
                if not ok:
                    raise ValueError(f"output.{key}: must be {'a bool' if kind is bool else 'an integer'} "
                                     f"(got {value!r})")

        for field in _SHAPE_FIELDS:
            rule(getattr(self, field) >= 1, field, "must be >= 1")
        rule(self.stride >= 1, "stride", "must be >= 1")
        rule(self.pad >= 0, "pad", "must be >= 0")
        rule(self.R <= self.H + 2 * self.pad, "R", f"must be <= H + 2*pad = {self.H + 2 * self.pad}")
        rule(self.S <= self.W + 2 * self.pad, "S", f"must be <= W + 2*pad = {self.W + 2 * self.pad}")
        rule(1 <= self.act_bits <= 16, "act_bits", "must be in 1..16")
        rule(2 <= self.weight_bits <= 16, "weight_bits", "must be in 2..16")

    @classmethod
    def fc(cls, N, C, M, **kwargs):
        """A fully connected layer ``(N, C) -> (N, M)`` as a 1x1 convolution on 1x1 inputs.

        ``kwargs`` are the remaining fields (``act_bits``, ``weight_bits``, ``act_signed``,
        ``output``, ``name``). Its arrays are 4-D: ``x`` (N, C, 1, 1), ``w`` (M, C, 1, 1).
        """
        for key in ("H", "W", "R", "S", "stride", "pad"):
            if key in kwargs:
                raise ValueError(f"{key}: fixed for a fully connected layer (got {kwargs[key]!r})")
        return cls(N=N, C=C, H=1, W=1, M=M, R=1, S=1, **kwargs)

    # Derived quantities ----------------------------------------------------------------------------

    @property
    def E(self):
        """Output height."""
        return (self.H + 2 * self.pad - self.R) // self.stride + 1

    @property
    def F(self):
        """Output width."""
        return (self.W + 2 * self.pad - self.S) // self.stride + 1

    @property
    def macs(self):
        """Multiply-accumulates of the whole layer (all N images), padding taps included."""
        return self.N * self.M * self.E * self.F * self.C * self.R * self.S

    @property
    def input_shape(self):
        return (self.N, self.C, self.H, self.W)

    @property
    def weight_shape(self):
        return (self.M, self.C, self.R, self.S)

    @property
    def bias_shape(self):
        return (self.M,)

    @property
    def output_shape(self):
        return (self.N, self.M, self.E, self.F)

    @property
    def is_fc(self):
        """True for a 1x1 convolution on 1x1 inputs (a fully connected layer)."""
        return self.H == self.W == self.R == self.S == 1

    @property
    def act_range(self):
        """Inclusive ``(lo, hi)`` of an activation."""
        return value_range(self.act_bits, self.act_signed)

    @property
    def weight_range(self):
        """Inclusive ``(lo, hi)`` of a weight."""
        return value_range(self.weight_bits, True)

    def summary(self):
        """One line: name, shapes, stride/pad, output size and MAC count."""
        kind = "fc" if self.is_fc else f"{self.R}x{self.S}/{self.stride} pad {self.pad}"
        return (f"{self.name or '(unnamed)'}: N={self.N} C={self.C} {self.H}x{self.W} -> M={self.M} "
                f"{self.E}x{self.F}, {kind}, {self.macs:,} MACs")

    # Arrays ----------------------------------------------------------------------------------------

    def check_arrays(self, x, w, bias=None):
        """Raise ``ValueError`` unless ``x``, ``w`` (and ``bias``) fit this layer.

        Checks, per array: the shape, an integer dtype, and every value in range (activations in
        ``act_range``, weights in ``weight_range``, bias in signed :data:`BIAS_BITS`). The message
        names the array, the expectation and the first offending value and index.
        """
        a_lo, a_hi = self.act_range
        w_lo, w_hi = self.weight_range
        checks = [("x", x, self.input_shape, "(N, C, H, W)", a_lo, a_hi,
                   f"{self.act_bits}-bit {'signed' if self.act_signed else 'unsigned'}"),
                  ("w", w, self.weight_shape, "(M, C, R, S)", w_lo, w_hi,
                   f"{self.weight_bits}-bit signed")]
        if bias is not None:
            b_lo, b_hi = value_range(BIAS_BITS, True)
            checks.append(("bias", bias, self.bias_shape, "(M,)", b_lo, b_hi,
                           f"{BIAS_BITS}-bit signed"))
        for label, array, shape, dims, lo, hi, kind in checks:
            array = np.asarray(array)
            if array.shape != shape:
                raise ValueError(f"{label}: shape must be {dims} = {shape} (got {array.shape})")
            if not np.issubdtype(array.dtype, np.integer):
                raise ValueError(f"{label}: dtype must be an integer type (got {array.dtype})")
            bad = (array < lo) | (array > hi)
            if bad.any():
                index = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ValueError(f"{label}: values must be in {lo}..{hi} ({kind}) "
                                 f"(got {array[index]} at index {index})")

    def random_arrays(self, rng, with_bias=False):
        """Uniformly random in-range ``(x, w, bias)`` as int64 (``bias`` is ``None`` unless asked).

        ``rng`` is a ``numpy.random.Generator`` or a seed. The bias is drawn within
        ``+-(max|x| * max|w| * isqrt(C*R*S))`` (clipped to its 32-bit range), the scale of a typical
        accumulator, so that outputs of both signs remain common.
        """
        rng = np.random.default_rng(rng)
        a_lo, a_hi = self.act_range
        w_lo, w_hi = self.weight_range
        x = rng.integers(a_lo, a_hi, self.input_shape, dtype=np.int64, endpoint=True)
        w = rng.integers(w_lo, w_hi, self.weight_shape, dtype=np.int64, endpoint=True)
        bias = None
        if with_bias:
            scale = max(abs(a_lo), a_hi) * max(abs(w_lo), w_hi) * math.isqrt(self.C * self.R * self.S)
            bound = min(max(scale, 1), value_range(BIAS_BITS, True)[1])
            bias = rng.integers(-bound, bound, self.bias_shape, dtype=np.int64, endpoint=True)
        return x, w, bias

    def golden(self, x, w, bias=None):
        """Bit-exact expected output (int64, ``output_shape``) after :meth:`check_arrays`."""
        self.check_arrays(x, w, bias)
        acc = conv2d(x, w, bias, stride=self.stride, pad=self.pad)
        return output_stage(acc, self.output)

    # Serialisation ---------------------------------------------------------------------------------

    def to_dict(self):
        """The JSON form: every field; ``output`` as a dict of its four fields or ``None``."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.output is not None:
            d["output"] = dataclasses.asdict(self.output)
        return d

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d):
        """Build from the JSON form; ``N, C, H, W, M, R, S`` are required, the rest default.

        ``output`` may be a dict with any of ``mult, shift, relu, out_bits`` (others default as in
        :class:`OutputStage`) or ``null``. Unknown keys are rejected with the list of known ones.
        """
        if not isinstance(d, dict):
            raise ValueError(f"layer: must be a JSON object (got {type(d).__name__})")
        known = [f.name for f in fields(cls)]
        unknown = [key for key in d if key not in known]
        if unknown:
            raise ValueError(f"{unknown[0]}: unknown layer field (known: {', '.join(known)})")
        missing = [key for key in _SHAPE_FIELDS if key not in d]
        if missing:
            raise ValueError(f"{', '.join(missing)}: required layer field{'s' * (len(missing) > 1)} "
                             f"missing (required: {', '.join(_SHAPE_FIELDS)})")
        d = dict(d)
        out = d.get("output")
        if out is not None and not isinstance(out, OutputStage):
            if not isinstance(out, dict):
                raise ValueError(f"output: must be an object or null (got {out!r})")
            unknown = [key for key in out if key not in _OUTPUT_FIELDS]
            if unknown:
                raise ValueError(f"output.{unknown[0]}: unknown output field "
                                 f"(known: {', '.join(_OUTPUT_FIELDS)})")
            for key, value in out.items():
                kind = _OUTPUT_FIELDS[key]
                ok = isinstance(value, bool) if kind is bool else _is_int(value)
                if not ok:
                    raise ValueError(f"output.{key}: must be {'a bool' if kind is bool else 'an integer'} "
                                     f"(got {value!r})")
            d["output"] = OutputStage(**out)
        return cls(**d)

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))

    @classmethod
    def load(cls, path):
        """Read one layer from a JSON file; errors are prefixed with the path."""
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: invalid JSON: {err}") from None
        try:
            return cls.from_dict(d)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None

    def save(self, path):
        Path(path).write_text(self.to_json() + "\n")

    def replace(self, **changes):
        """A copy with ``changes`` applied, validated again."""
        return dataclasses.replace(self, **changes)
