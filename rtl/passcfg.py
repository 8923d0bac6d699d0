"""Pass configuration of a PE: the shape of one row-stationary 1-D convolution, shared by RTL and gen/."""

from dataclasses import asdict, dataclass
from functools import lru_cache

from amaranth.hdl import unsigned
from amaranth.lib import data

__all__ = ["PePass", "pe_pass_layout", "STRIDE_MAX"]

#: Largest convolution stride the hardware supports.
STRIDE_MAX = 15


def _width(n):
    return max(1, n.bit_length())


def pe_pass_layout(cfg):
    """Hardware layout of :class:`PePass` for ``cfg`` (``groups`` = ceil(filters / lanes) included)."""
    return data.StructLayout({
        "taps": unsigned(_width(cfg.ifmap_spad)),
        "chans": unsigned(_width(cfg.ifmap_spad)),
        "filters": unsigned(_width(cfg.psum_spad * cfg.lanes)),
        "groups": unsigned(_width(cfg.psum_spad)),
        "cols": unsigned(cfg.dim_bits),
        "stride": unsigned(_width(STRIDE_MAX)),
        "pa": unsigned(cfg.pa_bits),
        "act_signed": 1,
        "load_filters": 1,
    })


@dataclass(frozen=True)
class PePass:
    """One PE pass: ``psum[p][f] = sum_{q<chans} sum_{s<taps} W[p][q][s] * X[q][f*stride + s]``.

    for ``p < filters`` and ``f < cols``, activations at runtime precision ``pa`` (signed or not).
    Filter words arrive in (group, channel, tap) order, each holding ``lanes`` filters; ifmap values
    arrive position-major, channel-minor, ``taps + (cols - 1) * stride`` positions; psums leave
    column-major, filter-minor. ``load_filters=False`` reuses the filters of the previous pass.
    """

    taps: int
    chans: int
    filters: int
    cols: int
    stride: int = 1
    pa: int = 8
    act_signed: bool = False
    load_filters: bool = True

    def groups(self, cfg):
        """Filter groups of ``lanes`` filters (the last one may be partly empty)."""
        return -(-self.filters // cfg.lanes)

    def row_length(self):
        """Ifmap positions the pass consumes."""
        return self.taps + (self.cols - 1) * self.stride

    def check(self, cfg):
        """Raise ``ValueError`` naming the field or the limit this pass violates on ``cfg``."""
        for name in ("taps", "chans", "filters", "cols"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1 (got {getattr(self, name)})")
        if not 1 <= self.stride <= STRIDE_MAX:
            raise ValueError(f"stride: must be in 1..{STRIDE_MAX} (got {self.stride})")
        if not 1 <= self.pa <= cfg.act_bits:
            raise ValueError(f"pa: must be in 1..act_bits={cfg.act_bits} (got {self.pa})")
        if self.cols >= 1 << cfg.dim_bits:
            raise ValueError(f"cols: must be < {1 << cfg.dim_bits} (got {self.cols})")
        g = self.groups(cfg)
        if g * self.chans * self.taps > cfg.filter_spad:
            raise ValueError(f"filter spad: ceil(filters/lanes)*chans*taps = {g}*{self.chans}*"
                             f"{self.taps} = {g * self.chans * self.taps} exceeds filter_spad="
                             f"{cfg.filter_spad}")
        if self.chans * self.taps > cfg.ifmap_spad:
            raise ValueError(f"ifmap spad: chans*taps = {self.chans}*{self.taps} = "
                             f"{self.chans * self.taps} exceeds ifmap_spad={cfg.ifmap_spad}")
        if g > cfg.psum_spad:
            raise ValueError(f"psum spad: ceil(filters/lanes) = {g} exceeds psum_spad="
                             f"{cfg.psum_spad}")

    def const(self, cfg):
        """The value to drive onto a :func:`pe_pass_layout` signal (no validation)."""
        fields = asdict(self)
        fields["groups"] = self.groups(cfg)
        return pe_pass_layout(cfg).const(fields)


def tag_bits(cfg):
    """Width of the filter and ifmap multicast tags (one distinct tag per PE is always enough)."""
    return max(1, (cfg.pes - 1).bit_length())


def array_pe_cfg_layout(cfg):
    """One word of the array's per-PE configuration stream (see :class:`PeConfig`)."""
    return data.StructLayout({
        "index": unsigned(max(1, (cfg.pes - 1).bit_length())),   # PE index = col * rows + row
        "enable": 1,
        "filter_tag": unsigned(tag_bits(cfg)),
        "ifmap_tag": unsigned(tag_bits(cfg)),
        "accumulate": 1,
        "top": 1,
    })


@dataclass(frozen=True)
class PeConfig:
    """Role of one PE in an array pass.

    The PE takes the filter words tagged ``filter_tag`` and the ifmap words tagged ``ifmap_tag``;
    with ``accumulate`` it adds the psums of the PE below; with ``top`` its psums leave the array
    through the output collector instead of going to the PE above.
    """

    filter_tag: int
    ifmap_tag: int
    accumulate: bool
    top: bool


@dataclass(frozen=True)
class Block:
    """A rectangle of PEs computing part of one logical row-stationary PE set.

    Physical PE ``(row + i, col + j)`` holds filter row ``r0 + i`` of filters ``m0 ..
    m0 + filters - 1`` and channels ``c0 .. c0 + chans - 1`` (counts from the pass) and produces
    the partial output row ``e0 + j`` from ifmap row ``(e0 + j) * stride + r0 + i``. Psums flow up
    the ``height`` rows; the top row emits them, unless the block directly above is ``chained``
    onto it, which then continues the sum (both must cover the same ``e0``, ``width`` and ``m0``).
    """

    row: int
    col: int
    height: int
    width: int
    r0: int
    e0: int
    m0: int
    c0: int
    chained: bool = False


@dataclass(frozen=True)
class ArrayPass:
    """One pass of the PE array: a shared PE pass shape and the blocks that use it.

    Every enabled PE runs ``pe`` (same taps, channels, filters, output columns, stride and
    precision); ``blocks`` say which PEs take part and what they compute. Filter words are keyed
    by ``(m0, c0, filter row)`` and ifmap rows by ``(c0, ifmap row)``; equal keys share one tag,
    so one send reaches every PE that needs the word (a row, a diagonal, or a single PE).
    """

    pe: PePass
    blocks: tuple

    @lru_cache(maxsize=4096)          # a pass is immutable; the compiler asks often
    def pe_roles(self):
        """``{(row, col): (block, i, j)}`` for every PE in use."""
        roles = {}
        for b in self.blocks:
            for i in range(b.height):
                for j in range(b.width):
                    roles[(b.row + i, b.col + j)] = (b, i, j)
        return roles

    def filter_key(self, b, i):
        return (b.m0, b.c0, b.r0 + i)

    def ifmap_key(self, b, i, j):
        return (b.c0, (b.e0 + j) * self.pe.stride + b.r0 + i)

    @lru_cache(maxsize=4096)
    def tags(self):
        """``(filter_tags, ifmap_tags)``: key -> tag, numbered in sorted key order."""
        u = self.pe.stride
        fkeys = sorted({(b.m0, b.c0, b.r0 + i) for b in self.blocks for i in range(b.height)})
        # the ifmap rows of a block: (e0 + j) * stride + r0 + i over its rows i and columns j
        ikeys = sorted({(b.c0, (b.e0 + j) * u + b.r0 + i) for b in self.blocks
                        for j in range(b.width) for i in range(b.height)})
        return ({k: t for t, k in enumerate(fkeys)}, {k: t for t, k in enumerate(ikeys)})

    @lru_cache(maxsize=4096)
    def chained_above(self):
        """Blocks that have a block chained directly on top of them."""
        below = set()
        for b in self.blocks:
            if b.chained:
                below.add(self._block_below(b))
        return below

    def _block_below(self, b):
        for o in self.blocks:
            if o.row + o.height == b.row and o.col == b.col:
                return o
        raise ValueError(f"blocks: chained block at row {b.row}, col {b.col} has no block "
                         f"directly below it")

    @lru_cache(maxsize=4096)
    def pe_configs(self):
        """``{(row, col): PeConfig}`` of every PE in use (others are disabled)."""
        ftags, itags = self.tags()
        continued = self.chained_above()
        out = {}
        for (r, c), (b, i, j) in self.pe_roles().items():
            out[(r, c)] = PeConfig(
                filter_tag=ftags[self.filter_key(b, i)],
                ifmap_tag=itags[self.ifmap_key(b, i, j)],
                accumulate=i > 0 or b.chained,
                top=i == b.height - 1 and b not in continued)
        return out

    @lru_cache(maxsize=4096)
    def tops(self, cfg):
        """Top PEs in collector order (column-major physical index), as (row, col, block, j)."""
        roles = self.pe_roles()
        cfgs = self.pe_configs()
        order = sorted((c * cfg.rows + r, r, c) for (r, c), pc in cfgs.items() if pc.top)
        return [(r, c, roles[(r, c)][0], roles[(r, c)][2]) for _, r, c in order]

    def check(self, cfg):
        """Raise ``ValueError`` naming the rule a block layout breaks on ``cfg``."""
        self.pe.check(cfg)
        if not self.blocks:
            raise ValueError("blocks: a pass needs at least one block")
        seen = set()
        for b in self.blocks:
            if b.height < 1 or b.width < 1:
                raise ValueError(f"blocks: height and width must be >= 1 (got {b})")
            if b.row < 0 or b.col < 0 or b.row + b.height > cfg.rows or b.col + b.width > cfg.cols:
                raise ValueError(f"blocks: block at row {b.row}, col {b.col} of {b.height}x"
                                 f"{b.width} exceeds the {cfg.rows}x{cfg.cols} array")
            for i in range(b.height):
                for j in range(b.width):
                    if (b.row + i, b.col + j) in seen:
                        raise ValueError(f"blocks: PE ({b.row + i}, {b.col + j}) is used twice")
                    seen.add((b.row + i, b.col + j))
            if b.chained:
                o = self._block_below(b)
                if (o.width, o.e0, o.m0) != (b.width, b.e0, b.m0):
                    raise ValueError(f"blocks: chained block at row {b.row}, col {b.col} must "
                                     f"cover the same output rows and filters as the block below")
