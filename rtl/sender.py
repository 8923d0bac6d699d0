"""Sender: reads filter and ifmap data out of the global buffer and puts tagged words on the array buses."""

from amaranth.hdl import *
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .passcfg import STRIDE_MAX, tag_bits

__all__ = ["Sender", "sender_job_layout", "sender_table_layout", "act_container_bits",
           "filter_word_bits", "SENDER_ADDR_BITS"]

#: Width of GLB element addresses and strides inside the sender.
SENDER_ADDR_BITS = 24


def act_container_bits(cfg):
    """Bits one activation occupies in DRAM and the GLB: 8, or 16 when ``act_bits > 8``."""
    return 8 if cfg.act_bits <= 8 else 16


def filter_word_bits(cfg):
    """Bits one filter word (``lanes`` weights of 8 or 16 bits) occupies in DRAM and the GLB."""
    return cfg.lanes * (8 if cfg.weight_bits <= 8 else 16)


def sender_job_layout(cfg):
    """What one pass sends (sampled at ``start``); see :class:`Sender`."""
    tags = range(cfg.pes + 1)
    return data.StructLayout({
        "filter_tags": tags,                       # filter keys (0 = send no filters)
        "filter_words": unsigned(16),              # words per filter key: groups * chans * taps
        "ifmap_tags": tags,                        # ifmap keys
        "chans": range(cfg.ifmap_spad + 1),        # q
        "taps": range(cfg.ifmap_spad + 1),         # S
        "stride": range(STRIDE_MAX + 1),           # U
        "cols": unsigned(cfg.dim_bits),            # F
        "pos_stride": unsigned(SENDER_ADDR_BITS),  # elements between neighbouring positions (C)
    })


def sender_table_layout(cfg):
    """One table entry: the base address of key ``index`` (its tag) of the filter or ifmap table.

    Filter bases count filter words; ifmap bases count activations (element addresses).
    """
    return data.StructLayout({
        "ifmap": 1,
        "index": range(cfg.pes),
        "base": unsigned(SENDER_ADDR_BITS),
    })


