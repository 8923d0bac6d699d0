"""Tests of rtl/axi.py: AXI4 / AXI4-Lite signatures, their members and their validation."""

import pytest
from amaranth.hdl import Fragment, Module, Shape
from amaranth.lib import wiring
from amaranth.lib.wiring import Flow, In, Out

from rtl.axi import (AXI_BURST_INCR, AXI_RESP_DECERR, AXI_RESP_EXOKAY, AXI_RESP_OKAY,
                     AXI_RESP_SLVERR, axi4_signature, axi4lite_signature)

# cocotbext-axi's AxiBus needs exactly these (plus optional ones we do not have).
AXI4_MASTER_OUT = {"awid", "awaddr", "awlen", "awsize", "awburst", "awvalid", "wdata", "wstrb",
                   "wlast", "wvalid", "bready", "arid", "araddr", "arlen", "arsize", "arburst",
                   "arvalid", "rready"}
AXI4_MASTER_IN = {"awready", "wready", "bid", "bresp", "bvalid", "arready", "rid", "rdata",
                  "rresp", "rlast", "rvalid"}


def widths(sig):
    return {name: (member.flow, Shape.cast(member.shape).width) for name, member in sig.members.items()}


def test_constants_match_the_spec():
    assert AXI_BURST_INCR == 1
    assert (AXI_RESP_OKAY, AXI_RESP_EXOKAY, AXI_RESP_SLVERR, AXI_RESP_DECERR) == (0, 1, 2, 3)


@pytest.mark.parametrize("addr_bits,data_bits,id_bits", [(32, 64, 1), (16, 32, 4), (64, 256, 2),
                                                          (40, 1024, 1), (1, 8, 1)])
def test_axi4_members_and_widths(addr_bits, data_bits, id_bits):
    w = widths(axi4_signature(addr_bits, data_bits, id_bits))
    assert {n for n, (flow, _) in w.items() if flow == Flow.Out} == AXI4_MASTER_OUT
    assert {n for n, (flow, _) in w.items() if flow == Flow.In} == AXI4_MASTER_IN
    for ch in ("aw", "ar"):
        assert w[f"{ch}addr"][1] == addr_bits
        assert (w[f"{ch}len"][1], w[f"{ch}size"][1], w[f"{ch}burst"][1]) == (8, 3, 2)
        assert w[f"{ch}id"][1] == id_bits
    assert w["bid"][1] == w["rid"][1] == id_bits
    assert w["wdata"][1] == w["rdata"][1] == data_bits
    assert w["wstrb"][1] == data_bits // 8
    assert w["bresp"][1] == w["rresp"][1] == 2


@pytest.mark.parametrize("data_bits", [32, 64])
def test_axi4lite_members_and_widths(data_bits):
    w = widths(axi4lite_signature(12, data_bits))
    assert {n for n, (flow, _) in w.items() if flow == Flow.Out} == {
        "awaddr", "awprot", "awvalid", "wdata", "wstrb", "wvalid", "bready", "araddr", "arprot",
        "arvalid", "rready"}
    assert {n for n, (flow, _) in w.items() if flow == Flow.In} == {
        "awready", "wready", "bresp", "bvalid", "arready", "rdata", "rresp", "rvalid"}
    assert w["awaddr"][1] == w["araddr"][1] == 12
    assert w["wdata"][1] == w["rdata"][1] == data_bits and w["wstrb"][1] == data_bits // 8
    assert w["awprot"][1] == w["arprot"][1] == 3


def test_master_connects_to_slave():
    """A master port (Out) connects to a slave port (In) of the same signature."""
    class Master(wiring.Component):
        m_axi: Out(axi4_signature(32, 64))

        def elaborate(self, platform):
            return Module()

    class Slave(wiring.Component):
        s_axi: In(axi4_signature(32, 64))

        def elaborate(self, platform):
            return Module()

    m = Module()
    m.submodules.master = master = Master()
    m.submodules.slave = slave = Slave()
    wiring.connect(m, master.m_axi, slave.s_axi)
    Fragment.get(m, None)
    assert axi4_signature(32, 64) == axi4_signature(32, 64)
    assert axi4_signature(32, 64) != axi4_signature(32, 32)


def test_verilog_port_names():
    """Member paths give the ``m_axi__<signal>`` names cocotbext-axi binds to."""
    class Master(wiring.Component):
        m_axi: Out(axi4_signature(32, 32))

        def elaborate(self, platform):
            m = Module()
            m.d.comb += self.m_axi.rready.eq(self.m_axi.rvalid)
            return m

    from gen.verilog import to_verilog
    text = to_verilog(Master(), "master")
    for name in AXI4_MASTER_OUT | AXI4_MASTER_IN:
        assert f"m_axi__{name}" in text, name


BAD_AXI4 = [
    ((0, 32), {}, "addr_bits: must be an integer in 1..64 (got 0)"),
    ((65, 32), {}, "addr_bits: must be an integer in 1..64 (got 65)"),
    ((True, 32), {}, "addr_bits: must be an integer in 1..64 (got True)"),
    ((32.0, 32), {}, "addr_bits: must be an integer in 1..64 (got 32.0)"),
    ((32, 12), {}, "data_bits: must be one of 8, 16, 32, 64, 128, 256, 512, 1024 (got 12)"),
    ((32, 2048), {}, "data_bits: must be one of"),
    ((32, 32.0), {}, "data_bits: must be one of"),
    ((32, 32), {"id_bits": 0}, "id_bits: must be an integer >= 1 (got 0)"),
    ((32, 32), {"id_bits": True}, "id_bits: must be an integer >= 1 (got True)"),
]


@pytest.mark.parametrize("args,kwargs,message", BAD_AXI4)
def test_axi4_validation(args, kwargs, message):
    with pytest.raises(ValueError) as info:
        axi4_signature(*args, **kwargs)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize("args,message", [
    ((0,), "addr_bits: must be an integer in 1..64 (got 0)"),
    ((False,), "addr_bits:"),
    ((32, 128), "data_bits: must be one of 32, 64 (got 128)"),
    ((32, 16), "data_bits: must be one of 32, 64 (got 16)"),
])
def test_axi4lite_validation(args, message):
    with pytest.raises(ValueError) as info:
        axi4lite_signature(*args)
    assert str(info.value).startswith(message)
