"""cocotb bench: the CSR bank (tests/test_csr_cocotb.py's CsrTop) under cocotbext-axi's AxiLiteMaster."""

import logging
import random

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiResp

from sim_tb.common import load_params, start_clock, watchdog

M32 = (1 << 32) - 1


def pauses(rng, prob):
    """Pause generator for a cocotbext-axi channel: paused with probability ``prob`` each cycle."""
    while True:
        yield rng.random() < prob


class Bench:
    """Parameters, the master with random pauses on all five channels, and a write-order monitor."""

    def __init__(self, dut):
        p = load_params()
        self.dut = dut
        self.p = p
        self.rng = random.Random(p.get("seed", 0))
        self.addr = {name: offset for name, offset, _, _ in p["layout"]}
        self.regs = p["regs"]
        self.master = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil", bus_separator="__"),
                                    dut.clk, dut.rst)
        for side in (self.master.write_if, self.master.read_if):
            side.log.setLevel(logging.WARNING)
        prob = p.get("pause", 0.3)
        for ch in (self.master.write_if.aw_channel, self.master.write_if.w_channel,
                   self.master.write_if.b_channel, self.master.read_if.ar_channel,
                   self.master.read_if.r_channel):
            ch.set_pause_generator(pauses(random.Random(self.rng.random()), prob))
        self.orders = {"aw_first": 0, "w_first": 0, "together": 0}

    async def start(self):
        await start_clock(self.dut)
        cocotb.start_soon(self._order_monitor())

    async def _order_monitor(self):
        """Counts how AW and W of each write arrived: AW first, W first or in the same cycle."""
        dut = self.dut
        aw_seen = w_seen = False
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()   # the handshakes of the coming edge
            aw = bool(dut.s_axil__awvalid.value) and bool(dut.s_axil__awready.value)
            w = bool(dut.s_axil__wvalid.value) and bool(dut.s_axil__wready.value)
            if aw and w:
                self.orders["together"] += 1
            elif aw:
                if w_seen:
                    self.orders["w_first"] += 1
                    w_seen = False
                else:
                    aw_seen = True
            elif w:
                if aw_seen:
                    self.orders["aw_first"] += 1
                    aw_seen = False
                else:
                    w_seen = True

    async def write(self, name, data, nbytes=4, offset=0):
        """Write the low ``nbytes`` of ``data`` at the register's address (+ ``offset``)."""
        resp = await self.master.write(self.addr[name] + offset, data.to_bytes(4, "little")[:nbytes])
        return resp.resp

    async def read(self, name, offset=0, nbytes=4):
        resp = await self.master.read(self.addr[name] + offset, nbytes)
        return int.from_bytes(resp.data, "little"), resp.resp


@cocotb.test()
async def rw_registers(dut):
    """Reset values, then random full and partial (low-lane strobe) writes read back and seen on
    the ports; AW and W arrive in every order."""
    b = Bench(dut)
    await b.start()
    rw = [n for n, r in b.regs.items() if r["kind"] == "rw"]
    model = {n: b.regs[n]["reset"] for n in rw}

    async def body():
        for name in rw:
            assert await b.read(name) == (model[name], AxiResp.OKAY), f"{name} reset value"
        for i in range(120):
            name = b.rng.choice(rw)
            data = b.rng.getrandbits(32)
            nbytes = b.rng.choice([4, 4, 1, 2, 3])
            assert await b.write(name, data, nbytes) == AxiResp.OKAY
            mask = (1 << 8 * nbytes) - 1 & (1 << b.regs[name]["width"]) - 1
            model[name] = model[name] & ~mask | data & mask
            assert int(getattr(dut, name).value) == model[name], f"write {i}: port {name}"
            other = b.rng.choice(rw)
            value, resp = await b.read(other)
            assert (value, resp) == (model[other], AxiResp.OKAY), f"write {i}: read {other}"

    await watchdog(body(), 20_000)
    dut._log.info("AW/W arrival orders: %s", b.orders)
    assert all(count > 0 for count in b.orders.values()), b.orders