class Sender(wiring.Component):
    """Feeds the PE array's multicast buses from the global buffer, in the order the array needs.

    Before a pass, ``i_table`` writes one base address per key (tag) into the filter and ifmap
    tables. On ``start`` (with ``job``), the sender first sends every filter key ``t`` in tag
    order: ``filter_words`` consecutive filter words from filter-word address ``base[t]``, each on
    ``o_filter`` as ``{tag: t, word}``. Then, for output column ``f = 0 .. cols-1``, for every
    ifmap key ``t``, the positions the PEs need next (``taps`` for ``f = 0``, then ``stride``) and
    for each position the ``chans`` channels: activation ``base[t] + pos * pos_stride + q`` goes
    out on ``o_ifmap`` as ``{tag: t, act}``. This is the order of
    :func:`gen.rowstationary.filter_words` / :func:`~gen.rowstationary.ifmap_words` when the
    tensor is stored position-major, channel-minor (``pos_stride`` = stored channels).

    Storage: the GLB word (``dram_data_bits``) holds ``dram_data_bits // container`` values, value
    ``i`` of a word in bits ``i*container ..``; activations use :func:`act_container_bits`, filter
    words :func:`filter_word_bits` (``lanes`` weights, weight ``l`` at ``l*8`` or ``l*16``).

    GLB reads go out on ``o_glb_addr`` (word addresses) and their data must come back on
    ``i_glb_data`` in request order. At most ``depth`` reads are outstanding; without stalls one
    read is issued per cycle, with 3 cycles between filter keys and 2 before the first ifmap key;
    the ifmap keys follow each other without a gap (the table is read one key ahead). ``done`` pulses
    the cycle after the last word was taken; ``busy`` is high from ``start`` to ``done``.
    """

    def __init__(self, cfg, depth=8):
        if filter_word_bits(cfg) > cfg.dram_data_bits:
            raise ValueError(f"lanes: a filter word of lanes * container = "
                             f"{filter_word_bits(cfg)} bits must fit a dram_data_bits="
                             f"{cfg.dram_data_bits} word")
        self.cfg = cfg
        self.depth = depth
        tb = tag_bits(cfg)
        super().__init__({
            "i_table": In(stream.Signature(sender_table_layout(cfg))),
            "job": In(sender_job_layout(cfg)),
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "o_glb_addr": Out(stream.Signature(unsigned(SENDER_ADDR_BITS))),
            "i_glb_data": In(stream.Signature(unsigned(cfg.dram_data_bits))),
            "o_filter": Out(stream.Signature(data.StructLayout({
                "tag": unsigned(tb),
                "word": data.ArrayLayout(signed(cfg.weight_bits), cfg.lanes)}))),
            "o_ifmap": Out(stream.Signature(data.StructLayout({
                "tag": unsigned(tb), "act": unsigned(cfg.act_bits)}))),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        bus = cfg.dram_data_bits
        acont, fbits = act_container_bits(cfg), filter_word_bits(cfg)
        a_per, f_per = bus // acont, bus // fbits
        wcont = fbits // cfg.lanes
        n = cfg.pes

        # ---- base tables -----------------------------------------------------------------------
        m.submodules.ftab = ftab = Memory(shape=SENDER_ADDR_BITS, depth=n, init=[])
        m.submodules.itab = itab = Memory(shape=SENDER_ADDR_BITS, depth=n, init=[])
        idle = Signal()
        tbl = self.i_table.payload
        for mem, sel in ((ftab, ~tbl.ifmap), (itab, tbl.ifmap)):
            wp = mem.write_port()
            m.d.comb += [wp.en.eq(self.i_table.valid & idle & sel), wp.addr.eq(tbl.index),
                         wp.data.eq(tbl.base)]
        m.d.comb += self.i_table.ready.eq(idle)
        f_rd = ftab.read_port(transparent_for=())
        i_rd = itab.read_port(transparent_for=())

        # ---- request side: address generation -------------------------------------------------
        job = Signal(sender_job_layout(cfg))
        lane_bits = Shape.cast(range(max(a_per, f_per))).width
        side = fifo.SyncFIFOBuffered(width=1 + lane_bits + tag_bits(cfg), depth=self.depth)
        m.submodules.side = side
        inflight = Signal(range(self.depth + 1))      # requests whose value has not left yet
        tag = Signal(range(n + 1))
        elem = Signal(SENDER_ADDR_BITS)               # element (or filter word) address
        pos_base = Signal(SENDER_ADDR_BITS)           # address of the current position, channel 0
        col_off = Signal(SENDER_ADDR_BITS)            # first new position of the column * stride
        count = Signal(16)                            # filter words left for this key
        q = Signal.like(job.chans)
        pos = Signal(range(max(cfg.ifmap_spad, STRIDE_MAX) + 1))
        npos = Signal.like(pos)                       # new positions this column
        col = Signal(cfg.dim_bits)
        is_ifmap = Signal()
        issue = Signal()
        can_issue = (inflight < self.depth) & side.w_rdy
        m.d.comb += [
            self.o_glb_addr.valid.eq(issue),
            self.o_glb_addr.payload.eq(Mux(is_ifmap, elem // a_per, elem // f_per)),
            side.w_data.eq(Cat(is_ifmap, Mux(is_ifmap, elem % a_per, elem % f_per)[:lane_bits],
                               tag[:tag_bits(cfg)])),
        ]
        fire = issue & self.o_glb_addr.ready
        m.d.comb += side.w_en.eq(fire)

        # ---- response side: extract and send ---------------------------------------------------
        word = self.i_glb_data.payload
        tb = tag_bits(cfg)
        kind, lane, rtag = side.r_data[0], side.r_data[1:-tb], side.r_data[-tb:]
        out_f, out_i = self.o_filter, self.o_ifmap
        f_free = ~out_f.valid | out_f.ready
        i_free = ~out_i.valid | out_i.ready
        with m.If(out_f.ready):
            m.d.sync += out_f.valid.eq(0)
        with m.If(out_i.ready):
            m.d.sync += out_i.valid.eq(0)
        take = self.i_glb_data.valid & side.r_rdy & Mux(kind, i_free, f_free)
        m.d.comb += [self.i_glb_data.ready.eq(take), side.r_en.eq(take)]
        acts = word.word_select(lane, acont)
        fword = word.word_select(lane, fbits)
        with m.If(take):
            with m.If(kind):
                m.d.sync += [out_i.valid.eq(1), out_i.payload.tag.eq(rtag),
                             out_i.payload.act.eq(acts[:cfg.act_bits])]
            with m.Else():
                m.d.sync += [out_f.valid.eq(1), out_f.payload.tag.eq(rtag)]
                for l in range(cfg.lanes):
                    m.d.sync += out_f.payload.word[l].eq(fword[l * wcont:(l + 1) * wcont]
                                                         [:cfg.weight_bits].as_signed())
        m.d.sync += inflight.eq(inflight + fire - (out_f.valid & out_f.ready) -
                                (out_i.valid & out_i.ready))

        # ---- sequencer -------------------------------------------------------------------------
        m.d.comb += [f_rd.addr.eq(tag), i_rd.addr.eq(tag)]
        with m.FSM(name="fsm"):
            with m.State("IDLE"):
                m.d.comb += idle.eq(1)
                with m.If(self.start):
                    m.d.sync += [job.eq(self.job), tag.eq(0), col.eq(0), col_off.eq(0)]
                    with m.If(self.job.filter_tags != 0):
                        m.next = "F_BASE"
                    with m.Else():
                        m.next = "I_BASE"
            with m.State("F_BASE"):                   # table read of key ``tag`` in flight
                m.next = "F_LOAD"
            with m.State("F_LOAD"):
                m.d.sync += [elem.eq(f_rd.data), count.eq(job.filter_words), is_ifmap.eq(0)]
                m.next = "F_SEND"
            with m.State("F_SEND"):
                m.d.comb += issue.eq(can_issue & (count != 0))
                with m.If(count == 0):
                    with m.If(tag + 1 == job.filter_tags):
                        m.d.sync += tag.eq(0)
                        m.next = "I_BASE"
                    with m.Else():
                        m.d.sync += tag.eq(tag + 1)
                        m.next = "F_BASE"
                with m.Elif(fire):
                    m.d.sync += [elem.eq(elem + 1), count.eq(count - 1)]
            with m.State("I_BASE"):
                with m.If((job.ifmap_tags == 0) | (job.cols == 0)):
                    m.next = "DRAIN"
                with m.Else():
                    m.next = "I_LOAD"
            # The ifmap table is read one key ahead: while key ``tag`` is sent, the base of the
            # key after it is on ``i_rd.data``, so the next key starts without a gap.
            def after(t):
                return Mux(t + 1 == job.ifmap_tags, 0, t + 1)

            with m.State("I_LOAD"):                   # first key of the pass
                start = i_rd.data + col_off
                m.d.comb += i_rd.addr.eq(after(tag))
                m.d.sync += [elem.eq(start), pos_base.eq(start), q.eq(0), pos.eq(0),
                             npos.eq(job.taps), is_ifmap.eq(1)]
                m.next = "I_SEND"
            with m.State("I_SEND"):
                m.d.comb += issue.eq(can_issue)
                last_word = (q + 1 == job.chans) & (pos + 1 == npos)
                m.d.comb += i_rd.addr.eq(Mux(fire & last_word, after(after(tag)), after(tag)))
                with m.If(fire):
                    with m.If(q + 1 != job.chans):
                        m.d.sync += [q.eq(q + 1), elem.eq(elem + 1)]
                    with m.Elif(pos + 1 != npos):
                        m.d.sync += [q.eq(0), pos.eq(pos + 1), elem.eq(pos_base + job.pos_stride),
                                     pos_base.eq(pos_base + job.pos_stride)]
                    with m.Elif(tag + 1 != job.ifmap_tags):
                        start = i_rd.data + col_off
                        m.d.sync += [tag.eq(tag + 1), elem.eq(start), pos_base.eq(start),
                                     q.eq(0), pos.eq(0)]
                    with m.Else():
                        # next column: its new positions start after the previous column's
                        off = Signal.like(col_off)
                        m.d.comb += off.eq(col_off + npos * job.pos_stride)
                        start = i_rd.data + off
                        m.d.sync += [tag.eq(0), col.eq(col + 1), col_off.eq(off), elem.eq(start),
                                     pos_base.eq(start), q.eq(0), pos.eq(0), npos.eq(job.stride)]
                        with m.If(col + 1 == job.cols):
                            m.next = "DRAIN"
            with m.State("DRAIN"):
                with m.If((inflight == 0) & ~out_f.valid & ~out_i.valid):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
        m.d.comb += self.busy.eq(~idle)
        return m
