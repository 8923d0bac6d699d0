"""Output stage on the write-back path: bias, fixed-point requantisation, ReLU and saturation."""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from gen.golden import OutputStage
from rtl.config import AccelConfig

__all__ = ["OutputStageUnit", "outstage_cfg_layout", "outstage_acc_layout", "outstage_out_layout",
           "outstage_config_value", "OUTSTAGE_LATENCY", "MULT_BITS", "SHIFT_MAX", "OUT_BITS_MAX",
           "BIAS_BITS"]

#: Signed multiplier width, largest shift and largest output width (the ranges gen.golden.OutputStage
#: accepts) and the signed bias width (gen.layer.BIAS_BITS).
MULT_BITS = 16
SHIFT_MAX = 47
OUT_BITS_MAX = 16
BIAS_BITS = 32

#: Cycles from the cycle a word is taken on ``i_acc`` to the first cycle it is offered on ``o_data``.
OUTSTAGE_LATENCY = 3


def outstage_cfg_layout(cfg):
    """Programming of the output stage (see :class:`OutputStageUnit`); all zero = raw pass-through."""
    return data.StructLayout({
        "enable": 1,                            # 0: store raw acc + bias
        "mult": signed(MULT_BITS),
        "shift": Shape.cast(range(SHIFT_MAX + 1)),
        "relu": 1,
        "out_bits": Shape.cast(range(OUT_BITS_MAX + 1)),
    })


def outstage_acc_layout(cfg):
    """Payload of ``i_acc``: one accumulator, the bias of its output channel, end-of-block flag."""
    return data.StructLayout({
        "acc": signed(cfg.psum_bits),
        "bias": signed(BIAS_BITS),
        "last": 1,
    })


def outstage_out_layout(cfg):
    """Payload of ``o_data``: the stored value (within ``psum_bits``) and the passed-through flag."""
    return data.StructLayout({
        "data": signed(cfg.psum_bits),
        "last": 1,
    })


def outstage_config_value(cfg, stage):
    """The :func:`outstage_cfg_layout` constant programming ``stage`` (a ``gen.golden.OutputStage``).

    ``None`` gives ``enable = 0`` (raw accumulators). Raises ``ValueError`` when ``stage`` is not an
    ``OutputStage`` or its result does not fit the ``psum_bits``-wide output word
    (``out_bits`` signed, or ``out_bits`` unsigned plus a zero sign bit when ``relu``).
    """
    layout = outstage_cfg_layout(cfg)
    if stage is None:
        return layout.const({"enable": 0})
    if not isinstance(stage, OutputStage):
        raise ValueError(f"stage: must be a gen.golden.OutputStage or None (got {stage!r})")
    need = stage.out_bits + (1 if stage.relu else 0)
    if need > cfg.psum_bits:
        raise ValueError(f"stage.out_bits: result needs {need} bits but psum_bits is "
                         f"{cfg.psum_bits} (got {stage.out_bits})")
    return layout.const({"enable": 1, "mult": int(stage.mult), "shift": int(stage.shift),
                         "relu": int(bool(stage.relu)), "out_bits": int(stage.out_bits)})


