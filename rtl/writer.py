"""Psum writer: places the PE array's output psums into the global buffer's psum tile."""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .sender import SENDER_ADDR_BITS

__all__ = ["PsumWriter", "writer_job_layout", "writer_table_layout", "psum_write_layout"]


def writer_job_layout(cfg):
    """Shape of one pass's output (sampled at ``start``); see :class:`PsumWriter`."""
    return data.StructLayout({
        "tops": range(cfg.pes + 1),                  # top PEs emitting psums
        "filters": range(cfg.psum_spad * cfg.lanes + 1),   # psums per top per column (p)
        "cols": unsigned(cfg.dim_bits),              # output columns (F)
        "col_stride": unsigned(SENDER_ADDR_BITS),    # elements between neighbouring columns
    })


def writer_table_layout(cfg):
    """Placement of top PE number ``index`` (in collector order): first element and mode."""
    return data.StructLayout({
        "index": range(cfg.pes),
        "base": unsigned(SENDER_ADDR_BITS),
        "accumulate": 1,                              # add to the element instead of writing it
    })


def psum_write_layout(cfg):
    """One element write into the GLB psum tile."""
    return data.StructLayout({
        "addr": unsigned(SENDER_ADDR_BITS),
        "data": signed(cfg.psum_bits),
        "accumulate": 1,
    })


class PsumWriter(wiring.Component):
    """Turns the array's psum stream into addressed GLB element writes.

    The array emits, for each output column ``f``, for each top PE ``k`` (collector order), the
    pass's ``filters`` psums. Before the pass, ``i_table`` gives every top ``k`` its ``base``
    element address (output row ``e``, first filter ``m0`` of its block) and whether its psums
    ``accumulate`` onto what the tile holds (later channel groups, folded segments) or overwrite
    it (first contribution). Psum ``p`` of top ``k`` in column ``f`` goes to element
    ``base[k] + f * col_stride + p``: the tile is stored output-position-major, filter-minor
    (``col_stride`` = filters in the tile).

    One psum per cycle passes through (``i_psum`` -> ``o_write``, one register stage); the table
    entry of the next top is read while the current one is written, so top changes cost no
    cycle after the first. ``done`` pulses the cycle after the pass's last write (the one with
    the array's ``last`` flag) has been taken; ``busy`` is high from ``start`` to ``done``.
    A ``last`` flag that does not fall on the expected final psum sets ``error`` (sticky until the
    next ``start``) — the array and the writer disagree about the pass.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "i_table": In(stream.Signature(writer_table_layout(cfg))),
            "job": In(writer_job_layout(cfg)),
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(1),
            "i_psum": In(stream.Signature(data.StructLayout({"data": signed(cfg.psum_bits),
                                                             "last": 1}))),
            "o_write": Out(stream.Signature(psum_write_layout(cfg))),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        m.submodules.table = table = Memory(shape=writer_table_layout(cfg), depth=cfg.pes,
                                            init=[])
        idle = Signal()
        wp = table.write_port()
        m.d.comb += [wp.en.eq(self.i_table.valid & idle), wp.addr.eq(self.i_table.payload.index),
                     wp.data.eq(self.i_table.payload), self.i_table.ready.eq(idle)]
        rp = table.read_port(transparent_for=())

        job = Signal(writer_job_layout(cfg))
        k = Signal(range(cfg.pes + 1))                # current top
        p = Signal.like(job.filters)
        col_off = Signal(SENDER_ADDR_BITS)            # f * col_stride
        entry = Signal(writer_table_layout(cfg))      # table entry of top k
        err = Signal()
        m.d.comb += self.error.eq(err)

        out = self.o_write
        with m.If(out.ready):
            m.d.sync += out.valid.eq(0)
        can_load = ~out.valid | out.ready

        f = Signal(cfg.dim_bits)
        k_next = Mux(k + 1 == job.tops, 0, k + 1)
        k_after = Mux(k_next + 1 == job.tops, 0, k_next + 1)
        advance = Signal()                            # this cycle moves on to top k_next
        # prefetch: the table always presents the entry of the top after the current one
        m.d.comb += rp.addr.eq(Mux(advance, k_after, k_next))

        with m.FSM(name="fsm"):
            with m.State("IDLE"):
                m.d.comb += [idle.eq(1), rp.addr.eq(0)]
                with m.If(self.start):
                    m.d.sync += [job.eq(self.job), k.eq(0), p.eq(0), f.eq(0), col_off.eq(0),
                                 err.eq(0)]
                    m.next = "FIRST"
            with m.State("FIRST"):                    # entry 0 was read in the start cycle
                m.d.sync += entry.eq(rp.data)
                with m.If((job.tops == 0) | (job.filters == 0) | (job.cols == 0)):
                    m.next = "FLUSH"
                with m.Else():
                    m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += self.i_psum.ready.eq(can_load)
                last_p = p + 1 == job.filters
                last_k = k + 1 == job.tops
                with m.If(self.i_psum.valid & can_load):
                    m.d.comb += advance.eq(last_p)
                    m.d.sync += [
                        out.valid.eq(1),
                        out.payload.addr.eq(entry.base + col_off + p),
                        out.payload.data.eq(self.i_psum.payload.data),
                        out.payload.accumulate.eq(entry.accumulate),
                    ]
                    with m.If(~last_p):
                        m.d.sync += p.eq(p + 1)
                    with m.Else():
                        m.d.sync += [p.eq(0), k.eq(k_next), entry.eq(rp.data)]
                        with m.If(last_k):
                            m.d.sync += [col_off.eq(col_off + job.col_stride), f.eq(f + 1)]
                    # the pass's final psum: last filter of the last top in the last column
                    is_final = Signal()
                    m.d.comb += is_final.eq(last_p & last_k & (f + 1 == job.cols))
                    with m.If(self.i_psum.payload.last != is_final):
                        m.d.sync += err.eq(1)
                    with m.If(is_final | self.i_psum.payload.last):
                        m.next = "FLUSH"
            with m.State("FLUSH"):
                with m.If(~out.valid):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
        m.d.comb += self.busy.eq(~idle)
        return m
