"""The accelerator top: AXI4-Lite CSRs, controller, DMA (AXI4 master) and the on-chip core."""

from amaranth.hdl import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .axi import axi4_signature, axi4lite_signature
from .control import PHASES, Controller
from .core import Core
from .csr import CsrBank, Reg, reg_offsets
from .dram import Dma
from .pe import ProcessingElement

__all__ = ["Accelerator", "CHIP_ID", "CSR_ADDR_BITS", "csr_regs", "csr_map", "config_words", "COUNTERS",
           "STATUS_BITS"]

#: Value of the ``id`` register ("RSA" and the register-map version).
CHIP_ID = 0x5253_4101
#: Width of the CSR bus address.
CSR_ADDR_BITS = 12
#: Bits of the ``status`` register.
STATUS_BITS = {"busy": 0, "done": 1, "error": 2}
#: Performance counters, all cleared by ``start``: name -> description.
COUNTERS = {
    "cycles": "clock cycles from start to done",
    "mac_cycles": "cycles in which at least one PE had an active MAC",
    "pe_active": "sum over PEs of their active MAC cycles",
    "dram_rd": "bytes read from DRAM (program fetch included)",
    "dram_wr": "bytes written to DRAM",
    "glb_rd": "global buffer word reads",
    "glb_wr": "global buffer word writes",
    "spad_rd": "scratchpad reads (filter, ifmap and psum spads, all PEs)",
    "spad_wr": "scratchpad writes (filter, ifmap and psum spads, all PEs)",
    "t_program": "cycles fetching/decoding instructions and pushing WRITE values",
    "t_load": "cycles in LOAD instructions",
    "t_pass": "cycles in PASS instructions",
    "t_store": "cycles in STORE instructions",
    "t_sync": "cycles in SYNC/END (waiting for the core to drain)",
}


