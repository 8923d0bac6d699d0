"""System-level check of the CSR bank on its generated Verilog, driven by cocotbext-axi's AxiLiteMaster."""

import pytest
from amaranth.hdl import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from gen.verilog import to_verilog
from rtl.axi import axi4lite_signature
from rtl.csr import CsrBank, Reg
from sim_tb.runner import SIMULATORS, run_cocotb
from tests.cocotb_util import BUILD

ADDR_BITS = 12
CHIP_ID = 0xC5A0_0001
#: The cycle counter starts just below a 32-bit boundary so LO carries over during the bench.
CYCLES_INIT = (1 << 32) - 600

SAMPLE_REGS = [
    Reg("id", "ro", doc="chip ID"),
    Reg("ctrl", "rw", reset=0x0000_0001, doc="control"),
    Reg("scale", "rw", width=12, reset=0x100, doc="scale factor"),
    Reg("scratch", "rw", doc="scratch"),
    Reg("start", "pulse", width=1, doc="write to start"),
    Reg("cmd", "pulse", width=16, doc="command word"),
    Reg("start_count", "ro", width=16, doc="start pulses seen"),
    Reg("cmd_sum", "ro", doc="sum of command words"),
    Reg("cycles", "counter", doc="free-running cycle counter"),
]


class CsrTop(wiring.Component):
    """The sample bank with its inputs tied: a constant ID, a free-running 64-bit cycle counter
    (from CYCLES_INIT), and counters of the ``start`` pulses and of the ``cmd`` data; the rw values
    and the cycle counter are also outputs so the bench can compare them."""

    def __init__(self):
        self.bank = CsrBank(SAMPLE_REGS, addr_bits=ADDR_BITS)
        super().__init__({
            "s_axil": In(axi4lite_signature(ADDR_BITS, 32)),
            "ctrl": Out(32), "scale": Out(12), "scratch": Out(32), "cycles": Out(64),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.bank = bank = self.bank
        wiring.connect(m, wiring.flipped(self.s_axil), bank.s_axil)
        cycles = Signal(64, init=CYCLES_INIT)
        start_count = Signal(16)
        cmd_sum = Signal(32)
        m.d.sync += cycles.eq(cycles + 1)
        with m.If(bank.start_stb):
            m.d.sync += start_count.eq(start_count + 1)
        with m.If(bank.cmd_stb):
            m.d.sync += cmd_sum.eq(cmd_sum + bank.cmd)
        m.d.comb += [
            bank.id.eq(CHIP_ID), bank.cycles.eq(cycles), bank.start_count.eq(start_count),
            bank.cmd_sum.eq(cmd_sum),
            self.ctrl.eq(bank.ctrl), self.scale.eq(bank.scale), self.scratch.eq(bank.scratch),
            self.cycles.eq(cycles),
        ]
        return m


@pytest.mark.parametrize("sim", SIMULATORS)
def test_csr_verilog(sim):
    top = CsrTop()
    out = BUILD / f"csr-{sim}"
    out.mkdir(parents=True, exist_ok=True)
    vpath = out / "csr_top.v"
    vpath.write_text(to_verilog(top, "csr_top"))
    params = {
        "seed": 3, "pause": 0.3, "chip_id": CHIP_ID, "cycles_init": CYCLES_INIT,
        "layout": [list(row) for row in top.bank.layout()],
        "regs": {r.name: {"kind": r.kind, "width": r.width, "reset": r.reset} for r in SAMPLE_REGS},
    }
    run_cocotb(vpath, "csr_top", "sim_tb.tb_csr", sim, out / "sim", params=params)
