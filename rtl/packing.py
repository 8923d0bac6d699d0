"""Precision-packed activation streams: group packer (store path) and unpacker (DRAM -> GLB)."""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from gen.packing import header_bits

from .sender import SENDER_ADDR_BITS, act_container_bits

__all__ = ["GroupPacker", "GroupUnpacker", "packer_value_layout", "unpack_job_layout"]


def _bit_length(m, value, name):
    """A signal holding ``value.bit_length()`` (``value`` unsigned)."""
    width = Signal(range(len(value) + 1), name=name)
    for i in range(len(value)):                  # the highest set bit wins
        with m.If(value[i]):
            m.d.comb += width.eq(i + 1)
    return width


def packer_value_layout():
    """One element into :class:`GroupPacker`: the value (16 bits, read as signed or unsigned
    per ``signed``) and whether it is the segment's last."""
    return data.StructLayout({"value": unsigned(16), "last": 1})


class GroupPacker(wiring.Component):
    """Packs a stream of elements into the format of :mod:`gen.packing` (groups of
    ``cfg.pack_group``, a precision header each) on ``dram_data_bits``-wide words.

    ``container16`` (0: 8-bit, 1: 16-bit elements) and ``signed`` hold for the whole segment; a
    segment is the elements up to and including the one with ``last``. The element values must
    fit the container (signed or unsigned as ``signed`` says); bits above it are ignored.
    ``o_data`` carries the segment's words, the final one zero-padded; ``done`` pulses in a
    cycle after that word was taken (the next segment's elements may already be collected, but
    none of its bits is emitted before ``done``).

    Contract: one element per cycle into a group register; a complete group moves to the
    emitter, which appends the header with the first element and then one element per cycle to
    the bit accumulator (a group of zeros is its header alone), so without back-pressure the
    packer takes one element per cycle. ``i_data.ready`` (never dependent on ``i_data.valid`` or
    ``o_data.ready``) is low only while a complete group waits for the emitter; ``o_data`` is a
    register, held until taken. Reset: empty.
    """

    def __init__(self, cfg):
        if cfg.pack_group == 0:
            raise ValueError("pack_group: the config has no packed DRAM format (pack_group=0)")
        self.cfg = cfg
        super().__init__({
            "container16": In(1),
            "signed": In(1),
            "i_data": In(stream.Signature(packer_value_layout())),
            "o_data": Out(stream.Signature(unsigned(cfg.dram_data_bits))),
            "done": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        bus, group = cfg.dram_data_bits, cfg.pack_group
        i, o = self.i_data, self.o_data
        hb = Mux(self.container16, header_bits(16), header_bits(8))

        # ---- width of the incoming element ---------------------------------------------------
        v = i.payload.value
        v8 = Mux(self.signed, v[:8].as_signed(), v[:8])
        val = Signal(signed(17))
        m.d.comb += val.eq(Mux(self.container16, Mux(self.signed, v.as_signed(), v), v8))
        mag = Signal(16)
        m.d.comb += mag.eq(Mux(val < 0, ~val, val))
        blen = _bit_length(m, mag, "elem_bits")
        width = Mux(self.signed & (val != 0), blen + 1, blen)

        # ---- collector and emitter ----------------------------------------------------------
        # The collector gathers a group; once complete it moves to the emitter, in the cycle its
        # last element arrives when the emitter is free or appends its group's last element in
        # that cycle (so back-to-back groups stream at one element per cycle), else it waits.
        gbuf = Signal(16 * group)
        gcnt = Signal(range(group + 1))
        gprec = Signal(range(17))
        glast = Signal()
        gfull = Signal()                         # complete, waiting for the emitter
        ebuf = Signal(16 * group)
        eprec = Signal(range(17))
        eleft = Signal(range(group + 1))         # elements still to append
        efirst = Signal()
        elast = Signal()
        ebusy = Signal()
        flushing = Signal()                      # the segment's last group is appended
        out_free = ~o.valid | o.ready
        step = ebusy & out_free                  # the emitter appends this cycle
        group_end = (eleft <= 1) | (eprec == 0)  # ... its group's last piece
        emitter_free = (~ebusy & ~flushing) | (step & group_end & ~elast)

        gnext = Signal(16 * group)               # the group with this cycle's element
        m.d.comb += gnext.eq(gbuf)
        m.d.comb += gnext.word_select(gcnt, 16).eq(val)
        gprec_next = Mux(width > gprec, width, gprec)

        def to_emitter(buf, prec, count, last):
            m.d.sync += [ebuf.eq(buf), eprec.eq(prec), eleft.eq(count), efirst.eq(1),
                         elast.eq(last), ebusy.eq(1), gcnt.eq(0), gprec.eq(0)]

        field = Signal(16)
        m.d.comb += field.eq(ebuf[:16] & ((Const(1, 17) << eprec) - 1))
        piece = Signal(16 + header_bits(16))     # bits appended this cycle, and how many
        nbits = Signal(range(16 + header_bits(16) + 1))
        with m.If(efirst):
            m.d.comb += [piece.eq(eprec | (Mux(eprec != 0, field, 0) << hb)),
                         nbits.eq(hb + eprec)]
        with m.Else():
            m.d.comb += [piece.eq(field), nbits.eq(eprec)]

        acc = Signal(bus + 32)
        fill = Signal(range(bus))
        merged = Signal(bus + 32)
        total = Signal(range(bus + 32))
        m.d.comb += [merged.eq(acc | (piece << fill)), total.eq(fill + nbits)]
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(step):
            with m.If(total >= bus):
                m.d.sync += [o.valid.eq(1), o.payload.eq(merged[:bus]), acc.eq(merged >> bus),
                             fill.eq(total - bus)]
            with m.Else():
                m.d.sync += [acc.eq(merged), fill.eq(total)]
            m.d.sync += [ebuf.eq(ebuf >> 16), efirst.eq(0), eleft.eq(eleft - 1)]
            with m.If(group_end):
                m.d.sync += ebusy.eq(0)
                with m.If(elast):
                    m.d.sync += flushing.eq(1)
        with m.Elif(flushing):
            with m.If(fill != 0):
                with m.If(out_free):
                    m.d.sync += [o.valid.eq(1), o.payload.eq(acc[:bus]), acc.eq(0), fill.eq(0)]
            with m.Elif(~o.valid):
                m.d.comb += self.done.eq(1)
                m.d.sync += flushing.eq(0)
        # (after the emitter: a group moving in overrides its final step's updates)
        m.d.comb += i.ready.eq(~gfull)
        completes = (gcnt + 1 == group) | i.payload.last
        with m.If(i.valid & ~gfull):
            with m.If(completes & emitter_free):
                to_emitter(gnext, gprec_next, gcnt + 1, i.payload.last)
            with m.Else():
                m.d.sync += [gbuf.eq(gnext), gcnt.eq(gcnt + 1), gprec.eq(gprec_next),
                             glast.eq(i.payload.last), gfull.eq(completes)]
        with m.If(gfull & emitter_free):
            to_emitter(gbuf, gprec, gcnt, glast)
            m.d.sync += gfull.eq(0)
        return m


def unpack_job_layout(cfg):
    """One unpack job (sampled at ``start``): GLB words to produce and the elements' sign."""
    return data.StructLayout({"words": unsigned(SENDER_ADDR_BITS), "signed": 1})


class GroupUnpacker(wiring.Component):
    """Reads a packed segment (:mod:`gen.packing`, groups of ``cfg.pack_group``, elements of
    the config's activation container) from ``i_data`` and writes ``job.words`` GLB words of
    ``dram_data_bits // container`` elements each (zero- or sign-extended as ``job.signed``
    says) to ``o_data``.

    ``start`` samples ``job`` (while busy it abandons the current job and its output); the
    unpacker then takes input words until the one
    with ``last`` (words after the segment's end are dropped), so a DMA read of the segment is
    always drained. ``done`` pulses once every word is out and the input has ended; ``error``
    (held until the next ``start``) says the input ended before ``job.words`` words were
    decoded or a group header named a precision above the container (no further words are
    written after the fault). ``busy`` is high from ``start`` to ``done``.

    Contract: one GLB word per cycle while the window holds its bits (each output word is all of
    one group; ``pack_group`` is a multiple of the elements per word); the window takes a bus
    word whenever it has room for one, so a segment at full precision runs at slightly under a
    word per cycle. ``o_data`` is a register held until taken. Reset: idle.
    """

    def __init__(self, cfg):
        if cfg.pack_group == 0:
            raise ValueError("pack_group: the config has no packed DRAM format (pack_group=0)")
        self.cfg = cfg
        super().__init__({
            "job": In(unpack_job_layout(cfg)),
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(1),
            "i_data": In(stream.Signature(data.StructLayout({
                "data": unsigned(cfg.dram_data_bits), "last": 1}))),
            "o_data": Out(stream.Signature(unsigned(cfg.dram_data_bits))),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        bus, cont = cfg.dram_data_bits, act_container_bits(cfg)
        k = bus // cont                          # elements per GLB word
        hb = header_bits(cont)
        words_per_group = cfg.pack_group // k
        i, o = self.i_data, self.o_data
        # window: takes a word while it holds at most two words and a header, so a full-precision
        # word (a header and a word of bits) can be decoded every cycle a word arrives
        wb = 3 * bus + hb

        job = Signal(unpack_job_layout(cfg))
        running = Signal()
        err = Signal()
        left = Signal(SENDER_ADDR_BITS)          # GLB words still to write
        gpos = Signal(range(max(words_per_group, 2)))
        prec = Signal(range(cont + 1))           # the current group's precision
        in_done = Signal()                       # the input word with ``last`` was taken
        win = Signal(wb)
        fill = Signal(range(wb + 1))
        m.d.comb += [self.busy.eq(running), self.error.eq(err)]

        at_start = gpos == 0
        hdr = win[:hb]
        p = Signal(range(max(cont + 1, 1 << hb)))
        m.d.comb += p.eq(Mux(at_start, hdr, prec))
        need = Signal(range(wb + 1))             # bits this word takes from the window
        m.d.comb += need.eq(Mux(at_start, hb, 0) + (p << exact_log2(k)))
        body = Signal(wb)
        m.d.comb += body.eq(Mux(at_start, win >> hb, win))

        word = Signal(bus)
        signed_job = job.signed
        with m.Switch(p):
            for pv in range(cont + 1):
                with m.Case(pv):
                    for j in range(k):
                        f = body[j * pv:(j + 1) * pv]
                        slot = word.word_select(j, cont)
                        if pv:
                            m.d.comb += slot.eq(Mux(signed_job, f.as_signed(), f))
                        else:
                            m.d.comb += slot.eq(0)

        producing = running & ~err & (left != 0)
        bad_hdr = at_start & (hdr > cont)
        out_free = ~o.valid | o.ready
        decode = producing & ~bad_hdr & (fill >= need) & out_free
        with m.If(o.ready):
            m.d.sync += o.valid.eq(0)
        with m.If(decode):
            m.d.sync += [o.valid.eq(1), o.payload.eq(word), left.eq(left - 1),
                         gpos.eq(Mux(gpos + 1 == words_per_group, 0, gpos + 1))]
            with m.If(at_start):
                m.d.sync += prec.eq(hdr)

        # the window: consumed bits leave at the bottom, a new word lands above the rest
        consumed = Mux(decode, need, 0)
        rest = Signal(range(wb + 1))
        m.d.comb += rest.eq(fill - consumed)
        m.d.comb += i.ready.eq(running & ~in_done & ((fill <= wb - bus) | ~producing))
        take = i.valid & i.ready
        shifted = win >> consumed
        with m.If(take & producing):
            m.d.sync += [win.eq(shifted | (i.payload.data << rest)), fill.eq(rest + bus)]
        with m.Else():
            m.d.sync += [win.eq(shifted), fill.eq(rest)]
        with m.If(take & i.payload.last):
            m.d.sync += in_done.eq(1)

        with m.If(producing & (bad_hdr | (in_done & (fill < need)))):
            m.d.sync += err.eq(1)
        with m.If(running & in_done & (~producing) & ~o.valid):
            m.d.comb += self.done.eq(1)
            m.d.sync += running.eq(0)
        with m.If(self.start):
            m.d.sync += [job.eq(self.job), running.eq(1), err.eq(0), left.eq(self.job.words),
                         gpos.eq(0), in_done.eq(0), fill.eq(0), win.eq(0), o.valid.eq(0)]
        return m
