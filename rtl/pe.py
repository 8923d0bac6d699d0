"""Processing element: scratchpads, a MAC and the row-stationary 1-D convolution sequencer."""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .buffers import Scratchpad
from .mac import Mac
from .passcfg import pe_pass_layout

__all__ = ["ProcessingElement", "pe_signature", "pe_stats_layout"]


def pe_stats_layout():
    """Per-cycle event counts a PE reports for the performance counters (registered: each
    cycle's events appear on ``stats`` one cycle later)."""
    return data.StructLayout({"mac_active": 1, "spad_reads": 2, "spad_writes": 2})


def pe_signature(cfg):
    """Ports of :class:`ProcessingElement` (also used for black-box instances of it)."""
    return wiring.Signature({
        "pass_cfg": In(pe_pass_layout(cfg)),
        "accumulate": In(1),
        "start": In(1),
        "busy": Out(1),
        "done": Out(1),
        "error": Out(1),
        "i_filter": In(stream.Signature(data.ArrayLayout(signed(cfg.weight_bits), cfg.lanes))),
        "i_ifmap": In(stream.Signature(unsigned(cfg.act_bits))),
        "i_psum": In(stream.Signature(signed(cfg.psum_bits))),
        "o_psum": Out(stream.Signature(signed(cfg.psum_bits))),
        "stats": Out(pe_stats_layout()),
    })


