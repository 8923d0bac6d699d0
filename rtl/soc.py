"""Board SoC: the accelerator with on-chip RAM as its DRAM and a UART host link."""

from amaranth.hdl import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .axiram import AxiRam
from .hostlink import HostBridge
from .pe import ProcessingElement
from .top import CSR_ADDR_BITS, Accelerator
from .uart import UartRx, UartTx

__all__ = ["BoardSoc"]


class BoardSoc(wiring.Component):
    """:class:`rtl.top.Accelerator` for ``cfg`` with ``mem_bytes`` of on-chip RAM
    (:class:`rtl.axiram.AxiRam`) behind its AXI4 master and a UART host link: ``rx``/``tx`` at
    ``divisor`` clock cycles per bit into :class:`rtl.hostlink.HostBridge`, whose CSR accesses go
    to the accelerator and whose memory accesses to the RAM (the host loads the DRAM image,
    starts the program through the CSRs, polls ``status`` and reads the outputs back;
    ``gen/hostlink.py`` speaks the protocol). ``leds`` show busy, done and error.
    """

    def __init__(self, cfg, mem_bytes, divisor, make_pe=ProcessingElement):
        self.cfg = cfg
        self.mem_bytes = mem_bytes
        self.divisor = divisor
        self._make_pe = make_pe
        self.ram = AxiRam(mem_bytes, cfg.dram_addr_bits, cfg.dram_data_bits)
        self.uart_rx, self.uart_tx = UartRx(divisor), UartTx(divisor)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "leds": Out(3)})

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        m.submodules.acc = acc = Accelerator(cfg, make_pe=self._make_pe)
        m.submodules.ram = ram = self.ram
        m.submodules.bridge = br = HostBridge(ram.words, cfg.dram_data_bits, CSR_ADDR_BITS)
        m.submodules.uart_rx = urx = self.uart_rx
        m.submodules.uart_tx = utx = self.uart_tx
        wiring.connect(m, acc.m_axi, ram.s_axi)
        wiring.connect(m, br.m_axil, acc.s_axil)
        wiring.connect(m, urx.o_data, br.i_rx)
        wiring.connect(m, br.o_tx, utx.i_data)
        m.d.comb += [
            urx.rx.eq(self.rx), self.tx.eq(utx.tx),
            ram.host_hold.eq(br.host_hold), br.host_ready.eq(ram.host_ready),
            ram.host_en.eq(br.host_en), ram.host_req.eq(br.host_req),
            br.host_rdata.eq(ram.host_rdata),
        ]
        m.d.comb += self.leds.eq(acc.csr.status)
        return m
