"""Pass configuration of a PE: the shape of one row-stationary 1-D convolution, shared by RTL and gen/."""

from dataclasses import asdict, dataclass

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