@cocotb.test()
async def id_counter_and_pulses(dut):
    """The constant ID; 64-bit counter reads (LO then HI in one 8-byte read) are atomic, lie
    between the counter before and after the read, advance, and cover a LO carry; pulses are
    counted by the wrapper exactly once per write and read back as 0."""
    b = Bench(dut)
    await b.start()

    async def body():
        assert await b.read("id") == (b.p["chip_id"], AxiResp.OKAY)
        prev, carries, reads = None, 0, 0
        while carries == 0 or reads < 40:
            before = int(dut.cycles.value)
            value, resp = await b.read("cycles", nbytes=8)
            after = int(dut.cycles.value)
            assert resp == AxiResp.OKAY
            assert before <= value <= after, f"counter {value:#x} outside [{before:#x}, {after:#x}]"
            assert prev is None or value > prev, f"counter did not advance: {prev:#x} -> {value:#x}"
            carries += prev is not None and value >> 32 != prev >> 32
            prev = value
            reads += 1
            assert reads < 400, "the counter never carried into HI"
        assert prev >> 32 == (b.p["cycles_init"] >> 32) + 1

        mask = (1 << b.regs["cmd"]["width"]) - 1
        starts, cmd_sum = 0, 0
        for _ in range(30):
            if b.rng.random() < 0.5:
                assert await b.write("start", b.rng.getrandbits(32)) == AxiResp.OKAY
                starts += 1
            else:
                data = b.rng.getrandbits(32)
                assert await b.write("cmd", data) == AxiResp.OKAY
                cmd_sum = (cmd_sum + (data & mask)) & M32
        assert await b.read("start_count") == (starts, AxiResp.OKAY)
        assert await b.read("cmd_sum") == (cmd_sum, AxiResp.OKAY)
        assert await b.read("start") == (0, AxiResp.OKAY)
        assert await b.read("cmd") == (0, AxiResp.OKAY)

    await watchdog(body(), 20_000)


@cocotb.test()
async def error_responses(dut):
    """Unmapped and misaligned addresses answer SLVERR (reads return 0) and change nothing;
    writes to ro and counter words answer OKAY and are ignored."""
    b = Bench(dut)
    await b.start()
    end = max(offset + (8 if b.regs[name]["kind"] == "counter" else 4)
              for name, offset, _, _ in b.p["layout"])

    async def body():
        for addr in (end, end + 4, 0x800, 0xFFC):
            resp = await b.master.read(addr, 4)
            assert (resp.resp, resp.data) == (AxiResp.SLVERR, bytes(4)), f"read {addr:#x}"
            resp = await b.master.write(addr, b"\xff" * 4)
            assert resp.resp == AxiResp.SLVERR, f"write {addr:#x}"
        for addr in (b.addr["scratch"] + 1, b.addr["scratch"] + 2, b.addr["ctrl"] + 3):
            resp = await b.master.read(addr, 1)
            assert resp.resp == AxiResp.SLVERR, f"misaligned read {addr:#x}"
            resp = await b.master.write(addr, b"\xff")
            assert resp.resp == AxiResp.SLVERR, f"misaligned write {addr:#x}"
        for name in ("ctrl", "scale", "scratch"):
            assert int(getattr(dut, name).value) == b.regs[name]["reset"], name
        assert await b.write("id", 0) == AxiResp.OKAY
        assert await b.write("cycles", 0) == AxiResp.OKAY
        assert await b.write("cycles", 0, offset=4) == AxiResp.OKAY
        assert await b.read("id") == (b.p["chip_id"], AxiResp.OKAY)
        value, _ = await b.read("cycles", nbytes=8)
        assert value > b.p["cycles_init"]
        # a read spanning a mapped and an unmapped word reports the error
        resp = await b.master.read(end - 4, 8)
        assert resp.resp == AxiResp.SLVERR

    await watchdog(body(), 10_000)