class OutputStageUnit(wiring.Component):
    """Turns accumulators into stored values: ``acc + bias``, then the programmed output stage.

    With ``s = acc + bias`` (exact, ``max(psum_bits, 32) + 1`` bits, never wraps) and ``stage_cfg``
    as in :func:`outstage_cfg_layout`:

    - ``enable = 0``: ``data = s`` wrapped to ``psum_bits`` (the raw accumulator store).
    - ``enable = 1``: bit-exact with ``gen.golden.output_stage(s, stage)`` evaluated on unbounded
      integers: ``y = (s * mult + r) >> shift`` with ``r = 1 << (shift - 1)`` (round half up; ``r = 0``
      when ``shift == 0``) and an arithmetic shift; then ``y = max(y, 0)`` when ``relu``; then ``y``
      saturated to unsigned ``out_bits`` when ``relu``, else to signed ``out_bits``. ``data`` is
      ``y`` sign-extended to ``psum_bits`` (``y >= 0`` when ``relu``, so that is a zero-extension).
      ``out_bits`` must be in 1..16 and fit ``psum_bits`` (:func:`outstage_config_value` checks);
      other values give an unspecified result.

    ``last`` travels with its word unchanged.

    Contract: three registered stages (acc + bias; multiply and round; shift, ReLU and saturate),
    so the ``16 x (max(psum_bits, 32) + 1)``-bit multiply has registered inputs and output. A word
    taken on ``i_acc`` in cycle ``k`` is first offered on ``o_data`` in cycle ``k + 3``
    (:data:`OUTSTAGE_LATENCY`); without back-pressure one word per cycle goes in and out. ``stage_cfg``
    is sampled together with each word as it is taken, so it only needs to hold while words are
    being accepted. Back-pressure: every stage advances when its successor is empty or advancing
    (bubbles collapse); a stalled ``o_data`` holds its word and payload until taken, nothing is lost
    or duplicated. ``i_acc.ready`` depends combinationally on ``o_data.ready`` and the stage
    valid flags only, never on ``i_acc.valid``; ``o_data.valid`` is a register and is raised
    without waiting for ``ready``. Reset: pipeline empty (``o_data.valid = 0``, ``i_acc.ready = 1``).

    Parameters
    ----------
    cfg : AccelConfig

    Members
    -------
    stage_cfg : In(outstage_cfg_layout(cfg))
    i_acc : In(stream.Signature(outstage_acc_layout(cfg)))
    o_data : Out(stream.Signature(outstage_out_layout(cfg)))
    """

    def __init__(self, cfg):
        if not isinstance(cfg, AccelConfig):
            raise TypeError(f"cfg: must be an AccelConfig (got {cfg!r})")
        self.cfg = cfg
        super().__init__({
            "stage_cfg": In(outstage_cfg_layout(cfg)),
            "i_acc": In(stream.Signature(outstage_acc_layout(cfg))),
            "o_data": Out(stream.Signature(outstage_out_layout(cfg))),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        cfg_layout = outstage_cfg_layout(cfg)
        sum_bits = max(cfg.psum_bits, BIAS_BITS) + 1
        # |s * mult| <= 2**(sum_bits + MULT_BITS - 2) and r <= 2**(SHIFT_MAX - 1): the rounded
        # product fits a signed word of this width.
        prod_bits = max(sum_bits + MULT_BITS, SHIFT_MAX + 1)
        shift_shape = cfg_layout["shift"].shape
        out_shape = cfg_layout["out_bits"].shape

        i, o = self.i_acc, self.o_data
        # Stage valid flags and advance conditions (stage 3 is the o_data register itself).
        v1, v2 = Signal(), Signal()
        adv3 = ~o.valid | o.ready
        adv2 = ~v2 | adv3
        adv1 = ~v1 | adv2
        m.d.comb += i.ready.eq(adv1)

        # Stage 1: exact acc + bias; stage_cfg sampled with the word. Disabled words go through the
        # same datapath as s * 1 >> 0 and skip the saturation.
        sum1 = Signal(signed(sum_bits))
        mult1 = Signal(signed(MULT_BITS))
        rnd1 = Signal(unsigned(SHIFT_MAX))
        shift1 = Signal(shift_shape)
        relu1, en1, last1 = Signal(), Signal(), Signal()
        ob1 = Signal(out_shape)
        c = self.stage_cfg
        shift_in = Mux(c.enable, c.shift, 0)
        with m.If(adv1):
            m.d.sync += [
                v1.eq(i.valid),
                sum1.eq(i.payload.acc + i.payload.bias),
                mult1.eq(Mux(c.enable, c.mult, 1)),
                shift1.eq(shift_in),
                rnd1.eq((Const(1, 1) << shift_in) >> 1),   # 1 << (shift - 1), 0 when shift == 0
                relu1.eq(c.relu), en1.eq(c.enable), ob1.eq(c.out_bits),
                last1.eq(i.payload.last),
            ]

        # Stage 2: multiply and add the rounding term (a DSP multiply-add).
        prod2 = Signal(signed(prod_bits))
        shift2 = Signal(shift_shape)
        relu2, en2, last2 = Signal(), Signal(), Signal()
        ob2 = Signal(out_shape)
        with m.If(adv2):
            m.d.sync += [
                v2.eq(v1),
                prod2.eq(sum1 * mult1 + rnd1),
                shift2.eq(shift1), relu2.eq(relu1), en2.eq(en1), ob2.eq(ob1), last2.eq(last1),
            ]

        # Stage 3: arithmetic shift, ReLU, saturation to the programmed range.
        shifted = Signal(signed(prod_bits))
        m.d.comb += shifted.eq(prod2 >> shift2)
        rect = Signal(signed(prod_bits))
        m.d.comb += rect.eq(Mux(relu2 & shifted[-1], 0, shifted))
        span = Signal(unsigned(OUT_BITS_MAX + 1))   # 2**out_bits
        m.d.comb += span.eq(Const(1, 1) << ob2)
        hi = Signal(signed(OUT_BITS_MAX + 2))
        lo = Signal(signed(OUT_BITS_MAX + 2))
        with m.If(relu2):
            m.d.comb += [hi.eq(span - 1), lo.eq(0)]
        with m.Else():
            m.d.comb += [hi.eq((span >> 1) - 1), lo.eq(-(span >> 1))]
        sat = Mux(rect > hi, hi, Mux(rect < lo, lo, rect))
        with m.If(adv3):
            m.d.sync += [
                o.valid.eq(v2),
                o.payload.data.eq(Mux(en2, sat, shifted)),
                o.payload.last.eq(last2),
            ]
        return m
