"""A small CNN with real activations: trained on scikit-learn's 8x8 digits, quantised to 8 bits.

The data set ships inside scikit-learn (no download). :func:`digits_cnn` trains a three-layer
network in NumPy (seeded, a few seconds), quantises it to the accelerator's formats and returns
:class:`DigitsCnn`, whose layers run on the hardware one after another:

* ``conv1``: 1 -> 8 channels, 3x3, pad 1, on 8x8 images; ReLU, requantised to unsigned 8 bits;
* ``conv2``: 8 -> 16 channels, 3x3, stride 2, pad 1 (8x8 -> 4x4); ReLU, unsigned 8 bits;
* ``classifier``: 16 -> 10 channels, 4x4 (a fully connected layer over the 4x4 map); raw 32-bit
  accumulators, whose argmax is the class.

Weights are signed 8-bit with one scale per layer, biases 32-bit; the input pixels (0..16) are
scaled to 0..255. The requantisation of each ReLU layer is the hardware output stage
(``mult``/``shift``), so :meth:`DigitsCnn.forward` (the golden model, layer by layer) is exactly
what the accelerator computes.
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from gen.golden import OutputStage
from gen.layer import Layer

__all__ = ["DigitsCnn", "digits_cnn", "load_digits", "per_layer_precisions", "quantise_input"]

#: Images used for training; the rest of the 1,797 are the test set.
N_TRAIN = 1500


def load_digits():
    """``(images (1797, 8, 8) float 0..16, labels (1797,))`` from scikit-learn's bundled copy."""
    try:
        from sklearn.datasets import load_digits as load
    except ImportError as e:                      # pragma: no cover - the venv has it
        raise RuntimeError("scikit-learn is not installed: run make venv") from e
    d = load()
    return d.images.astype(np.float64), d.target.astype(np.int64)


# ---- float training ---------------------------------------------------------------------------

def _im2col(x, r, s, stride, pad):
    """(N, C, H, W) -> (N, E, F, C*R*S) patches."""
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, c, h, w = x.shape
    e, f = (h - r) // stride + 1, (w - s) // stride + 1
    cols = np.empty((n, e, f, c, r, s))
    for i in range(r):
        for j in range(s):
            cols[:, :, :, :, i, j] = x[:, :, i:i + stride * e:stride,
                                       j:j + stride * f:stride].transpose(0, 2, 3, 1)
    return cols.reshape(n, e, f, c * r * s)


def _col2im(dcols, shape, r, s, stride, pad):
    n, c, h, w = shape
    e, f = dcols.shape[1:3]
    dx = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    d = dcols.reshape(n, e, f, c, r, s)
    for i in range(r):
        for j in range(s):
            dx[:, :, i:i + stride * e:stride, j:j + stride * f:stride] += \
                d[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dx[:, :, pad:pad + h, pad:pad + w]


#: (M, C, R, S, stride, pad, relu) of the three layers.
ARCH = [(8, 1, 3, 3, 1, 1, True), (16, 8, 3, 3, 2, 1, True), (10, 16, 4, 4, 1, 0, False)]
NAMES = ["conv1", "conv2", "classifier"]


def _forward_float(params, x):
    """Float forward pass; returns the logits (N, 10) and the cache for backprop."""
    cache = []
    for (w, b), (m, c, r, s, stride, pad, relu) in zip(params, ARCH):
        cols = _im2col(x, r, s, stride, pad)
        y = cols @ w.reshape(m, -1).T + b                       # (N, E, F, M)
        cache.append((x.shape, cols, y, relu))
        if relu:
            y = np.maximum(y, 0)
        x = y.transpose(0, 3, 1, 2)
    return x.reshape(len(x), -1), cache


def _train(images, labels, seed, epochs=30, batch=50, lr=0.01):
    rng = np.random.default_rng(seed)
    params = [(rng.normal(0, np.sqrt(2 / (c * r * s)), (m, c, r, s)), np.zeros(m))
              for m, c, r, s, *_ in ARCH]
    moments = [[np.zeros_like(p) for p in layer for _ in (0, 1)] for layer in params]
    x_all = images[:, None] / 16.0
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(x_all))
        for k in range(0, len(order), batch):
            idx = order[k:k + batch]
            logits, cache = _forward_float(params, x_all[idx])
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            p[np.arange(len(idx)), labels[idx]] -= 1
            grad = (p / len(idx)).reshape(len(idx), 10, 1, 1).transpose(0, 2, 3, 1)
            step += 1
            for li in reversed(range(len(params))):
                w, b = params[li]
                m, c, r, s, stride, pad, relu = ARCH[li]
                shape, cols, y, relu = cache[li]
                if relu:
                    grad = grad * (y > 0)
                dw = (grad.reshape(-1, m).T @ cols.reshape(-1, c * r * s)).reshape(w.shape)
                db = grad.sum((0, 1, 2))
                if li:
                    grad = _col2im(grad @ w.reshape(m, -1), shape, r, s, stride,
                                   pad).transpose(0, 2, 3, 1)
                new = []
                for j, (param, g) in enumerate(((w, dw), (b, db))):          # Adam
                    mo, ve = moments[li][2 * j], moments[li][2 * j + 1]
                    mo[...] = 0.9 * mo + 0.1 * g
                    ve[...] = 0.999 * ve + 0.001 * g * g
                    mhat, vhat = mo / (1 - 0.9 ** step), ve / (1 - 0.999 ** step)
                    new.append(param - lr * mhat / (np.sqrt(vhat) + 1e-8))
                params[li] = tuple(new)
    return params


