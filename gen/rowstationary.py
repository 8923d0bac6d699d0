"""Row-stationary passes for one convolution: block placement, input word streams, output placement.

This is the schedule the array executes (shared by the tests, the program compiler and the model):
:func:`plan_conv` splits a layer into :class:`rtl.passcfg.ArrayPass` es; :func:`filter_words`,
:func:`ifmap_words` and :func:`output_slots` give, for one pass, the tagged words to send and
where every psum the array emits belongs.
"""

import itertools
from dataclasses import dataclass

import numpy as np

from rtl.passcfg import ArrayPass, Block, PePass

__all__ = ["ConvShape", "plan_conv", "role_words", "filter_words", "ifmap_words", "output_slots",
           "run_passes_reference"]


@dataclass(frozen=True)
class ConvShape:
    """One image of a convolution on an already padded input: C x H x W in, M filters of R x S."""

    C: int
    H: int
    W: int
    M: int
    R: int
    S: int
    stride: int = 1

    @property
    def E(self):
        return (self.H - self.R) // self.stride + 1

    @property
    def F(self):
        return (self.W - self.S) // self.stride + 1

    def check(self):
        for name in ("C", "H", "W", "M", "R", "S", "stride"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1 (got {getattr(self, name)})")
        if self.R > self.H or self.S > self.W:
            raise ValueError(f"filter {self.R}x{self.S} larger than the padded input "
                             f"{self.H}x{self.W}")


def _groups(total, size):
    """``[(start, count), ...]`` covering ``range(total)`` in chunks of ``size``."""
    return [(s, min(size, total - s)) for s in range(0, total, size)]


def plan_conv(cfg, shape, pa=None, act_signed=False, chans=None, filters=None, chain=True):
    """Split ``shape`` into array passes for ``cfg``.

    Each PE takes ``chans`` channels (q) and ``filters`` filters (p) of one filter row; by default
    the largest q that fits the ifmap spad, then the largest p that fits the filter and psum spads
    (keeping the psum spad double-buffered when it can). A logical set (R filter rows x E output
    rows) is cut into segments of at most ``rows`` filter rows (folding) and strips of at most
    ``cols`` output rows (strip-mining); the resulting blocks, one per (filter group, channel
    group, segment, strip), are stacked bottom-up in columns of the array (replication). With
    ``chain`` a block stacked directly on one with the same filters and output rows continues its
    psum chain (channel groups and segments then add up inside the array); all other partial
    sums leave the array and are added outside it.

    Raises ``ValueError`` naming the limit when a PE cannot hold even one channel/filter row.
    """
    shape.check()
    pa = cfg.act_bits if pa is None else pa
    S, U = shape.S, shape.stride
    if S > cfg.ifmap_spad:
        raise ValueError(f"ifmap spad: filter width S={S} exceeds ifmap_spad={cfg.ifmap_spad}")
    if S > cfg.filter_spad:
        raise ValueError(f"filter spad: filter width S={S} exceeds filter_spad={cfg.filter_spad}")
    q = chans or min(shape.C, cfg.ifmap_spad // S, cfg.filter_spad // S)
    max_groups = cfg.psum_spad // 2 if cfg.psum_spad >= 2 else 1
    max_groups = min(max_groups, cfg.filter_spad // (q * S))
    if max_groups < 1:
        raise ValueError(f"filter spad: chans*S = {q}*{S} exceeds filter_spad={cfg.filter_spad}")
    p = filters or min(shape.M, max_groups * cfg.lanes)
    if shape.F >= 1 << cfg.dim_bits:
        raise ValueError(f"output width F={shape.F} exceeds the hardware limit "
                         f"{(1 << cfg.dim_bits) - 1}")

    h = min(shape.R, cfg.rows)
    e = min(shape.E, cfg.cols)
    items = []
    for (m0, pm), (c0, qc), (r0, hr), (e0, we) in itertools.product(
            _groups(shape.M, p), _groups(shape.C, q), _groups(shape.R, h), _groups(shape.E, e)):
        items.append(((pm, qc), (m0, e0), c0, r0, hr, we))
    # Same PE pass shape per pass; reductions of one output (channels, segments) side by side in
    # the list so that they stack (and chain) in one array column.
    items.sort(key=lambda it: (it[0], it[1], it[2], it[3]))

    passes = []
    for (pm, qc), group in itertools.groupby(items, key=lambda it: it[0]):
        pe = PePass(taps=S, chans=qc, filters=pm, cols=shape.F, stride=U, pa=pa,
                    act_signed=act_signed)
        pe.check(cfg)
        blocks, col, row, width = [], 0, 0, 0
        for _, (m0, e0), c0, r0, hr, we in group:
            if row + hr > cfg.rows:                 # column full: next column of blocks
                col, row, width = col + width, 0, 0
            if col + we > cfg.cols:                 # array full: next pass
                passes.append(ArrayPass(pe, tuple(blocks)))
                blocks, col, row, width = [], 0, 0, 0
            below = blocks[-1] if blocks and row > 0 else None
            chained = (chain and below is not None and below.col == col and
                       (below.m0, below.e0, below.width) == (m0, e0, we))
            blocks.append(Block(row=row, col=col, height=hr, width=we, r0=r0, e0=e0, m0=m0,
                                c0=c0, chained=chained))
            row += hr
            width = max(width, we)
        passes.append(ArrayPass(pe, tuple(blocks)))
    for ap in passes:
        ap.check(cfg)
    return passes


def role_words(cfg, ap):
    """The array's ``i_pe_cfg`` words for pass ``ap``: one per PE, disabled where unused."""
    roles = ap.pe_configs()
    words = []
    for c in range(cfg.cols):
        for r in range(cfg.rows):
            word = {"index": c * cfg.rows + r, "enable": (r, c) in roles}
            if (r, c) in roles:
                pe = roles[(r, c)]
                word.update(filter_tag=pe.filter_tag, ifmap_tag=pe.ifmap_tag,
                            accumulate=pe.accumulate, top=pe.top)
            words.append(word)
    return words


def filter_words(cfg, ap, w):
    """Tagged filter words of pass ``ap`` for weights ``w`` (M, C, R, S): ``[(tag, [lanes])]``.

    Each distinct filter key is sent once (multicast), in the PE's order: group, channel, tap;
    filters beyond ``M`` in the last group are zero.
    """
    ftags, _ = ap.tags()
    lanes, job = cfg.lanes, ap.pe
    groups = job.groups(cfg)
    words = []
    for (m0, c0, r), tag in sorted(ftags.items(), key=lambda kv: kv[1]):
        block = np.zeros((groups * lanes, job.chans, job.taps), dtype=np.int64)
        block[:job.filters] = w[m0:m0 + job.filters, c0:c0 + job.chans, r, :]
        for g in range(groups):
            for q in range(job.chans):
                for s in range(job.taps):
                    words.append((tag, [int(v) for v in block[g * lanes:(g + 1) * lanes, q, s]]))
    return words


def ifmap_words(cfg, ap, x):
    """Tagged ifmap words of pass ``ap`` for the padded input ``x`` (C, H, W): ``[(tag, act)]``.

    Column by column (the order that keeps every PE and psum chain moving): for output column
    ``f``, every ifmap key gets the positions the PEs need next (``taps`` for ``f = 0``, then
    ``stride``), each position for all ``chans`` channels. Activations are sent as raw
    ``act_bits``-wide two's complement bits.
    """
    _, itags = ap.tags()
    job, mask = ap.pe, (1 << cfg.act_bits) - 1
    keys = sorted(itags.items(), key=lambda kv: kv[1])
    words = []
    for f in range(job.cols):
        lo = 0 if f == 0 else job.taps + (f - 1) * job.stride
        hi = job.taps + f * job.stride
        for (c0, row), tag in keys:
            for pos in range(lo, hi):
                for q in range(job.chans):
                    words.append((tag, int(x[c0 + q, row, pos]) & mask))
    return words


def output_slots(cfg, ap):
    """Output index ``(m, e, f)`` of every psum the array emits in pass ``ap``, in order."""
    tops = ap.tops(cfg)
    slots = []
    for f in range(ap.pe.cols):
        for _, _, block, j in tops:
            for p in range(ap.pe.filters):
                slots.append((block.m0 + p, block.e0 + j, f))
    return slots


def run_passes_reference(cfg, shape, passes, x, w):
    """Execute ``passes`` in NumPy exactly as the array does; returns (M, E, F) accumulators.

    Checks that the plan covers every MAC of the layer once (a planning bug shows as a mismatch
    with the golden model in the tests before any hardware is involved).
    """
    y = np.zeros((shape.M, shape.E, shape.F), dtype=np.int64)
    for ap in passes:
        job = ap.pe
        sums = {}
        for (r, c), (b, i, j) in sorted(ap.pe_roles().items()):
            e = b.e0 + j
            row = (e * job.stride) + b.r0 + i
            xs = x[b.c0:b.c0 + job.chans, row, :]
            ws = w[b.m0:b.m0 + job.filters, b.c0:b.c0 + job.chans, b.r0 + i, :]
            for f in range(job.cols):
                win = xs[:, f * job.stride:f * job.stride + job.taps]
                sums[(r, c, f)] = np.einsum("pqs,qs->p", ws, win)
        # follow each chain bottom-up to its top, as the psum network does
        cfgs = ap.pe_configs()
        for (r, c), pc in cfgs.items():
            if not pc.top:
                continue
            b, _, j = ap.pe_roles()[(r, c)]
            rr = r
            for f in range(job.cols):
                total, rr = 0, r
                while True:
                    total = total + sums[(rr, c, f)]
                    if not cfgs[(rr, c)].accumulate:
                        break
                    rr -= 1
                y[b.m0:b.m0 + job.filters, b.e0 + j, f] += total
    return y
