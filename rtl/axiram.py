"""On-chip memory with an AXI4 slave port: stands in for DRAM on FPGA boards."""

from amaranth.hdl import *
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .axi import AXI_RESP_OKAY, AXI_RESP_SLVERR, axi4_signature

__all__ = ["AxiRam", "host_port_layout"]


def host_port_layout(words, data_bits):
    """The host port's request: word address, write enable and data."""
    return data.StructLayout({"addr": range(words), "write": 1, "data": unsigned(data_bits)})


class AxiRam(wiring.Component):
    """``size_bytes`` of on-chip memory behind an AXI4 slave port ``s_axi``, plus a host port.

    AXI: INCR bursts of full-width beats (``axsize`` = the bus width; the address's low bits are
    ignored, ``axburst`` is taken as INCR), one read and one write burst at a time, reads and
    writes independent of each other; one beat per cycle each way without back-pressure
    (``arready``/``awready`` only while the channel is idle). ``wstrb`` selects the bytes
    written. A beat outside the memory reads 0 and is not written; its burst answers SLVERR
    (reads per beat, writes in the B response), so a DMA sees an error instead of aliasing.

    Host port (for the board's UART bridge): while ``host_hold`` is high no new AXI burst starts;
    once ``host_ready`` (both AXI channels idle), ``host_en`` with ``host_req`` reads (data on
    ``host_rdata`` in the next cycle) or writes (whole word) one word. The memory is a simple
    dual-port RAM (one read port, one write port), which maps to block RAM.
    """

    def __init__(self, size_bytes, addr_bits=32, data_bits=64):
        nb = data_bits // 8
        if not isinstance(size_bytes, int) or isinstance(size_bytes, bool) or \
                size_bytes < nb or size_bytes % nb:
            raise ValueError(f"size_bytes: must be a positive multiple of the bus width "
                             f"({nb} bytes) (got {size_bytes!r})")
        self.words = size_bytes // nb
        self.data_bits = data_bits
        self.addr_bits = addr_bits
        super().__init__({
            "s_axi": In(axi4_signature(addr_bits, data_bits)),
            "host_hold": In(1),
            "host_ready": Out(1),
            "host_en": In(1),
            "host_req": In(host_port_layout(self.words, data_bits)),
            "host_rdata": Out(data_bits),
        })

    def elaborate(self, platform):
        m = Module()
        nb = self.data_bits // 8
        shift = (nb - 1).bit_length()
        words = self.words
        m.submodules.mem = mem = Memory(shape=unsigned(self.data_bits), depth=words, init=[])
        rd = mem.read_port(transparent_for=())
        wr = mem.write_port(granularity=8)
        m.d.comb += rd.en.eq(0)                   # the read data holds unless a read is issued
        s = self.s_axi

        def word_of(byte_addr):
            return byte_addr[shift:]

        # ---- reads ---------------------------------------------------------------------------
        r_busy = Signal()
        r_addr = Signal(self.addr_bits - shift)
        r_left = Signal(9)                        # beats still to read from the memory
        r_id = Signal.like(s.arid)
        r_oob = Signal()                          # the beat on rdata is out of range
        advance = ~s.rvalid | s.rready
        m.d.comb += [s.arready.eq(~r_busy & ~self.host_hold), s.rid.eq(r_id),
                     s.rdata.eq(Mux(r_oob, 0, rd.data)),
                     s.rresp.eq(Mux(r_oob, AXI_RESP_SLVERR, AXI_RESP_OKAY))]
        with m.If(s.arvalid & s.arready):
            m.d.sync += [r_busy.eq(1), r_addr.eq(word_of(s.araddr)), r_left.eq(s.arlen + 1),
                         r_id.eq(s.arid)]
        with m.Elif(r_busy & advance):
            with m.If(r_left != 0):
                m.d.comb += [rd.addr.eq(r_addr), rd.en.eq(1)]
                m.d.sync += [s.rvalid.eq(1), s.rlast.eq(r_left == 1), r_oob.eq(r_addr >= words),
                             r_addr.eq(r_addr + 1), r_left.eq(r_left - 1)]
            with m.Else():
                m.d.sync += [s.rvalid.eq(0), s.rlast.eq(0), r_busy.eq(0)]

        # ---- writes --------------------------------------------------------------------------
        w_state = Signal(range(3))                # 0 idle, 1 data, 2 response
        w_addr = Signal(self.addr_bits - shift)
        w_err = Signal()
        w_id = Signal.like(s.awid)
        m.d.comb += [s.awready.eq((w_state == 0) & ~self.host_hold), s.wready.eq(w_state == 1),
                     s.bvalid.eq(w_state == 2), s.bid.eq(w_id),
                     s.bresp.eq(Mux(w_err, AXI_RESP_SLVERR, AXI_RESP_OKAY))]
        with m.If(s.awvalid & s.awready):
            m.d.sync += [w_state.eq(1), w_addr.eq(word_of(s.awaddr)), w_err.eq(0),
                         w_id.eq(s.awid)]
        with m.If(s.wvalid & s.wready):
            inside = w_addr < words
            m.d.comb += [wr.addr.eq(w_addr), wr.data.eq(s.wdata),
                         wr.en.eq(Mux(inside, s.wstrb, 0))]
            m.d.sync += [w_addr.eq(w_addr + 1), w_err.eq(w_err | ~inside)]
            with m.If(s.wlast):
                m.d.sync += w_state.eq(2)
        with m.If(s.bvalid & s.bready):
            m.d.sync += w_state.eq(0)

        # ---- host port -----------------------------------------------------------------------
        idle = ~r_busy & (w_state == 0)
        m.d.comb += [self.host_ready.eq(idle & self.host_hold), self.host_rdata.eq(rd.data)]
        with m.If(self.host_en & self.host_ready):
            with m.If(self.host_req.write):
                m.d.comb += [wr.addr.eq(self.host_req.addr), wr.data.eq(self.host_req.data),
                             wr.en.eq(-1)]
            with m.Else():
                m.d.comb += [rd.addr.eq(self.host_req.addr), rd.en.eq(1)]
        return m
