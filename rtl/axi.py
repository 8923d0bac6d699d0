"""AXI4 and AXI4-Lite interface signatures (flat, named like the AXI channel signals)."""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["axi4_signature", "axi4lite_signature", "AXI_BURST_INCR", "AXI_RESP_OKAY",
           "AXI_RESP_EXOKAY", "AXI_RESP_SLVERR", "AXI_RESP_DECERR"]

AXI_BURST_INCR = 0b01
AXI_RESP_OKAY = 0b00
AXI_RESP_EXOKAY = 0b01
AXI_RESP_SLVERR = 0b10
AXI_RESP_DECERR = 0b11


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check(addr_bits, data_bits, widths):
    if not (_is_int(addr_bits) and 1 <= addr_bits <= 64):
        raise ValueError(f"addr_bits: must be an integer in 1..64 (got {addr_bits!r})")
    if not (_is_int(data_bits) and data_bits in widths):
        raise ValueError(f"data_bits: must be one of {', '.join(map(str, widths))} "
                         f"(got {data_bits!r})")


def axi4_signature(addr_bits, data_bits, id_bits=1):
    """AXI4 (full) interface seen from the master: one flat member per AXI signal.

    Members are named exactly like the AXI signals (``awaddr``, ``rready``, ...), so a component
    member ``m_axi`` gives Verilog ports ``m_axi__awaddr`` etc. and cocotbext-axi binds with
    ``AxiBus.from_prefix(dut, "m_axi", bus_separator="__")``. Only the signals cocotbext-axi
    requires plus ``wstrb``/``bresp``/``rresp`` are present: no ``*lock``/``*cache``/``*prot``/
    ``*qos``/``*region``/``*user`` (tie them off in a wrapper if an interconnect wants them).
    Use ``Out(...)`` on a master, ``In(...)`` on a slave.
    """
    _check(addr_bits, data_bits, (8, 16, 32, 64, 128, 256, 512, 1024))
    if not (_is_int(id_bits) and id_bits >= 1):
        raise ValueError(f"id_bits: must be an integer >= 1 (got {id_bits!r})")
    return wiring.Signature({
        # write address
        "awid": Out(id_bits), "awaddr": Out(addr_bits), "awlen": Out(8), "awsize": Out(3),
        "awburst": Out(2), "awvalid": Out(1), "awready": In(1),
        # write data
        "wdata": Out(data_bits), "wstrb": Out(data_bits // 8), "wlast": Out(1),
        "wvalid": Out(1), "wready": In(1),
        # write response
        "bid": In(id_bits), "bresp": In(2), "bvalid": In(1), "bready": Out(1),
        # read address
        "arid": Out(id_bits), "araddr": Out(addr_bits), "arlen": Out(8), "arsize": Out(3),
        "arburst": Out(2), "arvalid": Out(1), "arready": In(1),
        # read data
        "rid": In(id_bits), "rdata": In(data_bits), "rresp": In(2), "rlast": In(1),
        "rvalid": In(1), "rready": Out(1),
    })


def axi4lite_signature(addr_bits, data_bits=32):
    """AXI4-Lite interface seen from the master, flat like :func:`axi4_signature`.

    Includes ``awprot``/``arprot`` (optional for cocotbext-axi's ``AxiLiteBus``, mandatory in the
    AXI4-Lite spec), ``wstrb``, ``bresp`` and ``rresp``. A CSR block declares
    ``"s_axil": In(axi4lite_signature(...))``; cocotbext-axi binds with
    ``AxiLiteBus.from_prefix(dut, "s_axil", bus_separator="__")``.
    """
    _check(addr_bits, data_bits, (32, 64))
    return wiring.Signature({
        "awaddr": Out(addr_bits), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
        "wdata": Out(data_bits), "wstrb": Out(data_bits // 8), "wvalid": Out(1), "wready": In(1),
        "bresp": In(2), "bvalid": In(1), "bready": Out(1),
        "araddr": Out(addr_bits), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
        "rdata": In(data_bits), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
    })
