"""Unit tests of rtl/hostlink.py: the host bridge between a byte stream, the on-chip RAM and an
AXI4-Lite CSR bank (commands streamed with stalls on both byte streams)."""

import random
import struct

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring

from rtl.axiram import AxiRam
from rtl.csr import CsrBank, Reg
from rtl.hostlink import OPS, REPLY_ERROR, HostBridge
from tests.simutil import Stalls, run_sim, stream_get, stream_put

WORDS = 64


def build(data_bits):
    m = Module()
    m.submodules.ram = ram = AxiRam(WORDS * data_bits // 8, 32, data_bits)
    m.submodules.bridge = br = HostBridge(WORDS, data_bits)
    m.submodules.csr = csr = CsrBank([Reg("scratch", "rw", doc="test"),
                                      Reg("const", "ro", doc="test")])
    wiring.connect(m, br.m_axil, csr.s_axil)
    m.d.comb += [ram.host_hold.eq(br.host_hold), br.host_ready.eq(ram.host_ready),
                 ram.host_en.eq(br.host_en), ram.host_req.eq(br.host_req),
                 br.host_rdata.eq(ram.host_rdata), csr.const.eq(0x5EED)]
    return m, br


def write_mem(addr, words, nb):
    return bytes([OPS["write_mem"]]) + struct.pack("<IH", addr, len(words)) + \
        b"".join(w.to_bytes(nb, "little") for w in words)


def read_mem(addr, count):
    return bytes([OPS["read_mem"]]) + struct.pack("<IH", addr, count)


def run(data_bits, commands, reply_len, seed=0):
    m, br = build(data_bits)
    rng = random.Random(seed)
    got = []

    async def host_out(ctx):
        for byte in b"".join(commands):
            await stream_put(ctx, br.i_rx, byte, Stalls(rng, 0.3))

    async def host_in(ctx):
        for _ in range(reply_len):
            got.append(await stream_get(ctx, br.o_tx, Stalls(rng, 0.3)))

    run_sim(m, host_out, host_in, deadline_cycles=50_000)
    return bytes(got)


@pytest.mark.parametrize("data_bits", [32, 64])
def test_memory_write_read_round_trip(data_bits):
    """Random words written in three blocks (one running past the end of the memory) read back;
    words past the end are dropped (nothing wraps onto words 0..2) and read as 0."""
    nb = data_bits // 8
    rng = random.Random(data_bits)
    a = [rng.getrandbits(data_bits) for _ in range(10)]
    b = [rng.getrandbits(data_bits) for _ in range(6)]
    c = [rng.getrandbits(data_bits) | 1 for _ in range(3)]
    cmds = [write_mem(0, c, nb), write_mem(3, a, nb), write_mem(WORDS - 3, b, nb),
            read_mem(3, 10), read_mem(WORDS - 3, 6), read_mem(0, 3), read_mem(0, 0),
            bytes([OPS["ping"]])]
    reply = run(data_bits, cmds, 3 + 19 * nb + 1, seed=1)
    assert reply[:3] == bytes([OPS["write_mem"]] * 3)
    words = [int.from_bytes(reply[3 + i * nb:3 + (i + 1) * nb], "little") for i in range(19)]
    assert words == a + b[:3] + [0, 0, 0] + c
    assert reply[-1] == OPS["ping"]


def test_csr_commands_and_errors():
    cmds = [bytes([OPS["write_csr"]]) + struct.pack("<HI", 0, 0xCAFE1234),
            bytes([OPS["read_csr"]]) + struct.pack("<H", 0),
            bytes([OPS["read_csr"]]) + struct.pack("<H", 4),
            bytes([OPS["write_csr"]]) + struct.pack("<HI", 0x40, 1),     # unmapped: error
            bytes([OPS["read_csr"]]) + struct.pack("<H", 0x40),          # unmapped: 0
            bytes([0x7F]),                                               # unknown opcode
            bytes([OPS["ping"]])]
    reply = run(64, cmds, 1 + 4 + 4 + 1 + 4 + 1 + 1, seed=2)
    assert reply[0] == OPS["write_csr"]
    assert struct.unpack("<II", reply[1:9]) == (0xCAFE1234, 0x5EED)
    assert reply[9] == REPLY_ERROR
    assert struct.unpack("<I", reply[10:14]) == (0,)
    assert list(reply[14:]) == [REPLY_ERROR, OPS["ping"]]


def test_bus_width_rule():
    with pytest.raises(ValueError, match=r"data_bits: must be a multiple of 8 in 8..256"):
        HostBridge(16, 12)
