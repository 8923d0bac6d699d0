"""Host bridge of the board SoC: byte commands from the UART into memory and CSR accesses."""

from amaranth.hdl import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .axi import AXI_RESP_OKAY, axi4lite_signature
from .axiram import host_port_layout

__all__ = ["HostBridge", "OPS", "REPLY_ERROR"]

#: Command opcodes (first byte of a command); the protocol is in :class:`HostBridge`.
OPS = {"write_mem": 0x01, "read_mem": 0x02, "write_csr": 0x03, "read_csr": 0x04, "ping": 0x05}
#: Reply to an unknown opcode, or to a CSR write the accelerator answered with an error.
REPLY_ERROR = 0xEE


class HostBridge(wiring.Component):
    """Executes host commands arriving as bytes on ``i_rx``; replies go out on ``o_tx``.

    Multi-byte fields are little-endian; memory addresses count bus words (``data_bits`` wide,
    sent as ``data_bits / 8`` bytes, least significant first):

    ============  ====================================  ==========================================
    command       bytes after the opcode                reply
    ============  ====================================  ==========================================
    0x01 write    ``addr`` u32, ``count`` u16, then     0x01 after the last word is written
    memory        ``count`` words
    0x02 read     ``addr`` u32, ``count`` u16           ``count`` words
    memory
    0x03 write    ``addr`` u16 (byte address), ``value``  0x03, or 0xEE if the CSR answered
    CSR           u32                                   with an error
    0x04 read     ``addr`` u16                          ``value`` u32 (0 on an error response)
    CSR
    0x05 ping     —                                     0x05
    other         —                                     0xEE (the byte is dropped)
    ============  ====================================  ==========================================

    Memory words beyond ``words`` are not written and read as 0. During a memory command the
    bridge holds ``host_hold`` (the accelerator's DMA starts no new burst) and accesses one word
    per ``host_ready`` cycle; CSR commands are AXI4-Lite transactions on ``m_axil``. A command
    is executed while its bytes arrive, so the host may stream a whole write without waiting;
    the reply tells it the command is done. There is no timeout: a host that stops mid-command
    leaves the bridge waiting for the remaining bytes (the host resynchronises by sending pings
    until it reads 0x05 after an idle gap longer than its longest command).
    """

    def __init__(self, words, data_bits=64, csr_addr_bits=12):
        if data_bits % 8 or not 8 <= data_bits <= 256:
            raise ValueError(f"data_bits: must be a multiple of 8 in 8..256 (got {data_bits!r})")
        self.words = words
        self.data_bits = data_bits
        self.csr_addr_bits = csr_addr_bits
        super().__init__({
            "i_rx": In(stream.Signature(8)),
            "o_tx": Out(stream.Signature(8)),
            "m_axil": Out(axi4lite_signature(csr_addr_bits, 32)),
            "host_hold": Out(1),
            "host_ready": In(1),
            "host_en": Out(1),
            "host_req": Out(host_port_layout(words, data_bits)),
            "host_rdata": In(data_bits),
        })

    def elaborate(self, platform):
        m = Module()
        nb = self.data_bits // 8
        rx, tx, axil = self.i_rx, self.o_tx, self.m_axil

        op = Signal(8)
        args = Signal(48)                          # the fields after the opcode, little-endian
        nargs = Signal(range(7))
        idx = Signal(range(max(nb, 6) + 1))        # byte index within args / a word / a reply
        word = Signal(self.data_bits)
        addr = Signal(32)
        count = Signal(16)
        out = Signal(max(self.data_bits, 32))      # reply bytes, least significant first
        out_len = Signal(range(max(nb, 4) + 1))
        aw_done, w_done = Signal(), Signal()
        m.d.comb += [self.host_req.addr.eq(addr), self.host_req.data.eq(word)]
        m.d.comb += [axil.awaddr.eq(args[:16]), axil.araddr.eq(args[:16]),
                     axil.wdata.eq(args[16:48]), axil.wstrb.eq(0b1111)]
        inside = addr < self.words

        def reply(value, length):
            m.d.sync += [out.eq(value), out_len.eq(length), idx.eq(0)]
            m.next = "SEND"

        with m.FSM(name="fsm"):
            with m.State("IDLE"):
                m.d.comb += rx.ready.eq(1)
                with m.If(rx.valid):
                    m.d.sync += [op.eq(rx.payload), idx.eq(0), args.eq(0)]
                    with m.Switch(rx.payload):
                        with m.Case(OPS["write_mem"], OPS["read_mem"], OPS["write_csr"]):
                            m.d.sync += nargs.eq(6)
                            m.next = "ARGS"
                        with m.Case(OPS["read_csr"]):
                            m.d.sync += nargs.eq(2)
                            m.next = "ARGS"
                        with m.Case(OPS["ping"]):
                            reply(OPS["ping"], 1)
                        with m.Default():
                            reply(REPLY_ERROR, 1)
            with m.State("ARGS"):
                m.d.comb += rx.ready.eq(1)
                with m.If(rx.valid):
                    m.d.sync += [args.word_select(idx[:3], 8).eq(rx.payload), idx.eq(idx + 1)]
                    with m.If(idx + 1 == nargs):
                        m.d.sync += [addr.eq(args[:32]),
                                     count.eq(Cat(args[32:40], rx.payload)), idx.eq(0),
                                     aw_done.eq(0), w_done.eq(0)]
                        with m.Switch(op):
                            with m.Case(OPS["write_mem"]):
                                m.next = "W_BYTES"
                            with m.Case(OPS["read_mem"]):
                                m.next = "R_WORD"
                            with m.Case(OPS["write_csr"]):
                                m.next = "CSR_W"
                            with m.Default():
                                m.next = "CSR_R"
            # ---- memory writes: collect a word, write it, next --------------------------------
            with m.State("W_BYTES"):
                m.d.comb += self.host_hold.eq(1)
                with m.If(count == 0):
                    reply(OPS["write_mem"], 1)
                with m.Else():
                    m.d.comb += rx.ready.eq(1)
                    with m.If(rx.valid):
                        m.d.sync += [word.word_select(idx, 8).eq(rx.payload), idx.eq(idx + 1)]
                        with m.If(idx + 1 == nb):
                            m.next = "W_WORD"
            with m.State("W_WORD"):
                m.d.comb += [self.host_hold.eq(1), self.host_req.write.eq(1)]
                with m.If(self.host_ready):
                    m.d.comb += self.host_en.eq(inside)
                    m.d.sync += [addr.eq(addr + 1), count.eq(count - 1), idx.eq(0)]
                    m.next = "W_BYTES"
            # ---- memory reads: read a word, send its bytes, next ------------------------------
            with m.State("R_WORD"):
                m.d.comb += self.host_hold.eq(1)
                with m.If(count == 0):
                    m.next = "IDLE"
                with m.Elif(self.host_ready):
                    m.d.comb += self.host_en.eq(1)
                    m.next = "R_DATA"
            with m.State("R_DATA"):                 # the word read last cycle
                m.d.comb += self.host_hold.eq(1)
                m.d.sync += [out.eq(Mux(inside, self.host_rdata, 0)), out_len.eq(nb), idx.eq(0),
                             addr.eq(addr + 1), count.eq(count - 1)]
                m.next = "R_SEND"
            with m.State("R_SEND"):
                m.d.comb += [self.host_hold.eq(1), tx.valid.eq(1),
                             tx.payload.eq(out.word_select(idx, 8))]
                with m.If(tx.ready):
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(idx + 1 == out_len):
                        m.next = "R_WORD"
            # ---- CSR accesses ------------------------------------------------------------------
            with m.State("CSR_W"):
                m.d.comb += [axil.awvalid.eq(~aw_done), axil.wvalid.eq(~w_done)]
                aw = aw_done | axil.awready
                w = w_done | axil.wready
                m.d.sync += [aw_done.eq(aw), w_done.eq(w)]
                with m.If(aw & w):
                    m.next = "CSR_B"
            with m.State("CSR_B"):
                m.d.comb += axil.bready.eq(1)
                with m.If(axil.bvalid):
                    reply(Mux(axil.bresp == AXI_RESP_OKAY, OPS["write_csr"], REPLY_ERROR), 1)
            with m.State("CSR_R"):
                m.d.comb += axil.arvalid.eq(1)
                with m.If(axil.arready):
                    m.next = "CSR_RD"
            with m.State("CSR_RD"):
                m.d.comb += axil.rready.eq(1)
                with m.If(axil.rvalid):
                    reply(Mux(axil.rresp == AXI_RESP_OKAY, axil.rdata, 0), 4)
            # ---- replies -----------------------------------------------------------------------
            with m.State("SEND"):
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(out.word_select(idx, 8))]
                with m.If(tx.ready):
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(idx + 1 == out_len):
                        m.next = "IDLE"
        return m
