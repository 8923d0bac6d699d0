"""Bit-exact NumPy reference: conv2d (NCHW), FC as 1x1 conv, and the output stage."""

from dataclasses import dataclass

import numpy as np

__all__ = ["OutputStage", "conv2d", "fully_connected", "output_stage", "value_range", "pad_input"]


def value_range(bits, signed):
    """Inclusive ``(lo, hi)`` of a ``bits``-wide integer."""
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


@dataclass(frozen=True)
class OutputStage:
    """Write-back transform of a raw accumulator ``acc`` (bias already added by :func:`conv2d`).

    ``y = (acc * mult + round) >> shift`` with ``round = 1 << (shift - 1)`` (round half up; none
    when ``shift == 0``), arithmetic shift; then ReLU (``max(y, 0)``) if ``relu``; then saturation:
    to unsigned ``out_bits`` when ``relu`` (the result is a non-negative activation), else to signed
    ``out_bits``.
    """

    mult: int = 1
    shift: int = 0
    relu: bool = False
    out_bits: int = 8

    def __post_init__(self):
        if not -(1 << 15) <= self.mult < (1 << 15):
            raise ValueError(f"output.mult: must fit in 16 signed bits (got {self.mult})")
        if not 0 <= self.shift <= 47:
            raise ValueError(f"output.shift: must be in 0..47 (got {self.shift})")
        if not 1 <= self.out_bits <= 16:
            raise ValueError(f"output.out_bits: must be in 1..16 (got {self.out_bits})")

    @property
    def out_signed(self):
        return not self.relu


def output_stage(acc, stage):
    """Apply :class:`OutputStage` ``stage`` to an integer array; ``None`` returns ``acc`` as int64."""
    acc = np.asarray(acc, dtype=np.int64)
    if stage is None:
        return acc.copy()
    y = acc * stage.mult
    if stage.shift:
        y = (y + (1 << (stage.shift - 1))) >> stage.shift
    if stage.relu:
        y = np.maximum(y, 0)
    lo, hi = value_range(stage.out_bits, stage.out_signed)
    return np.clip(y, lo, hi)


def pad_input(x, pad):
    """Zero-pad the two spatial dimensions of an NCHW tensor by ``pad`` on every side."""
    return np.pad(np.asarray(x, dtype=np.int64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))


def conv2d(x, w, bias=None, stride=1, pad=0):
    """Integer 2-D convolution (cross-correlation, as in CNNs), int64 throughout.

    ``x``: (N, C, H, W) activations, ``w``: (M, C, R, S) weights, ``bias``: (M,) or None.
    Returns (N, M, E, F) with ``E = (H + 2*pad - R) // stride + 1`` (likewise F from W, S):
    ``y[n, m, e, f] = bias[m] + sum_{c, r, s} w[m, c, r, s] * xp[n, c, e*stride + r, f*stride + s]``
    where ``xp`` is ``x`` zero-padded by ``pad``.
    """
    x = np.asarray(x)
    w = np.asarray(w)
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError(f"conv2d: x and w must be 4-D (got {x.ndim}-D and {w.ndim}-D)")
    n, c, h, wd = x.shape
    m, cw, r, s = w.shape
    if cw != c:
        raise ValueError(f"conv2d: w has {cw} channels but x has {c}")
    if stride < 1 or pad < 0:
        raise ValueError(f"conv2d: stride must be >= 1 and pad >= 0 (got {stride}, {pad})")
    xp = pad_input(x, pad)
    e = (h + 2 * pad - r) // stride + 1
    f = (wd + 2 * pad - s) // stride + 1
    if e < 1 or f < 1:
        raise ValueError(f"conv2d: filter {r}x{s} larger than padded input {h + 2*pad}x{wd + 2*pad}")
    # Windows as a strided view: (N, C, E, F, R, S), then one integer contraction.
    sn, sc, sh, sw = xp.strides
    windows = np.lib.stride_tricks.as_strided(
        xp, shape=(n, c, e, f, r, s), strides=(sn, sc, sh * stride, sw * stride, sh, sw),
        writeable=False)
    y = np.einsum("ncefrs,mcrs->nmef", windows, w.astype(np.int64), optimize=True)
    if bias is not None:
        y = y + np.asarray(bias, dtype=np.int64).reshape(1, m, 1, 1)
    return y


def fully_connected(x, w, bias=None):
    """FC layer as a 1x1 convolution: ``x`` (N, C), ``w`` (M, C) -> (N, M)."""
    x = np.asarray(x)
    w = np.asarray(w)
    return conv2d(x[:, :, None, None], w[:, :, None, None], bias)[:, :, 0, 0]
