"""AXI4 master DMA: 2-D strided DRAM reads and writes split into INCR bursts."""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO, SyncFIFOBuffered
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from rtl.axi import AXI_BURST_INCR, axi4_signature
from rtl.config import AccelConfig

__all__ = ["Dma", "dma_cmd_layout", "dma_rdata_layout", "dma_done_layout", "DMA_COUNTER_BITS",
           "DMA_COUNT_BITS", "DATA_BUFFER_WORDS"]

#: Width of the ``bytes_read`` / ``bytes_written`` counters.
DMA_COUNTER_BITS = 48
#: Width of the ``row_words`` and ``rows`` command fields (a DMA limit, not a config parameter).
DMA_COUNT_BITS = 16
#: Bus words of read data (and of write data) the DMA buffers internally.
DATA_BUFFER_WORDS = 4
#: Done tokens the DMA holds when ``o_done`` is not drained.
_DONE_DEPTH = 4


def dma_cmd_layout(cfg):
    """One DMA command: ``rows`` rows of ``row_words`` bus words, row starts ``stride`` bytes apart."""
    return data.StructLayout({
        "write": 1,                          # 1: i_wdata -> DRAM, 0: DRAM -> o_rdata
        "addr": unsigned(cfg.dram_addr_bits),    # byte address of the first row, bus-word aligned
        "row_words": unsigned(DMA_COUNT_BITS),   # bus words per row, >= 1
        "rows": unsigned(DMA_COUNT_BITS),        # >= 1
        "stride": unsigned(cfg.dram_addr_bits),  # bytes between row starts, bus-word aligned
    })


def dma_rdata_layout(cfg):
    """One word of read data; ``last`` marks the final word of a read command."""
    return data.StructLayout({"data": unsigned(cfg.dram_data_bits), "last": 1})


def dma_done_layout():
    """Completion token of one command."""
    return data.StructLayout({"write": 1, "error": 1})