# ---- quantisation -----------------------------------------------------------------------------

def _requant(real_scale):
    """``OutputStage`` mult/shift with ``acc * mult >> shift`` ~ ``acc * real_scale``
    (``mult`` in 2^14..2^15-1)."""
    shift = 0
    while real_scale * (1 << (shift + 1)) < (1 << 15) and shift < 47:
        shift += 1
    return int(round(real_scale * (1 << shift))), shift


@dataclass
class DigitsCnn:
    """The quantised network: per layer a :class:`gen.layer.Layer` (``N`` = 1; use
    :meth:`layers` for a batch), int weights and biases; the test images and labels; and the
    float network's and the integer network's test accuracy."""

    layer_shapes: list
    weights: list
    biases: list
    test_x: np.ndarray
    test_y: np.ndarray
    float_accuracy: float
    int_accuracy: float

    def layers(self, n):
        """The three layers for a batch of ``n`` images."""
        from dataclasses import replace
        return [replace(layer, N=n) for layer in self.layer_shapes]

    def forward(self, x):
        """Golden integer forward pass of images ``x`` (N, 1, 8, 8) uint8 values: the input of
        every layer and the final accumulators, as a list of four arrays."""
        acts = [np.asarray(x, dtype=np.int64)]
        for layer, w, b in zip(self.layers(len(x)), self.weights, self.biases):
            acts.append(layer.golden(acts[-1], w, b))
        return acts

    def classify(self, x):
        return self.forward(x)[-1].reshape(len(x), -1).argmax(1)


def quantise_input(images, bits=8):
    """8x8 digit images (0..16) -> (N, 1, 8, 8) unsigned ``bits``-bit activations."""
    top = (1 << bits) - 1
    return np.clip(np.rint(np.asarray(images) * (top / 16)), 0, top).astype(np.int64)[:, None]


@lru_cache(maxsize=1)
def _trained(seed):
    images, labels = load_digits()
    return _train(images[:N_TRAIN], labels[:N_TRAIN], seed)


@lru_cache(maxsize=16)
def digits_cnn(seed=0, bits=(8, 8, 8)):
    """Train (seeded, cached per process) and quantise the network; ``bits`` are the unsigned
    activation precisions of the three layers' inputs (the input image and the two ReLU
    outputs), 8 by default."""
    params = _trained(seed)
    images, labels = load_digits()
    test_x, test_y = images[N_TRAIN:], labels[N_TRAIN:]
    logits, _ = _forward_float(params, test_x[:, None] / 16.0)
    float_acc = float((logits.argmax(1) == test_y).mean())

    # calibrate the activation scales on the training images (99.99th percentile of each ReLU)
    x = images[:N_TRAIN, None] / 16.0
    scale_in = 1 / ((1 << bits[0]) - 1)           # real value of one input step (x/16 units)
    layers, weights, biases = [], [], []
    for k, ((w, b), (m, c, r, s, stride, pad, relu)) in enumerate(zip(params, ARCH)):
        sw = np.abs(w).max() / 127
        wq = np.clip(np.rint(w / sw), -127, 127).astype(np.int64)
        bq = np.rint(b / (scale_in * sw)).astype(np.int64)
        y = (_im2col(x, r, s, stride, pad) @ w.reshape(m, -1).T + b).transpose(0, 3, 1, 2)
        size = 8 if k == 0 else layers[-1].E
        output = None
        if relu:
            y = np.maximum(y, 0)
            scale_out = np.percentile(y, 99.99) / ((1 << bits[k + 1]) - 1)
            mult, shift = _requant(scale_in * sw / scale_out)
            output = OutputStage(mult=mult, shift=shift, relu=True, out_bits=bits[k + 1])
            scale_in = scale_out
        layers.append(Layer(N=1, C=c, H=size, W=size, M=m, R=r, S=s, stride=stride, pad=pad,
                            act_bits=bits[k], weight_bits=8, output=output, name=NAMES[k]))
        weights.append(wq)
        biases.append(bq)
        x = y
    net = DigitsCnn(layers, weights, biases, quantise_input(test_x, bits[0]), test_y, float_acc,
                    0.0)
    net.int_accuracy = float((net.classify(net.test_x) == test_y).mean())
    return net


def per_layer_precisions(seed=0, tolerance=0.01):
    """Stripes-style per-layer activation precisions: layer by layer, the fewest bits whose
    quantised network stays within ``tolerance`` of the 8-bit network's test accuracy."""
    base = digits_cnn(seed).int_accuracy
    bits = [8, 8, 8]
    for k in range(3):
        for p in range(1, 9):
            trial = tuple(bits[:k] + [p] + bits[k + 1:])
            if digits_cnn(seed, trial).int_accuracy >= base - tolerance:
                bits[k] = p
                break
    return tuple(bits)
