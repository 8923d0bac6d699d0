"""Multiply-accumulate unit: ``lanes`` accumulators sharing one activation, bit-serial or bit-parallel."""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

import numpy as np

__all__ = ["Mac", "mac_op_layout", "mac_cycles", "op_cycles", "significant_bits"]


def mac_op_layout(cfg):
    """Payload of one MAC operation: one activation against ``lanes`` weights."""
    return data.StructLayout({
        "act": unsigned(cfg.act_bits),         # raw bits; sign-extended from bit pa-1 when signed
        "weights": data.ArrayLayout(signed(cfg.weight_bits), cfg.lanes),
        "pa": unsigned(cfg.pa_bits),           # runtime precision, 1..act_bits
        "act_signed": 1,
        "first": 1,                            # clear the accumulators before this operation
        "last": 1,                             # emit the accumulators on o_sum after it
    })


def mac_cycles(cfg, pa):
    """Cycles one operation occupies the MAC at fixed precision: ``pa`` serial, 1 parallel.
    With ``dynamic_precision`` this is the worst case (see :func:`op_cycles`)."""
    return pa if cfg.mac == "serial" else 1


def significant_bits(acts, pa, signed):
    """Bits of each ``pa``-bit activation the dynamic serial MAC processes (array in, array out):
    unsigned, the position of the highest set bit (at least 1, so a zero costs one cycle);
    signed, the narrowest two's-complement width holding the value (redundant sign bits
    dropped: 0 and -1 take 1 bit, 1 takes 2, -128 takes 8). ``acts`` are raw bit patterns or
    values; bits at and above ``pa`` are ignored."""
    mask = (1 << pa) - 1
    v = np.asarray(acts, dtype=np.int64) & mask
    if signed:
        v = np.where(v >> (pa - 1) & 1, ~v & mask, v)      # ones' complement of negatives
    length = np.zeros(v.shape, dtype=np.int64)
    for i in range(pa):
        length += v >= 1 << i
    return length + 1 if signed else np.maximum(length, 1)


def op_cycles(cfg, acts, pa, signed):
    """Cycles the MAC spends on an operation with each activation of ``acts``: ``pa`` (serial),
    1 (parallel), or :func:`significant_bits` (serial with ``dynamic_precision``)."""
    if cfg.dynamic_precision:
        return significant_bits(acts, pa, signed)
    return np.full(np.shape(acts), mac_cycles(cfg, pa), dtype=np.int64)


class Mac(wiring.Component):
    """``lanes`` dot-product accumulators fed one activation and ``lanes`` weights per operation.

    For every operation, lane ``l`` computes ``acc[l] = (0 if first else acc[l]) + x * w[l]`` where
    ``x`` is ``act`` read as a ``pa``-bit two's-complement number when ``act_signed``, else as an
    unsigned ``pa``-bit number (bits at and above ``pa`` are ignored in the serial kind; the parallel
    kind reads all ``act_bits`` bits, so callers pass values in range).

    ``serial`` (Stripes-style): the activation is consumed LSB first, one bit per cycle; each lane
    adds its weight, shifted by the bit position, when the bit is set; the sign bit of a signed
    activation subtracts. An operation takes ``pa`` cycles. With ``cfg.dynamic_precision`` it
    takes :func:`significant_bits` cycles instead (DPRed-style: leading zeros of an unsigned
    activation and redundant sign bits of a signed one are skipped, a zero activation costs its
    one issue cycle and adds nothing), so the time follows the data. ``parallel``: ``lanes``
    multipliers, one cycle per operation.

    Contract: ``i_op`` is accepted on the cycle the previous operation's last cycle runs, so the
    unit stays busy back to back. After an operation with ``last`` completes, ``o_sum`` carries the
    ``lanes`` accumulators until taken; while a sum waits, the unit stalls. ``busy`` is high on
    every cycle the arithmetic does work (the MAC-active counter). Reset: idle, no sum pending.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "i_op": In(stream.Signature(mac_op_layout(cfg))),
            "o_sum": Out(stream.Signature(data.ArrayLayout(signed(cfg.psum_bits), cfg.lanes))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        op = self.i_op.payload
        stall = self.o_sum.valid & ~self.o_sum.ready

        acc = [Signal(signed(cfg.psum_bits), name=f"acc{l}") for l in range(cfg.lanes)]
        # Operation in flight: registered copy of the accepted operation.
        cur = Signal(mac_op_layout(cfg))
        remaining = Signal(range(cfg.act_bits + 1))   # cycles left including this one; 0 = idle
        fresh = Signal()                              # this is the operation's first cycle

        m.d.comb += self.busy.eq((remaining != 0) & ~stall)
        finishing = self.busy & (remaining == 1)
        m.d.comb += self.i_op.ready.eq(~stall & ((remaining == 0) | (remaining == 1)))

        with m.If(self.o_sum.ready):
            m.d.sync += self.o_sum.valid.eq(0)

        if cfg.mac == "serial":
            # Per lane: the weight shifted to the current bit position; the activation shifts down.
            shifted = [Signal(signed(cfg.weight_bits + cfg.act_bits), name=f"wshift{l}")
                       for l in range(cfg.lanes)]
            act = Signal(cfg.act_bits)
            sign_step = cur.act_signed & (remaining == 1)
            terms = [Mux(act[0], Mux(sign_step, -shifted[l], shifted[l]), 0)
                     for l in range(cfg.lanes)]
            with m.If(self.busy):
                m.d.sync += act.eq(act >> 1)
                m.d.sync += [s.eq(s << 1) for s in shifted]
            with m.If(self.i_op.valid & self.i_op.ready):
                m.d.sync += act.eq(op.act)
                m.d.sync += [s.eq(op.weights[l]) for l, s in enumerate(shifted)]
        else:
            act = Mux(cur.act_signed, cur.act.as_signed(), cur.act.as_unsigned())
            terms = [act * cur.weights[l] for l in range(cfg.lanes)]

        with m.If(self.busy):
            m.d.sync += fresh.eq(0)
            for l in range(cfg.lanes):
                new = Mux(fresh & cur.first, 0, acc[l]) + terms[l]
                m.d.sync += acc[l].eq(new)
                with m.If(finishing & cur.last):
                    m.d.sync += self.o_sum.payload[l].eq(new)
            with m.If(finishing & cur.last):
                m.d.sync += self.o_sum.valid.eq(1)
            m.d.sync += remaining.eq(remaining - 1)

        with m.If(self.i_op.valid & self.i_op.ready):
            m.d.sync += cur.eq(op)
            m.d.sync += fresh.eq(1)
            if cfg.mac == "parallel":
                m.d.sync += remaining.eq(1)
            elif cfg.dynamic_precision:
                m.d.sync += remaining.eq(self._significant_bits(m, op))
            else:
                m.d.sync += remaining.eq(op.pa)
        return m

    def _significant_bits(self, m, op):
        """:func:`significant_bits` of operation ``op`` in logic: a priority encoder over the
        activation (negative signed values complemented), masked to ``pa`` bits."""
        bits = self.cfg.act_bits
        mask, top = Signal(bits), Signal(bits)          # bits below pa; bit pa-1 alone
        m.d.comb += [mask.eq(Cat(op.pa > i for i in range(bits))), top.eq(mask ^ (mask >> 1))]
        negative = op.act_signed & (op.act & top).any()
        v = Mux(negative, ~op.act, op.act) & mask
        length = Signal(range(bits + 1))
        for i in range(bits):
            with m.If(v[i]):
                m.d.comb += length.eq(i + 1)
        return Mux(op.act_signed, length + 1, Mux(length == 0, 1, length))