class Dma(wiring.Component):
    """AXI4 master that moves 2-D strided blocks between DRAM and two word streams.

    A command on ``i_cmd`` names ``rows`` rows of ``row_words`` bus words; row ``r`` starts at byte
    ``addr + r * stride`` (addresses wrap at ``2**dram_addr_bits``, so a stride of ``-k`` walks
    down). A read command delivers its ``rows * row_words`` words on ``o_rdata`` in row-major
    order, ``last`` set on the final one; a write command takes the same number of words from
    ``i_wdata`` and writes them with full strobes. Each row is split into INCR bursts of at most
    ``max_burst`` beats that never cross a 4 KiB boundary; ``awsize``/``arsize`` is the full bus
    width, IDs are 0.

    Contract:

    * Handshakes: ``i_cmd`` is taken into a one-command register, so ``i_cmd.ready`` depends only
      on internal state (never on ``i_cmd.valid``/``payload``); a new command can be taken every
      cycle the previous one starts. ``o_rdata``/``o_done`` keep ``valid`` and ``payload`` until
      taken.
    * Order: commands execute in order and ``o_done`` carries one ``{write, error}`` token per
      command, in command order. A read's token is queued when its last word is taken from
      ``o_rdata``; a write's token when the B response of its last burst arrives. Commands of the
      same direction pipeline (the next command's bursts are issued while earlier data still
      moves); a command of the other direction (or a rejected one) waits until every earlier
      command has its token, so a read after a write sees the written data and a write after a
      read does not overtake it.
    * Outstanding bursts: up to ``max_outstanding`` read bursts may await data and up to
      ``max_outstanding`` write bursts may await their B response. W beats wait for their burst
      to be issued, not for the AW handshake, so slaves that take W before AW also work.
    * Throughput and latency: one address per cycle and one R or W beat per cycle without
      back-pressure (1 beat/cycle on long transfers once ``max_outstanding`` bursts cover the
      slave's latency). ``arvalid``/``awvalid`` rise 3 cycles after the ``i_cmd`` transfer; an R
      beat appears on ``o_rdata`` 2 cycles after its handshake.
    * Back-pressure: every AXI channel and stream may stall at any time; AXI valids and payloads
      are held until accepted; no AXI output depends combinationally on an AXI input. ``i_wdata``
      is buffered up to 4 words ahead, also before its write command arrives: supply exactly
      ``rows * row_words`` words per accepted write (none for a rejected one). ``o_rdata`` must
      be drained independently of ``i_wdata`` (looping it back into ``i_wdata`` for a copy can
      deadlock). Up to 4 tokens wait in ``o_done``; while it is full the last word of a read and
      the final B response of a write are held back.
    * Errors: SLVERR/DECERR on any R or B beat (or an R beat whose ``rlast`` disagrees with the
      burst length) sets ``error`` and gives the command's token ``error=1``. The command still
      runs to completion so the bus stays clean and nothing hangs: every R beat of every issued
      burst is taken from the bus and *delivered* on ``o_rdata`` as the slave returned it (data
      of failed beats is whatever the slave sent; the word count and ``last`` are unchanged), and
      a write still sends all its W beats. A command whose ``addr`` or ``stride`` is not a
      multiple of the bus width, or with ``rows == 0`` or ``row_words == 0``, is rejected: no bus
      traffic, no ``i_wdata`` words taken, an ``error=1`` token after the earlier commands'
      tokens, and ``error`` set.
    * Counters: ``bytes_read``/``bytes_written`` add the bus width on every R/W handshake, i.e.
      bytes actually moved on the bus (failed beats included, rejected commands never count).
    * Reset: idle, no command held, FIFOs empty, all AXI valids low, ``error`` and counters 0.

    Parameters
    ----------
    cfg : AccelConfig
        ``dram_addr_bits`` / ``dram_data_bits`` size the bus.
    max_burst : int
        Longest burst in beats, 1..256 (also capped at 4 KiB worth of beats).
    max_outstanding : int
        Read bursts awaiting data / write bursts awaiting B, 1..64.

    Members
    -------
    m_axi : Out(axi4_signature(dram_addr_bits, dram_data_bits))
    i_cmd : In(stream.Signature(dma_cmd_layout(cfg)))
    o_rdata : Out(stream.Signature(dma_rdata_layout(cfg)))
    i_wdata : In(stream.Signature(dram_data_bits))
    o_done : Out(stream.Signature(dma_done_layout()))
    error : Out(1)
        Sticky error flag; ``clear_error`` (In(1), one cycle) clears it (a new error that cycle wins).
    bytes_read, bytes_written : Out(48)
        Bytes moved by R / W handshakes; ``clear_counters`` (In(1)) zeroes them (a beat in the
        same cycle counts from zero).
    busy : Out(1)
        A command is held or accepted whose token has not yet been queued on ``o_done``.
    """

    def __init__(self, cfg, *, max_burst=256, max_outstanding=8):
        if not isinstance(cfg, AccelConfig):
            raise TypeError(f"cfg: must be an AccelConfig (got {cfg!r})")
        if isinstance(max_burst, bool) or not isinstance(max_burst, int) or \
                not 1 <= max_burst <= 256:
            raise ValueError(f"max_burst: must be an integer in 1..256 (got {max_burst!r})")
        if isinstance(max_outstanding, bool) or not isinstance(max_outstanding, int) or \
                not 1 <= max_outstanding <= 64:
            raise ValueError(f"max_outstanding: must be an integer in 1..64 (got {max_outstanding!r})")
        self.cfg = cfg
        self.max_burst = max_burst
        self.max_outstanding = max_outstanding
        super().__init__({
            "m_axi": Out(axi4_signature(cfg.dram_addr_bits, cfg.dram_data_bits)),
            "i_cmd": In(stream.Signature(dma_cmd_layout(cfg))),
            "o_rdata": Out(stream.Signature(dma_rdata_layout(cfg))),
            "i_wdata": In(stream.Signature(unsigned(cfg.dram_data_bits))),
            "o_done": Out(stream.Signature(dma_done_layout())),
            "error": Out(1),
            "clear_error": In(1),
            "bytes_read": Out(DMA_COUNTER_BITS),
            "bytes_written": Out(DMA_COUNTER_BITS),
            "clear_counters": In(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        axi = self.m_axi
        nbytes = cfg.dram_bytes
        shift = exact_log2(nbytes)
        page_words = 4096 // nbytes

        burst_layout = data.StructLayout({"addr": unsigned(cfg.dram_addr_bits), "len": 8})
        track_layout = data.StructLayout({"len": 8, "last": 1})   # last: final burst of a command
        rbuf_layout = data.StructLayout({"data": unsigned(cfg.dram_data_bits), "last": 1, "err": 1})
        done_layout = dma_done_layout()

        # Issued bursts: AR/AW address queues and the bookkeeping the data/response sides consume.
        m.submodules.ar_q = ar_q = SyncFIFO(width=burst_layout.size, depth=2)
        m.submodules.aw_q = aw_q = SyncFIFO(width=burst_layout.size, depth=2)
        m.submodules.r_track = r_track = SyncFIFO(width=track_layout.size, depth=self.max_outstanding)
        m.submodules.w_track = w_track = SyncFIFO(width=8, depth=self.max_outstanding)
        m.submodules.b_track = b_track = SyncFIFO(width=1, depth=self.max_outstanding)
        m.submodules.r_buf = r_buf = SyncFIFOBuffered(width=rbuf_layout.size, depth=DATA_BUFFER_WORDS)
        m.submodules.w_buf = w_buf = SyncFIFOBuffered(width=cfg.dram_data_bits, depth=DATA_BUFFER_WORDS)
        m.submodules.done_q = done_q = SyncFIFO(width=done_layout.size, depth=_DONE_DEPTH)

        # Command register: decouples i_cmd.ready from the payload and queues one command.
        pend_valid = Signal()
        cmd = Signal(dma_cmd_layout(cfg))
        take = Signal()   # the held command starts or is rejected this cycle
        m.d.comb += self.i_cmd.ready.eq(~pend_valid | take)
        with m.If(self.i_cmd.valid & self.i_cmd.ready):
            m.d.sync += [cmd.eq(self.i_cmd.payload), pend_valid.eq(1)]
        with m.Elif(take):
            m.d.sync += pend_valid.eq(0)

        # Commands started whose token is not yet queued; all of them have direction `cur_write`.
        # Bounded (above what the FIFOs can hold anyway) so the counter cannot overflow.
        inflight_max = self.max_outstanding + DATA_BUFFER_WORDS + _DONE_DEPTH
        inflight = Signal(range(inflight_max + 1))
        cur_write = Signal()
        done_r = Signal()
        done_r_err = Signal()
        done_w = Signal()
        done_w_err = Signal()

        # Burst splitter --------------------------------------------------------------------------
        active = Signal()
        addr = Signal(cfg.dram_addr_bits)       # next burst
        row_addr = Signal(cfg.dram_addr_bits)   # start of the current row
        stride = Signal(cfg.dram_addr_bits)
        row_words = Signal(DMA_COUNT_BITS)
        left = Signal(DMA_COUNT_BITS)           # words left in the current row
        rows_left = Signal(DMA_COUNT_BITS)      # rows after the current one

        # Words from ``addr`` to the next 4 KiB boundary, kept in a register beside ``addr`` so
        # the burst length (the splitter's loop, one burst a cycle) starts from registers.
        to_page = Signal(range(page_words + 1))
        near_page = Signal()                     # the page ends within max_burst words
        cap = Signal(range(self.max_burst + 1))  # longest burst at addr
        row_end = Signal()                       # the burst ends the row: its length is left
        m.d.comb += [
            near_page.eq(to_page <= self.max_burst),
            cap.eq(Mux(near_page, to_page, self.max_burst)),
            row_end.eq(left <= cap),
        ]
        blen_m1 = Mux(row_end, left - 1, cap - 1)  # burst length - 1 (AXI's LEN)
        cmd_end = row_end & (rows_left == 0)
        room = Mux(cur_write, aw_q.w_rdy & w_track.w_rdy & b_track.w_rdy,
                   ar_q.w_rdy & r_track.w_rdy)
        push = Signal()
        m.d.comb += push.eq(active & room)

        burst = Signal(burst_layout)
        m.d.comb += [burst.addr.eq(addr), burst.len.eq(blen_m1)]
        r_track_in = data.View(track_layout, r_track.w_data)
        m.d.comb += [
            ar_q.w_data.eq(burst), aw_q.w_data.eq(burst),
            ar_q.w_en.eq(push & ~cur_write), aw_q.w_en.eq(push & cur_write),
            r_track_in.len.eq(blen_m1), r_track_in.last.eq(cmd_end),
            r_track.w_en.eq(push & ~cur_write),
            w_track.w_data.eq(blen_m1), w_track.w_en.eq(push & cur_write),
            b_track.w_data.eq(cmd_end), b_track.w_en.eq(push & cur_write),
        ]
        with m.If(push):
            with m.If(row_end):
                next_row = row_addr + stride
                m.d.sync += [
                    row_addr.eq(next_row),
                    addr.eq(next_row),
                    to_page.eq(page_words - next_row[shift:12]),
                    left.eq(row_words),
                    rows_left.eq(rows_left - 1),
                ]
                with m.If(rows_left == 0):
                    m.d.sync += active.eq(0)
            with m.Else():                  # a burst of cap words: to the page end, or max_burst
                m.d.sync += [addr.eq(addr + (cap << shift)), left.eq(left - cap),
                             to_page.eq(Mux(near_page, page_words, to_page - self.max_burst))]

        # Command start / reject ----------------------------------------------------------------------
        bad = (cmd.addr[:shift] != 0) | (cmd.stride[:shift] != 0) | (cmd.rows == 0) | \
            (cmd.row_words == 0)
        splitter_free = ~active | (push & cmd_end)
        can_start = splitter_free & (inflight < inflight_max) & \
            ((inflight == 0) | (cmd.write == cur_write))
        can_reject = (inflight == 0) & done_q.w_rdy
        start = pend_valid & ~bad & can_start
        reject = pend_valid & bad & can_reject
        m.d.comb += take.eq(start | reject)
        with m.If(start):   # after the splitter's own updates: a new command wins
            m.d.sync += [
                active.eq(1),
                cur_write.eq(cmd.write),
                addr.eq(cmd.addr),
                to_page.eq(page_words - cmd.addr[shift:12]),
                row_addr.eq(cmd.addr),
                stride.eq(cmd.stride),
                row_words.eq(cmd.row_words),
                left.eq(cmd.row_words),
                rows_left.eq(cmd.rows - 1),
            ]
        m.d.sync += inflight.eq(inflight + start - (done_r | done_w))
        m.d.comb += self.busy.eq(pend_valid | active | (inflight != 0))

        # AR / AW channels: straight from the address queues -----------------------------------------
        ar_head = data.View(burst_layout, ar_q.r_data)
        aw_head = data.View(burst_layout, aw_q.r_data)
        m.d.comb += [
            axi.arvalid.eq(ar_q.r_rdy), axi.araddr.eq(ar_head.addr), axi.arlen.eq(ar_head.len),
            axi.arsize.eq(shift), axi.arburst.eq(AXI_BURST_INCR), axi.arid.eq(0),
            ar_q.r_en.eq(axi.arready),
            axi.awvalid.eq(aw_q.r_rdy), axi.awaddr.eq(aw_head.addr), axi.awlen.eq(aw_head.len),
            axi.awsize.eq(shift), axi.awburst.eq(AXI_BURST_INCR), axi.awid.eq(0),
            aw_q.r_en.eq(axi.awready),
        ]

        # R channel -> r_buf: count beats against the issued burst lengths -----------------------------
        r_head = data.View(track_layout, r_track.r_data)
        r_beat = Signal(8)
        r_burst_end = r_beat == r_head.len
        r_hs = axi.rvalid & axi.rready
        r_bad = axi.rresp[1] | (axi.rlast != r_burst_end)
        r_in = data.View(rbuf_layout, r_buf.w_data)
        m.d.comb += [
            axi.rready.eq(r_buf.w_rdy & r_track.r_rdy),
            r_in.data.eq(axi.rdata),
            r_in.last.eq(r_head.last & r_burst_end),
            r_in.err.eq(r_bad),
            r_buf.w_en.eq(r_hs),
            r_track.r_en.eq(r_hs & r_burst_end),
        ]
        with m.If(r_hs):
            m.d.sync += r_beat.eq(Mux(r_burst_end, 0, r_beat + 1))

        # r_buf -> o_rdata; the last word of a command waits for room in done_q ------------------------
        # (done_q only fills from this path during reads, so a valid word is never withdrawn.)
        r_out = data.View(rbuf_layout, r_buf.r_data)
        r_err = Signal()   # error seen earlier in the current read command
        m.d.comb += [
            self.o_rdata.valid.eq(r_buf.r_rdy & ~(r_out.last & ~done_q.w_rdy)),
            self.o_rdata.payload.data.eq(r_out.data),
            self.o_rdata.payload.last.eq(r_out.last),
        ]
        rd_hs = self.o_rdata.valid & self.o_rdata.ready
        m.d.comb += [
            r_buf.r_en.eq(rd_hs),
            done_r.eq(rd_hs & r_out.last),
            done_r_err.eq(r_err | r_out.err),
        ]
        with m.If(rd_hs):
            m.d.sync += r_err.eq(Mux(r_out.last, 0, r_err | r_out.err))

        # i_wdata -> w_buf -> W channel, wlast from the issued burst lengths ------------------------------
        w_beat = Signal(8)
        w_burst_end = w_beat == w_track.r_data
        m.d.comb += [
            w_buf.w_data.eq(self.i_wdata.payload),
            w_buf.w_en.eq(self.i_wdata.valid),
            self.i_wdata.ready.eq(w_buf.w_rdy),
            axi.wvalid.eq(w_buf.r_rdy & w_track.r_rdy),
            axi.wdata.eq(w_buf.r_data),
            axi.wstrb.eq(-1),
            axi.wlast.eq(w_burst_end),
        ]
        w_hs = axi.wvalid & axi.wready
        m.d.comb += [w_buf.r_en.eq(w_hs), w_track.r_en.eq(w_hs & w_burst_end)]
        with m.If(w_hs):
            m.d.sync += w_beat.eq(Mux(w_burst_end, 0, w_beat + 1))

        # B channel: the response of a command's last burst waits for room in done_q -------------------
        b_last = b_track.r_data[0]
        w_err = Signal()   # error seen earlier in the current write command
        m.d.comb += axi.bready.eq(b_track.r_rdy & ~(b_last & ~done_q.w_rdy))
        b_hs = axi.bvalid & axi.bready
        m.d.comb += [
            b_track.r_en.eq(b_hs),
            done_w.eq(b_hs & b_last),
            done_w_err.eq(w_err | axi.bresp[1]),
        ]
        with m.If(b_hs):
            m.d.sync += w_err.eq(Mux(b_last, 0, w_err | axi.bresp[1]))

        # Done tokens: at most one source per cycle (directions never overlap, rejects wait for idle).
        done_in = data.View(done_layout, done_q.w_data)
        with m.If(reject):
            m.d.comb += [done_in.write.eq(cmd.write), done_in.error.eq(1)]
        with m.Elif(done_w):
            m.d.comb += [done_in.write.eq(1), done_in.error.eq(done_w_err)]
        with m.Else():
            m.d.comb += [done_in.write.eq(0), done_in.error.eq(done_r_err)]
        m.d.comb += [
            done_q.w_en.eq(reject | done_w | done_r),
            self.o_done.valid.eq(done_q.r_rdy),
            self.o_done.payload.eq(done_q.r_data),
            done_q.r_en.eq(self.o_done.ready),
        ]

        # Status -----------------------------------------------------------------------------------------
        with m.If(self.clear_error):
            m.d.sync += self.error.eq(0)
        with m.If((r_hs & r_bad) | (b_hs & axi.bresp[1]) | reject):
            m.d.sync += self.error.eq(1)
        for counter, beat in ((self.bytes_read, r_hs), (self.bytes_written, w_hs)):
            base = Mux(self.clear_counters, 0, counter)
            m.d.sync += counter.eq(base + Mux(beat, nbytes, 0))
        return m