def config_words(cfg):
    """Values of the read-only configuration registers for ``cfg`` (what the host checks)."""
    return {
        "cfg_array": cfg.rows | cfg.cols << 8 | cfg.lanes << 16 |
                     (cfg.mac == "parallel") << 24 | cfg.dynamic_precision << 25 |
                     cfg.pack_group.bit_length() << 26,
        "cfg_bits": cfg.act_bits | cfg.weight_bits << 8 | cfg.psum_bits << 16 |
                    (cfg.dram_data_bits // 8) << 24,
        "cfg_spads": cfg.filter_spad | cfg.ifmap_spad << 16,
        "cfg_psum_spad": cfg.psum_spad | cfg.dram_addr_bits << 16,
        "cfg_glb": cfg.glb_bytes | (cfg.glb_banks.bit_length() - 1) << 24,
    }


def csr_regs(cfg):
    """The register list of the top's CSR bank (its map is ``CsrBank(csr_regs(cfg)).layout()``)."""
    regs = [Reg("id", "ro", doc=f"chip ID {CHIP_ID:#010x}")]
    regs += [Reg(name, "ro", doc="configuration (see docs)") for name in config_words(cfg)]
    regs += [
        Reg("ctrl", "pulse", width=1, doc="write 1 to start the program (ignored while busy)"),
        Reg("status", "ro", width=3, doc="bit 0 busy, bit 1 done, bit 2 error (cleared by start)"),
        Reg("error_code", "ro", width=8, doc="why the last run stopped (rtl.control.ERRORS)"),
        Reg("error_pc", "ro", doc="byte address (low word) of the instruction that failed"),
        Reg("prog_lo", "rw", doc="program byte address, bits 31..0"),
        Reg("prog_hi", "rw", doc="program byte address, bits 63..32"),
        Reg("timeout", "rw", doc="watchdog: cycles one instruction may wait (0: off)"),
    ]
    regs += [Reg(name, "counter", doc=doc) for name, doc in COUNTERS.items()]
    return regs


def csr_map(cfg):
    """Byte offset of every CSR of the top for ``cfg``, by name (counters: LO word; HI at +4)."""
    return reg_offsets(csr_regs(cfg))


class Accelerator(wiring.Component):
    """The complete accelerator for ``cfg``.

    The host writes a program and its tensors into DRAM (``gen/program.py``), sets
    ``prog_lo``/``prog_hi`` (and optionally ``timeout``), writes 1 to ``ctrl`` and polls ``status``
    until ``done``; ``error`` with ``error_code``/``error_pc`` tell why a run stopped early. The
    counters (:data:`COUNTERS`) restart at every start. ``irq`` is high while ``status.done``.

    ``make_pe`` builds each PE (a black box in the generated Verilog, see gen/verilog.py).
    ``max_burst`` / ``max_outstanding`` are the DMA's (:class:`rtl.dram.Dma`).

    Members
    -------
    s_axil : In(axi4lite_signature(CSR_ADDR_BITS, 32))
    m_axi : Out(axi4_signature(dram_addr_bits, dram_data_bits))
    irq : Out(1)
    """

    def __init__(self, cfg, make_pe=ProcessingElement, max_burst=16, max_outstanding=4):
        self.cfg = cfg
        self._make_pe = make_pe
        self._dma_params = {"max_burst": max_burst, "max_outstanding": max_outstanding}
        self.csr = CsrBank(csr_regs(cfg), addr_bits=CSR_ADDR_BITS)
        super().__init__({
            "s_axil": In(axi4lite_signature(CSR_ADDR_BITS, 32)),
            "m_axi": Out(axi4_signature(cfg.dram_addr_bits, cfg.dram_data_bits)),
            "irq": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        m.submodules.csr = csr = self.csr
        m.submodules.dma = dma = Dma(cfg, **self._dma_params)
        m.submodules.core = core = Core(cfg, make_pe=self._make_pe)
        m.submodules.controller = ctrl = Controller(cfg)

        wiring.connect(m, wiring.flipped(self.s_axil), csr.s_axil)
        wiring.connect(m, dma.m_axi, wiring.flipped(self.m_axi))
        wiring.connect(m, ctrl.dma_cmd, dma.i_cmd)
        wiring.connect(m, dma.o_rdata, ctrl.dma_rdata)
        wiring.connect(m, dma.o_done, ctrl.dma_done)
        wiring.connect(m, core.o_wdata, dma.i_wdata)
        wiring.connect(m, ctrl.o_load, core.i_load)
        wiring.connect(m, ctrl.sender_table, core.i_sender_table)
        wiring.connect(m, ctrl.roles, core.i_roles)
        wiring.connect(m, ctrl.writer_table, core.i_writer_table)

        start = Signal()
        m.d.comb += [
            start.eq(csr.ctrl_stb & csr.ctrl[0] & ~ctrl.busy),
            ctrl.start.eq(start),
            ctrl.prog_addr.eq(Cat(csr.prog_lo, csr.prog_hi)),
            ctrl.timeout.eq(csr.timeout),
            core.sender_job.eq(ctrl.sender_job), core.pass_cfg.eq(ctrl.pass_cfg),
            core.writer_job.eq(ctrl.writer_job), core.store_job.eq(ctrl.store_job),
            core.start_pass.eq(ctrl.start_pass), core.start_store.eq(ctrl.start_store),
            ctrl.pass_done.eq(core.pass_done), ctrl.pass_error.eq(core.pass_error),
            ctrl.store_done.eq(core.store_done), ctrl.store_error.eq(core.store_error),
            ctrl.core_busy.eq(core.busy), ctrl.glb_error.eq(core.glb_error),
            ctrl.store_word.eq(core.o_wdata.valid & core.o_wdata.ready),
            core.clear_glb_error.eq(start),
            dma.clear_error.eq(start), dma.clear_counters.eq(start),
        ]

        done = Signal()
        with m.If(start):
            m.d.sync += done.eq(0)
        with m.Elif(ctrl.done):
            m.d.sync += done.eq(1)
        m.d.comb += [
            csr.id.eq(CHIP_ID),
            csr.status.eq(Cat(ctrl.busy, done, ctrl.error)),
            csr.error_code.eq(ctrl.error_code),
            csr.error_pc.eq(ctrl.ipc[:32]),
            self.irq.eq(done),
        ]
        for name, value in config_words(cfg).items():
            m.d.comb += getattr(csr, name).eq(value)

        # performance counters: cleared by start, counting while the controller runs
        counters = {name: Signal(64, name=f"count_{name}") for name in COUNTERS}
        stats, glb = core.array_stats, core.glb_stats
        events = {f"t_{name}": ctrl.phase == code for code, name in enumerate(PHASES) if code}
        events["cycles"] = C(1)
        # the core's events are registered before they are added (the PE stats arrive a cycle
        # late already), so the core's handshake logic does not run on into the adder tree and
        # the 64-bit counters; the last of a run land two cycles late, while the controller
        # still waits for the core to drain
        for name, event in {"mac_cycles": stats.mac_active != 0, "pe_active": stats.mac_active,
                            "glb_rd": glb.reads, "glb_wr": glb.writes,
                            "spad_rd": stats.spad_reads, "spad_wr": stats.spad_writes}.items():
            events[name] = Signal.like(event, name=f"event_{name}")
            m.d.sync += events[name].eq(event)
        for name, event in events.items():
            with m.If(start):
                m.d.sync += counters[name].eq(0)
            with m.Elif(ctrl.busy):
                m.d.sync += counters[name].eq(counters[name] + event)
        m.d.comb += [counters["dram_rd"].eq(dma.bytes_read),
                     counters["dram_wr"].eq(dma.bytes_written)]
        for name, counter in counters.items():
            m.d.comb += getattr(csr, name).eq(counter)
        return m