class ProcessingElement(wiring.Component):
    """Row-stationary PE: one filter row against one ifmap row, giving one psum row (see PePass).

    A pass starts with a ``start`` pulse; ``pass_cfg`` and ``accumulate`` are sampled then.
    The PE loads ``groups*chans*taps`` filter words into the filter spad (unless
    ``load_filters`` is 0: then the previous filters stay), then for every output column ``f``
    loads the new ifmap values into the ifmap spad (``taps`` positions for ``f = 0``, ``stride``
    after; positions that fall in no window when ``stride > taps`` are consumed and dropped), runs
    ``groups*chans*taps`` MAC operations of ``lanes`` filters each and stores the ``groups``
    results in the psum spad. A separate drain sends the column's ``filters`` psums on ``o_psum``,
    each plus the matching word of ``i_psum`` when ``accumulate`` is set (psum from the PE below).
    The psum spad is double-buffered when ``2*groups <= psum_spad``, so draining one column
    overlaps computing the next.

    Cycle cost per output column (no stalls): loading ``chans*stride`` words, then
    ``groups*chans*taps*c + 2`` with ``c = pa`` (serial) or 1 (parallel); the drain of
    ``filters`` words overlaps with the next column when double-buffered.

    ``done`` pulses in the cycle after the last psum has left; ``busy`` is high from ``start`` to ``done``.
    ``start`` is accepted while idle and in the cycle ``done`` pulses (back-to-back passes).
    An impossible pass (a zero field, ``pa`` outside 1..act_bits, ``groups`` inconsistent with
    ``filters``, or a spad overflow) sets ``error`` and returns to idle instead of computing.
    ``error`` stays set until the next ``start``.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__(pe_signature(cfg))

    def elaborate(self, platform):
        cfg = self.cfg
        lanes = cfg.lanes
        m = Module()

        m.submodules.mac = mac = Mac(cfg)
        m.submodules.filter_spad = fspad = Scratchpad(
            data.ArrayLayout(signed(cfg.weight_bits), lanes), cfg.filter_spad)
        m.submodules.ifmap_spad = ispad = Scratchpad(unsigned(cfg.act_bits), cfg.ifmap_spad)
        m.submodules.psum_spad = pspad = Scratchpad(
            data.ArrayLayout(signed(cfg.psum_bits), lanes), cfg.psum_spad)

        job = Signal(pe_pass_layout(cfg))
        acc_in = Signal()
        half = cfg.psum_spad // 2
        double = Signal()                         # psum spad double-buffered this pass
        # registered, so the handshake logic that drives the spads ends at the PE's boundary
        # instead of running on into the array's adder tree and the 64-bit counters
        m.d.sync += [
            self.stats.mac_active.eq(mac.busy),
            self.stats.spad_reads.eq(fspad.reads + ispad.reads + pspad.reads),
            self.stats.spad_writes.eq(fspad.writes + ispad.writes + pspad.writes),
        ]

        # Bank handshake between the compute side (fills) and the drain side (empties).
        full = Signal(2)
        set_full = Signal(2)
        clear_full = Signal(2)
        m.d.sync += full.eq((full | set_full) & ~clear_full)

        # ---- compute side ----------------------------------------------------------------------
        col = Signal(cfg.dim_bits)                # output column being loaded/computed
        cbank = Signal()                          # bank the column being computed writes
        # loop counters shared by filter loading and ifmap loading / compute issue
        g = Signal(range(cfg.psum_spad + 1))
        q = Signal(range(cfg.ifmap_spad + 1))
        s = Signal(range(cfg.ifmap_spad + 1))
        f_addr = Signal(range(cfg.filter_spad + 1))
        q_off = Signal(range(2 * cfg.ifmap_spad + 1))   # q * taps
        slot = Signal(range(cfg.ifmap_spad + 1))        # position modulo taps
        w_slot = Signal(range(cfg.ifmap_spad + 1))      # slot of the next position to arrive
        base = Signal(range(cfg.ifmap_spad + 1))        # slot of the window's first position
        pos = Signal(range(cfg.ifmap_spad + 1 + (1 << 4)))   # position within this load
        to_load = Signal.like(pos)
        to_drop = Signal.like(pos)
        in_flight = Signal(2)                     # columns issued whose results are not all stored
        w_group = Signal(range(cfg.psum_spad + 1))
        w_bank = Signal()
        col_started = Signal()
        col_stored = Signal()
        m.d.sync += in_flight.eq(in_flight + col_started - col_stored)
        err = Signal()
        m.d.comb += self.error.eq(err)

        def wrap_inc(v):
            return Mux(v + 1 == job.taps, 0, v + 1)

        # Stage 1 of the compute pipeline: spad words read, operation presented to the MAC.
        op_valid = Signal()
        op_first = Signal()
        op_last = Signal()
        issuing = Signal()
        advance = ~op_valid | mac.i_op.ready
        m.d.comb += [
            mac.i_op.valid.eq(op_valid),
            mac.i_op.payload.act.eq(ispad.r_data),
            mac.i_op.payload.weights.eq(fspad.r_data),
            mac.i_op.payload.pa.eq(job.pa),
            mac.i_op.payload.act_signed.eq(job.act_signed),
            mac.i_op.payload.first.eq(op_first),
            mac.i_op.payload.last.eq(op_last),
            fspad.r_addr.eq(f_addr),
            ispad.r_addr.eq(q_off + slot),
        ]
        with m.If(advance):
            m.d.sync += op_valid.eq(issuing)
        with m.If(issuing & advance):
            m.d.comb += [fspad.r_en.eq(1), ispad.r_en.eq(1)]
            m.d.sync += [op_first.eq((q == 0) & (s == 0)),
                         op_last.eq((q == job.chans - 1) & (s == job.taps - 1))]

        # MAC results go straight into the psum spad bank of their column.
        m.d.comb += [
            mac.o_sum.ready.eq(1),
            pspad.w_en.eq(mac.o_sum.valid),
            pspad.w_addr.eq(Mux(w_bank, half, 0) + w_group),
            pspad.w_data.eq(mac.o_sum.payload),
        ]
        with m.If(mac.o_sum.valid):
            with m.If(w_group + 1 == job.groups):
                m.d.sync += [w_group.eq(0), w_bank.eq(w_bank ^ double)]
                m.d.comb += [set_full.bit_select(w_bank, 1).eq(1), col_stored.eq(1)]
            with m.Else():
                m.d.sync += w_group.eq(w_group + 1)

        # ---- drain side ------------------------------------------------------------------------
        d_col = Signal(cfg.dim_bits)
        d_bank = Signal()
        d_group = Signal(range(cfg.psum_spad + 1))
        d_lane = Signal(range(lanes))
        d_filter = Signal(range(cfg.psum_spad * lanes + 1))
        d_active = Signal()                       # r_data holds the entry being emitted
        drained = Signal()                        # all columns of the pass have left
        o_valid = Signal()
        m.d.comb += [self.o_psum.valid.eq(o_valid), pspad.r_addr.eq(Mux(d_bank, half, 0) + d_group)]
        can_load = ~o_valid | self.o_psum.ready
        with m.If(self.o_psum.ready):
            m.d.sync += o_valid.eq(0)
        entry = pspad.r_data
        with m.If(~d_active & ~drained & self.busy & full.bit_select(d_bank, 1)):
            m.d.comb += pspad.r_en.eq(1)
            m.d.sync += d_active.eq(1)
        with m.If(d_active & can_load & (~acc_in | self.i_psum.valid)):
            m.d.comb += self.i_psum.ready.eq(acc_in)
            m.d.sync += [
                o_valid.eq(1),
                self.o_psum.payload.eq(entry[d_lane] + Mux(acc_in, self.i_psum.payload, 0)),
                d_lane.eq(d_lane + 1),
                d_filter.eq(d_filter + 1),
            ]
            with m.If(d_filter + 1 == job.filters):
                m.d.comb += clear_full.bit_select(d_bank, 1).eq(1)
                m.d.sync += [d_active.eq(0), d_lane.eq(0), d_filter.eq(0), d_group.eq(0),
                             d_bank.eq(d_bank ^ double), d_col.eq(d_col + 1)]
                with m.If(d_col + 1 == job.cols):
                    m.d.sync += drained.eq(1)
            with m.Elif(d_lane == lanes - 1):
                m.d.comb += pspad.r_en.eq(1)
                m.d.sync += [d_lane.eq(0), d_group.eq(d_group + 1)]
                m.d.comb += pspad.r_addr.eq(Mux(d_bank, half, 0) + d_group + 1)

        # ---- sequencer -------------------------------------------------------------------------
        pc = self.pass_cfg
        bad = ((pc.taps == 0) | (pc.chans == 0) | (pc.filters == 0) | (pc.cols == 0) |
               (pc.stride == 0) | (pc.pa == 0) | (pc.pa > cfg.act_bits) |
               (pc.groups == 0) | (pc.groups > cfg.psum_spad) |
               (pc.groups * lanes < pc.filters) | ((pc.groups - 1) * lanes >= pc.filters))

        with m.FSM(name="fsm") as fsm:
            def launch():
                """Accept ``start``: latch the pass, or flag it and abort if it is impossible."""
                with m.If(self.start):
                    m.d.sync += [job.eq(pc), acc_in.eq(self.accumulate), err.eq(bad)]
                    with m.If(bad):
                        m.next = "ABORT"
                    with m.Else():
                        m.d.sync += [
                            double.eq(pc.groups <= half),
                            full.eq(0), col.eq(0), cbank.eq(0), w_bank.eq(0), w_group.eq(0),
                            d_col.eq(0), d_bank.eq(0), d_group.eq(0), d_lane.eq(0), d_filter.eq(0),
                            d_active.eq(0), drained.eq(0),
                            g.eq(0), q.eq(0), s.eq(0), f_addr.eq(0), w_slot.eq(0), q_off.eq(0),
                            pos.eq(0), to_load.eq(pc.taps), to_drop.eq(0),
                        ]
                        with m.If(pc.load_filters):
                            m.next = "LOAD_FILTERS"
                        with m.Else():
                            m.next = "LOAD_IFMAP"

            with m.State("IDLE"):
                launch()

            with m.State("LOAD_FILTERS"):
                m.d.comb += [
                    self.i_filter.ready.eq(1),
                    fspad.w_en.eq(self.i_filter.valid & (f_addr < cfg.filter_spad)),
                    fspad.w_addr.eq(f_addr),
                    fspad.w_data.eq(self.i_filter.payload),
                ]
                with m.If(self.i_filter.valid):
                    m.d.sync += f_addr.eq(f_addr + 1)
                    with m.If(f_addr == cfg.filter_spad):
                        m.d.sync += err.eq(1)
                        m.next = "ABORT"
                    with m.Elif(s + 1 != job.taps):
                        m.d.sync += s.eq(s + 1)
                    with m.Elif(q + 1 != job.chans):
                        m.d.sync += [s.eq(0), q.eq(q + 1)]
                    with m.Elif(g + 1 != job.groups):
                        m.d.sync += [s.eq(0), q.eq(0), g.eq(g + 1)]
                    with m.Else():
                        m.d.sync += [s.eq(0), q.eq(0), g.eq(0), f_addr.eq(0)]
                        m.next = "LOAD_IFMAP"

            with m.State("LOAD_IFMAP"):
                m.d.comb += [
                    self.i_ifmap.ready.eq(1),
                    ispad.w_en.eq(self.i_ifmap.valid & (pos >= to_drop) &
                                  (q_off + w_slot < cfg.ifmap_spad)),
                    ispad.w_addr.eq(q_off + w_slot),
                    ispad.w_data.eq(self.i_ifmap.payload),
                ]
                with m.If(self.i_ifmap.valid):
                    with m.If(q_off + w_slot >= cfg.ifmap_spad):
                        m.d.sync += err.eq(1)
                        m.next = "ABORT"
                    with m.Elif(q + 1 != job.chans):
                        m.d.sync += [q.eq(q + 1), q_off.eq(q_off + job.taps)]
                    with m.Else():
                        m.d.sync += [q.eq(0), q_off.eq(0), w_slot.eq(wrap_inc(w_slot)),
                                     pos.eq(pos + 1)]
                        with m.If(pos + 1 == to_load):
                            m.d.sync += [base.eq(wrap_inc(w_slot)), slot.eq(wrap_inc(w_slot)),
                                         pos.eq(0)]
                            m.next = "WAIT_BANK"

            with m.State("WAIT_BANK"):
                # The bank must be drained and not still being written by an earlier column (in
                # single-bank mode that is the previous column; double-buffered, the one before).
                with m.If(~full.bit_select(cbank, 1) & (in_flight < Mux(double, 2, 1))):
                    m.d.comb += col_started.eq(1)
                    m.next = "COMPUTE"

            with m.State("COMPUTE"):
                m.d.comb += issuing.eq(1)
                with m.If(advance):
                    m.d.sync += f_addr.eq(f_addr + 1)
                    with m.If(s + 1 != job.taps):
                        m.d.sync += [s.eq(s + 1), slot.eq(wrap_inc(slot))]
                    with m.Elif(q + 1 != job.chans):
                        m.d.sync += [s.eq(0), slot.eq(base), q.eq(q + 1), q_off.eq(q_off + job.taps)]
                    with m.Elif(g + 1 != job.groups):
                        m.d.sync += [s.eq(0), slot.eq(base), q.eq(0), q_off.eq(0), g.eq(g + 1)]
                    with m.Else():
                        m.d.sync += [s.eq(0), q.eq(0), q_off.eq(0), g.eq(0), f_addr.eq(0),
                                     cbank.eq(cbank ^ double), col.eq(col + 1),
                                     to_load.eq(job.stride),
                                     to_drop.eq(Mux(job.stride > job.taps, job.stride - job.taps, 0))]
                        with m.If(col + 1 == job.cols):
                            m.next = "FINISH"
                        with m.Else():
                            m.next = "LOAD_IFMAP"

            with m.State("FINISH"):
                # Done the cycle after the last psum was taken; a new pass may start then.
                with m.If(drained & ~o_valid):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
                    launch()

            with m.State("ABORT"):
                # Reached from IDLE or while loading the first column: no operation is in flight.
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"
                launch()

        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m
