"""Unit tests of rtl/csr.py: the AXI4-Lite register bank against a Python model of its registers."""

import random

import pytest
from amaranth.hdl import Fragment
from amaranth.lib import wiring

from rtl.axi import AXI_RESP_OKAY, AXI_RESP_SLVERR
from rtl.csr import CsrBank, Reg, RegInfo
from tests.simutil import check_registered_outputs, run_sim

M32 = (1 << 32) - 1

#: The bank most tests use: every kind, several widths. Offsets in the comments.
REGS = [
    Reg("ctrl", "rw", reset=0x0000_0005, doc="control bits"),   # 0x00
    Reg("scale", "rw", width=12, reset=0xABC),                   # 0x04
    Reg("flag", "rw", width=1, reset=1),                         # 0x08
    Reg("status", "ro", width=8, doc="status byte"),              # 0x0c
    Reg("id", "ro"),                                              # 0x10
    Reg("start", "pulse", width=1),                               # 0x14
    Reg("cmd", "pulse", width=20),                                # 0x18
    Reg("cycles", "counter", doc="cycles"),                       # 0x1c LO, 0x20 HI
    Reg("events", "counter"),                                     # 0x24 LO, 0x28 HI
    Reg("mode", "rw", width=17, reset=0x1_2345),                  # 0x2c
]
SIZE = 0x30
#: ``cycles`` counts up by one from just below a LO carry; ``events`` strides so LO carries often.
CYCLES_BASE = (3 << 32) - 700
EVENTS_BASE = (0x1234 << 32) | 0x8000_0000
EVENTS_STRIDE = 0x3F00_0001
#: Unmapped (past the map, or only equal to a register in the low bits) and misaligned addresses.
UNMAPPED = [SIZE, SIZE + 4, 0x100, 0x800, 0x800 | 0x04, 0xFFC, 0x7F0]
MISALIGNED = [0x01, 0x02, 0x03, 0x0D, 0x1E, 0x21, 0x2F]


def lane_mask(strb):
    return sum(0xFF << (8 * i) for i in range(4) if strb >> i & 1)


class AxiLiteDriver:
    """AXI4-Lite master for the Amaranth simulator with random timing.

    A write offers AW and W in a random order (AW first, W first or together) with up to
    ``max_gap`` cycles between them; before each channel's valid and before ``bready``/``rready``
    a random number of idle cycles pass (``stall`` is the chance of one more). While a valid is
    low its payload carries random garbage, so a slave that samples without a handshake is caught.
    """

    def __init__(self, bus, rng, stall=0.3, max_gap=4):
        self.bus = bus
        self.rng = rng
        self.stall = stall
        self.max_gap = max_gap

    def _idle_cycles(self):
        n = 0
        while self.rng.random() < self.stall:
            n += 1
        return n

    def _garbage_aw(self, ctx):
        ctx.set(self.bus.awaddr, self.rng.getrandbits(len(self.bus.awaddr)))
        ctx.set(self.bus.awprot, self.rng.getrandbits(3))

    def _garbage_w(self, ctx):
        ctx.set(self.bus.wdata, self.rng.getrandbits(32))
        ctx.set(self.bus.wstrb, self.rng.getrandbits(4))

    def _garbage_ar(self, ctx):
        ctx.set(self.bus.araddr, self.rng.getrandbits(len(self.bus.araddr)))
        ctx.set(self.bus.arprot, self.rng.getrandbits(3))

    async def write(self, ctx, addr, data, strb=0xF, order=None, gap=None):
        """Write and return ``bresp``. ``order`` is ``"aw"``/``"w"`` (that one first) or ``"both"``."""
        bus, rng = self.bus, self.rng
        order = order or rng.choice(["aw", "w", "both"])
        gap = rng.randint(0, self.max_gap) if gap is None else gap
        start = self._idle_cycles()
        aw_at = start + (gap if order == "w" else 0)
        w_at = start + (gap if order == "aw" else 0)
        aw_done = w_done = False
        t = 0
        while not (aw_done and w_done):
            aw_on = not aw_done and t >= aw_at
            w_on = not w_done and t >= w_at
            ctx.set(bus.awvalid, aw_on)
            ctx.set(bus.wvalid, w_on)
            if aw_on:
                ctx.set(bus.awaddr, addr)
                ctx.set(bus.awprot, rng.getrandbits(3))
            else:
                self._garbage_aw(ctx)
            if w_on:
                ctx.set(bus.wdata, data)
                ctx.set(bus.wstrb, strb)
            else:
                self._garbage_w(ctx)
            _, _, awready, wready = await ctx.tick().sample(bus.awready, bus.wready)
            aw_done |= bool(aw_on and awready)
            w_done |= bool(w_on and wready)
            t += 1
        ctx.set(bus.awvalid, 0)
        ctx.set(bus.wvalid, 0)
        self._garbage_aw(ctx)
        self._garbage_w(ctx)
        for _ in range(self._idle_cycles()):
            await ctx.tick()
        ctx.set(bus.bready, 1)
        bresp, = await ctx.tick().sample(bus.bresp).until(bus.bvalid)
        ctx.set(bus.bready, 0)
        return bresp

    async def read(self, ctx, addr, sample=()):
        """Read; return ``(rdata, rresp, values of sample at the AR handshake edge)``."""
        bus = self.bus
        for _ in range(self._idle_cycles()):
            await ctx.tick()
        ctx.set(bus.araddr, addr)
        ctx.set(bus.arprot, self.rng.getrandbits(3))
        ctx.set(bus.arvalid, 1)
        sampled = await ctx.tick().sample(*sample).until(bus.arready)
        ctx.set(bus.arvalid, 0)
        self._garbage_ar(ctx)
        for _ in range(self._idle_cycles()):
            await ctx.tick()
        ctx.set(bus.rready, 1)
        rdata, rresp = await ctx.tick().sample(bus.rdata, bus.rresp).until(bus.rvalid)
        ctx.set(bus.rready, 0)
        return rdata, rresp, tuple(sampled)


class BankModel:
    """Expected behaviour of a :class:`CsrBank`: register values, counter snapshots, pulses."""

    def __init__(self, bank):
        self.bank = bank
        self.regs = {r.name: r for r in bank.regs}
        self.words = {}          # byte offset -> (reg, word index)
        for info in bank.layout():
            self.words[info.offset] = (self.regs[info.name], 0)
            if info.kind == "counter":
                self.words[info.offset + 4] = (self.regs[info.name], 1)
        self.rw = {r.name: r.reset for r in bank.regs if r.kind == "rw"}
        self.snap = {r.name: 0 for r in bank.regs if r.kind == "counter"}
        self.pulses = []         # (name, data) expected on the strobes, in order

    def write(self, addr, data, strb):
        """Apply a write; return the expected response."""
        if addr not in self.words:
            return AXI_RESP_SLVERR
        reg, _ = self.words[addr]
        mask = lane_mask(strb) & ((1 << reg.width) - 1)
        if reg.kind == "rw":
            self.rw[reg.name] = self.rw[reg.name] & ~mask | data & mask
        elif reg.kind == "pulse" and strb:
            self.pulses.append((reg.name, data & mask))
        return AXI_RESP_OKAY

    def read(self, addr, ports):
        """Expected ``(rdata, rresp)`` given the port values at the AR handshake (a dict)."""
        if addr not in self.words:
            return 0, AXI_RESP_SLVERR
        reg, word = self.words[addr]
        if reg.kind in ("ro", "rw"):
            return ports[reg.name], AXI_RESP_OKAY
        if reg.kind == "pulse":
            return 0, AXI_RESP_OKAY
        if word == 0:
            self.snap[reg.name] = ports[reg.name] >> 32
            return ports[reg.name] & M32, AXI_RESP_OKAY
        return self.snap[reg.name], AXI_RESP_OKAY


def value_ports(dut):
    """Names and signals of the ports a read may return (rw, ro, counter)."""
    names = [r.name for r in dut.regs if r.kind != "pulse"]
    return names, [getattr(dut, n) for n in names]


def input_driver(dut, rng, change=0.3):
    """Drives the ro inputs (random, changing now and then) and counters (from CYCLES_BASE,
    EVENTS_BASE) every cycle."""
    async def drive(ctx):
        n = 0
        while True:
            for reg in dut.regs:
                port = getattr(dut, reg.name)
                if reg.kind == "ro" and (n == 0 or rng.random() < change):
                    ctx.set(port, rng.getrandbits(reg.width))
                elif reg.name == "cycles":
                    ctx.set(port, (CYCLES_BASE + n) % (1 << 64))
                elif reg.name == "events":
                    ctx.set(port, (EVENTS_BASE + n * EVENTS_STRIDE) % (1 << 64))
                elif reg.kind == "counter":
                    ctx.set(port, rng.getrandbits(64))
            await ctx.tick()
            n += 1
    return drive


class Monitor:
    """Per-cycle protocol checker and pulse recorder.

    Checks: B and R responses (valid and payload) are held until their ready; while a response is
    pending the channel's address/data readies are low; rw ports change and pulse strobes fire
    only on the cycle ``bvalid`` rises; pulse data is 0 outside its strobe.
    """

    def __init__(self, dut):
        self.dut = dut
        self.pulses = []
        self.b_count = self.r_count = 0

    async def run(self, ctx):
        dut, bus = self.dut, self.dut.s_axil
        rw = [r for r in dut.regs if r.kind == "rw"]
        pulse = [r for r in dut.regs if r.kind == "pulse"]
        sigs = [bus.bvalid, bus.bready, bus.bresp, bus.rvalid, bus.rready, bus.rdata, bus.rresp,
                bus.awready, bus.wready, bus.arready]
        sigs += [getattr(dut, r.name) for r in rw]
        sigs += [s for r in pulse for s in (getattr(dut, r.name), getattr(dut, f"{r.name}_stb"))]
        prev = None
        while True:
            _, _, *v = await ctx.tick().sample(*sigs)
            bvalid, bready, bresp, rvalid, rready, rdata, rresp, awready, wready, arready = v[:10]
            rw_vals = v[10:10 + len(rw)]
            pulse_vals = v[10 + len(rw):]
            b_rose = bvalid and not (prev and prev["bvalid"])
            if bvalid:
                assert not awready and not wready, "AW/W accepted while a B response is pending"
            if rvalid:
                assert not arready, "AR accepted while an R response is pending"
            if prev is not None:
                if prev["bvalid"] and not prev["bready"]:
                    assert bvalid and bresp == prev["bresp"], "B response dropped or changed"
                if prev["rvalid"] and not prev["rready"]:
                    assert rvalid and (rdata, rresp) == (prev["rdata"], prev["rresp"]), \
                        "R response dropped or changed"
                for reg, old, new in zip(rw, prev["rw"], rw_vals):
                    assert old == new or b_rose, f"{reg.name} changed outside a write"
            for i, reg in enumerate(pulse):
                data, stb = pulse_vals[2 * i], pulse_vals[2 * i + 1]
                if stb:
                    assert b_rose, f"{reg.name}_stb outside the write's B cycle"
                    self.pulses.append((reg.name, data))
                else:
                    assert data == 0, f"{reg.name} data {data:#x} without strobe"
            self.b_count += bvalid and bready
            self.r_count += rvalid and rready
            prev = {"bvalid": bvalid, "bready": bready, "bresp": bresp, "rvalid": rvalid,
                    "rready": rready, "rdata": rdata, "rresp": rresp, "rw": rw_vals}


# Random traffic ----------------------------------------------------------------------------------

def random_write(rng, model):
    r = rng.random()
    if r < 0.1:
        addr = rng.choice(UNMAPPED + MISALIGNED)
    else:
        addr = rng.choice(sorted(model.words))
    strb = 0xF if rng.random() < 0.4 else rng.randrange(16)
    return addr, rng.getrandbits(32), strb


def random_reads(rng, model):
    """One read or a counter's LO-then-HI pair."""
    r = rng.random()
    if r < 0.1:
        return [rng.choice(UNMAPPED + MISALIGNED)]
    counters = [i.offset for i in model.bank.layout() if i.kind == "counter"]
    if r < 0.45:
        lo = rng.choice(counters)
        return [lo, lo + 4]
    return [rng.choice(sorted(model.words))]


def run_traffic(seed, stall, concurrent, n_writes=150, n_reads=150, addr_bits=12):
    """Random writes and reads against the model; with ``concurrent`` they run in parallel."""
    rng = random.Random(seed)
    dut = CsrBank(REGS, addr_bits=addr_bits)
    model = BankModel(dut)
    drv = AxiLiteDriver(dut.s_axil, random.Random(rng.random()), stall=stall)
    mon = Monitor(dut)
    names, ports = value_ports(dut)
    writes = [random_write(rng, model) for _ in range(n_writes)]
    reads = [random_reads(rng, model) for _ in range(n_reads)]
    stats = {"pairs": 0, "carries": 0, "reads": 0}

    async def do_write(ctx, addr, data, strb):
        expected = model.write(addr, data, strb)
        resp = await drv.write(ctx, addr, data, strb)
        assert resp == expected, f"write {addr:#x}: bresp {resp}, expected {expected}"
        for name in model.rw:
            assert ctx.get(getattr(dut, name)) == model.rw[name], \
                f"after write {addr:#x} <- {data:#x}/{strb:#x}: {name} differs"

    async def do_reads(ctx, addrs):
        got = []
        for addr in addrs:
            rdata, rresp, sampled = await drv.read(ctx, addr, ports)
            values = dict(zip(names, sampled))
            if not concurrent:   # no write in flight: the ports must hold the model's values
                for name in model.rw:
                    assert values[name] == model.rw[name], f"{name} port differs from the model"
            expected = model.read(addr, values)
            assert (rdata, rresp) == expected, \
                f"read {addr:#x}: got {rdata:#x}/{rresp}, expected {expected[0]:#x}/{expected[1]}"
            stats["reads"] += 1
            got.append((rdata, values))
        if len(addrs) == 2:   # LO then HI of a counter: one value, the one at the LO handshake
            (lo, at_lo), (hi, at_hi) = got
            name = model.words[addrs[0]][0].name
            assert hi << 32 | lo == at_lo[name], f"{name}: HI:LO {hi:#x}:{lo:#x} not atomic"
            stats["pairs"] += 1
            # LO carried between the two reads: the live HI at the HI read had moved on
            stats["carries"] += at_hi[name] >> 32 != hi

    async def sequential(ctx):
        ops = [("w", w) for w in writes] + [("r", r) for r in reads]
        rng.shuffle(ops)
        for kind, op in ops:
            if kind == "w":
                await do_write(ctx, *op)
            else:
                await do_reads(ctx, op)

    async def writer(ctx):
        for op in writes:
            await do_write(ctx, *op)

    async def reader(ctx):
        for op in reads:
            await do_reads(ctx, op)

    tbs = [writer, reader] if concurrent else [sequential]
    run_sim(dut, *tbs, monitors=[input_driver(dut, random.Random(rng.random())), mon.run],
            deadline_cycles=100 * (n_writes + 2 * n_reads) + 1000)
    assert mon.pulses == model.pulses
    assert mon.b_count == n_writes and mon.r_count == stats["reads"]
    return stats


@pytest.mark.parametrize("concurrent", [False, True], ids=["sequential", "concurrent"])
@pytest.mark.parametrize("seed,stall", [(1, 0.0), (2, 0.3), (3, 0.6)])
def test_random_traffic(seed, stall, concurrent):
    stats = run_traffic(seed, stall, concurrent)
    assert stats["pairs"] > 30
    assert stats["carries"] > 5, "the test did not exercise LO carries between LO and HI reads"


def test_small_address_space():
    """A map that fills ``2**addr_bits`` exactly; addresses are decoded with every bit."""
    regs = [Reg("a", "rw", width=8, reset=0x5A), Reg("b", "ro")]
    dut = CsrBank(regs, addr_bits=3)
    drv = AxiLiteDriver(dut.s_axil, random.Random(4), stall=0.2)

    async def tb(ctx):
        ctx.set(dut.b, 0x1234_5678)
        assert await drv.write(ctx, 0, 0xFFFF_FF11) == AXI_RESP_OKAY
        assert ctx.get(dut.a) == 0x11
        assert (await drv.read(ctx, 0))[:2] == (0x11, AXI_RESP_OKAY)
        assert (await drv.read(ctx, 4))[:2] == (0x1234_5678, AXI_RESP_OKAY)
        for addr in (1, 2, 3, 5, 6, 7):
            assert (await drv.read(ctx, addr))[:2] == (0, AXI_RESP_SLVERR)
            assert await drv.write(ctx, addr, 0) == AXI_RESP_SLVERR
        assert ctx.get(dut.a) == 0x11

    run_sim(dut, tb, deadline_cycles=2_000)


# Counters ----------------------------------------------------------------------------------------

def test_counter_atomic_across_carry():
    """LO-then-HI pairs on a counter stepping by EVENTS_STRIDE (LO carries every ~4 cycles) and on
    one crossing a 32-bit boundary; each pair is the value at the LO handshake. A HI read alone
    returns the snapshot of the last LO read, not the live HI."""
    dut = CsrBank(REGS)
    drv = AxiLiteDriver(dut.s_axil, random.Random(5), stall=0.5)
    lo_cycles, lo_events = dut.address_of("cycles"), dut.address_of("events")
    seen = {"carries": 0, "wraps": 0}

    async def tb(ctx):
        prev = None
        for i in range(60):
            addr = lo_cycles if i % 2 else lo_events
            name = "cycles" if i % 2 else "events"
            port = getattr(dut, name)
            lo, _, (at_lo,) = await drv.read(ctx, addr, [port])
            for _ in range(i % 7):   # let the counter move on between LO and HI
                await ctx.tick()
            hi, resp, (at_hi,) = await drv.read(ctx, addr + 4, [port])
            assert resp == AXI_RESP_OKAY
            value = hi << 32 | lo
            assert value == at_lo, f"{name}: read {value:#x}, value at the LO read {at_lo:#x}"
            if name == "events":
                assert (value - EVENTS_BASE) % EVENTS_STRIDE == 0
            else:
                assert prev is None or value > prev
                seen["wraps"] += prev is not None and value >> 32 != prev >> 32
                prev = value
            seen["carries"] += at_hi >> 32 != hi   # LO carried between the LO and HI reads
            # HI again without a LO read: still the snapshot
            assert (await drv.read(ctx, addr + 4))[0] == hi

    run_sim(dut, tb, monitors=[input_driver(dut, random.Random(6))], deadline_cycles=20_000)
    assert seen["carries"] >= 10 and seen["wraps"] == 1


def test_counter_hi_before_any_lo_reads_zero():
    dut = CsrBank(REGS)
    drv = AxiLiteDriver(dut.s_axil, random.Random(7))

    async def tb(ctx):
        for name in ("cycles", "events"):
            assert (await drv.read(ctx, dut.address_of(name) + 4))[:2] == (0, AXI_RESP_OKAY)

    run_sim(dut, tb, monitors=[input_driver(dut, random.Random(8))], deadline_cycles=1_000)


# Writes: channel order, strobes, pulses, errors -------------------------------------------------

@pytest.mark.parametrize("order,gap", [("both", 0)] + [(o, g) for o in ("aw", "w")
                                                       for g in (0, 1, 2, 5, 12)])
def test_write_channel_order(order, gap):
    """AW first, W first (by ``gap`` cycles) or together: the write lands once, with its data."""
    dut = CsrBank(REGS)
    drv = AxiLiteDriver(dut.s_axil, random.Random(9), stall=0.0)
    mon = Monitor(dut)

    async def tb(ctx):
        assert await drv.write(ctx, 0x00, 0xDEAD_BEEF, order=order, gap=gap) == AXI_RESP_OKAY
        assert ctx.get(dut.ctrl) == 0xDEAD_BEEF
        assert await drv.write(ctx, 0x18, 0xABCDE, order=order, gap=gap) == AXI_RESP_OKAY
        assert await drv.write(ctx, 0x14, 0x1, 0x1, order=order, gap=gap) == AXI_RESP_OKAY
        assert await drv.write(ctx, 0x03, 0x1, order=order, gap=gap) == AXI_RESP_SLVERR
        for _ in range(3):
            await ctx.tick()

    run_sim(dut, tb, monitors=[mon.run], deadline_cycles=1_000)
    assert mon.pulses == [("cmd", 0xABCDE), ("start", 1)]


STROBE_CASES = [
    # (register, reset, strobe, data, expected)
    ("ctrl", 0x0000_0005, 0b0000, 0xFFFF_FFFF, 0x0000_0005),
    ("ctrl", 0x0000_0005, 0b0001, 0x1122_3344, 0x0000_0044),
    ("ctrl", 0x0000_0005, 0b0110, 0x1122_3344, 0x0022_3305),
    ("ctrl", 0x0000_0005, 0b1000, 0x1122_3344, 0x1100_0005),
    ("scale", 0xABC, 0b0010, 0xFFFF_F7FF, 0x7BC),    # 12 bits: lane 1 holds bits 11..8
    ("scale", 0xABC, 0b1100, 0xFFFF_FFFF, 0xABC),    # lanes above the width change nothing
    ("mode", 0x1_2345, 0b0100, 0x0000_0000, 0x0_2345),
    ("flag", 1, 0b1110, 0, 1),
    ("flag", 1, 0b0001, 0xFFFF_FFFE, 0),
]


@pytest.mark.parametrize("name,reset,strb,data,expected", STROBE_CASES)
def test_rw_strobes(name, reset, strb, data, expected):
    dut = CsrBank(REGS)
    drv = AxiLiteDriver(dut.s_axil, random.Random(10))

    async def tb(ctx):
        assert ctx.get(getattr(dut, name)) == reset
        assert await drv.write(ctx, dut.address_of(name), data, strb) == AXI_RESP_OKAY
        assert ctx.get(getattr(dut, name)) == expected
        assert (await drv.read(ctx, dut.address_of(name)))[:2] == (expected, AXI_RESP_OKAY)

    run_sim(dut, tb, deadline_cycles=1_000)


def test_pulses_and_ignored_writes():
    """Pulse data follows the strobes, a zero strobe does not pulse, pulses read 0; writes to ro
    and counter words answer OKAY and change nothing."""
    dut = CsrBank(REGS)
    drv = AxiLiteDriver(dut.s_axil, random.Random(11), stall=0.4)
    mon = Monitor(dut)

    async def tb(ctx):
        cmd = dut.address_of("cmd")
        for data, strb in [(0xFFFF_FFFF, 0xF), (0x1234_5678, 0b0101), (0xFFFF_FFFF, 0),
                           (0x0, 0xF), (0xABCD_EF01, 0b1000)]:
            assert await drv.write(ctx, cmd, data, strb) == AXI_RESP_OKAY
        assert await drv.write(ctx, dut.address_of("start"), 0xFFFF_FFFE) == AXI_RESP_OKAY
        assert (await drv.read(ctx, cmd))[:2] == (0, AXI_RESP_OKAY)
        assert (await drv.read(ctx, dut.address_of("start")))[:2] == (0, AXI_RESP_OKAY)
        ctx.set(dut.id, 0x600D_F00D)
        for name in ("status", "id", "cycles"):
            for off in ((0, 4) if name == "cycles" else (0,)):
                addr = dut.address_of(name) + off
                assert await drv.write(ctx, addr, 0x5555_5555) == AXI_RESP_OKAY
        assert (await drv.read(ctx, dut.address_of("id")))[:2] == (0x600D_F00D, AXI_RESP_OKAY)
        for reg in REGS:
            if reg.kind == "rw":
                assert ctx.get(getattr(dut, reg.name)) == reg.reset

    run_sim(dut, tb, monitors=[mon.run], deadline_cycles=2_000)
    # bits above 20 are dropped; lanes without strobe read 0; the wstrb=0 write does not pulse
    assert mon.pulses == [("cmd", 0xF_FFFF), ("cmd", 0x4_0078), ("cmd", 0), ("cmd", 0),
                          ("start", 0)]


@pytest.mark.parametrize("addr", UNMAPPED + MISALIGNED)
def test_slverr(addr):
    """Unmapped and misaligned addresses: SLVERR, reads return 0, writes change nothing."""
    dut = CsrBank(REGS)
    drv = AxiLiteDriver(dut.s_axil, random.Random(addr), stall=0.3)
    mon = Monitor(dut)

    async def tb(ctx):
        assert (await drv.read(ctx, addr))[:2] == (0, AXI_RESP_SLVERR)
        assert await drv.write(ctx, addr, 0xFFFF_FFFF) == AXI_RESP_SLVERR
        for reg in REGS:
            if reg.kind == "rw":
                assert ctx.get(getattr(dut, reg.name)) == reg.reset
        # the bank still works afterwards
        assert await drv.write(ctx, 0, 0x77) == AXI_RESP_OKAY
        assert (await drv.read(ctx, 0))[:2] == (0x77, AXI_RESP_OKAY)
        for _ in range(3):
            await ctx.tick()

    run_sim(dut, tb, monitors=[input_driver(dut, random.Random(1)), mon.run],
            deadline_cycles=1_000)
    assert mon.pulses == []


# Handshake contract ------------------------------------------------------------------------------

def test_reset_state():
    dut = CsrBank(REGS)
    drv = AxiLiteDriver(dut.s_axil, random.Random(12))
    bus = dut.s_axil

    async def tb(ctx):
        for _ in range(3):
            await ctx.tick()
            for sig, value in [(bus.awready, 1), (bus.wready, 1), (bus.arready, 1),
                               (bus.bvalid, 0), (bus.rvalid, 0), (bus.rdata, 0),
                               (dut.start, 0), (dut.start_stb, 0), (dut.cmd, 0), (dut.cmd_stb, 0),
                               (dut.ctrl, 0x5), (dut.scale, 0xABC), (dut.flag, 1),
                               (dut.mode, 0x1_2345)]:
                assert ctx.get(sig) == value, sig.name
        for reg in REGS:
            if reg.kind == "rw":
                rdata, rresp, _ = await drv.read(ctx, dut.address_of(reg.name))
                assert (rdata, rresp) == (reg.reset, AXI_RESP_OKAY), reg.name

    run_sim(dut, tb, deadline_cycles=500)


def test_one_outstanding_and_timing():
    """While B or R waits for its ready the address/data readies stay low; documented latency:
    a write takes effect (and bvalid rises) on the edge after both AW and W are held, R is
    valid the cycle after the AR handshake."""
    dut = CsrBank(REGS)
    bus = dut.s_axil

    async def tb(ctx):
        ctx.set(bus.awaddr, 0x18)
        ctx.set(bus.wdata, 0x3)
        ctx.set(bus.wstrb, 0xF)
        ctx.set(bus.awvalid, 1)
        ctx.set(bus.wvalid, 1)
        await ctx.tick()                       # AW and W taken together
        ctx.set(bus.awvalid, 0)
        ctx.set(bus.wvalid, 0)
        assert not ctx.get(bus.awready) and not ctx.get(bus.bvalid)
        await ctx.tick()                       # the write happens on this edge
        assert ctx.get(bus.bvalid) and ctx.get(dut.cmd_stb) and ctx.get(dut.cmd) == 3
        for _ in range(10):                    # bready low: response held, nothing accepted
            ctx.set(bus.awvalid, 1)
            ctx.set(bus.wvalid, 1)
            assert ctx.get(bus.bvalid) and not ctx.get(bus.awready) and not ctx.get(bus.wready)
            await ctx.tick()
            assert not ctx.get(dut.cmd_stb)
        ctx.set(bus.awvalid, 0)
        ctx.set(bus.wvalid, 0)
        ctx.set(bus.bready, 1)
        await ctx.tick()
        ctx.set(bus.bready, 0)
        assert not ctx.get(bus.bvalid) and ctx.get(bus.awready) and ctx.get(bus.wready)

        ctx.set(bus.araddr, 0x0)
        ctx.set(bus.arvalid, 1)
        await ctx.tick()
        ctx.set(bus.arvalid, 0)
        assert ctx.get(bus.rvalid) and ctx.get(bus.rdata) == 5
        for _ in range(10):
            ctx.set(bus.arvalid, 1)
            assert not ctx.get(bus.arready) and ctx.get(bus.rvalid)
            await ctx.tick()
        ctx.set(bus.arvalid, 0)
        ctx.set(bus.rready, 1)
        await ctx.tick()
        assert not ctx.get(bus.rvalid) and ctx.get(bus.arready)

    run_sim(dut, tb, deadline_cycles=200)


def test_axi_outputs_do_not_depend_on_axi_inputs():
    """With the state fixed, changing every AXI input leaves every AXI output unchanged."""
    dut = CsrBank(REGS)
    bus = dut.s_axil
    inputs = [getattr(bus, n) for n, m in bus.signature.members.items() if m.flow == wiring.In]
    outputs = [getattr(bus, n) for n, m in bus.signature.members.items() if m.flow == wiring.Out]
    assert len(inputs) == 11 and len(outputs) == 8
    rng = random.Random(13)

    async def tb(ctx):
        def mostly_mapped(sig):
            return rng.randrange(0, SIZE + 8, 4) if sig.name.endswith("addr") else None

        moved = await check_registered_outputs(
            ctx, inputs, outputs, rng, (bus.bvalid & bus.bready) | (bus.rvalid & bus.rready),
            value=mostly_mapped)
        assert moved > 50

    run_sim(dut, tb, monitors=[input_driver(dut, random.Random(14))], deadline_cycles=1_000)


# Address map and construction --------------------------------------------------------------------

def test_layout_and_address_of():
    dut = CsrBank(REGS)
    expected = [("ctrl", 0x00, "rw", "control bits"), ("scale", 0x04, "rw", ""),
                ("flag", 0x08, "rw", ""), ("status", 0x0C, "ro", "status byte"),
                ("id", 0x10, "ro", ""), ("start", 0x14, "pulse", ""), ("cmd", 0x18, "pulse", ""),
                ("cycles", 0x1C, "counter", "cycles"), ("events", 0x24, "counter", ""),
                ("mode", 0x2C, "rw", "")]
    assert dut.layout() == expected
    assert all(isinstance(row, RegInfo) for row in dut.layout())
    for name, offset, _, _ in expected:
        assert dut.address_of(name) == offset
    with pytest.raises(ValueError, match="'nope': no such register"):
        dut.address_of("nope")
    assert Reg("c", "counter").width == 64 and Reg("r", "rw").width == 32
    Fragment.get(dut, None)


def test_ports():
    dut = CsrBank(REGS, addr_bits=10)
    members = dut.signature.members
    assert members["ctrl"] == wiring.Out(32, init=5)
    assert members["scale"] == wiring.Out(12, init=0xABC)
    assert members["status"] == wiring.In(8)
    assert members["cmd"] == wiring.Out(20) and members["cmd_stb"] == wiring.Out(1)
    assert members["cycles"] == wiring.In(64)
    assert len(dut.s_axil.awaddr) == 10 and len(dut.s_axil.rdata) == 32
    Fragment.get(dut, None)


BAD_BANKS = [
    # (regs, addr_bits, exception, message prefix)
    ([Reg("a", "rw"), Reg("a", "ro")], 12, ValueError,
     "regs[1] 'a': duplicate name: port 'a' is already used by regs[0] 'a'"),
    ([Reg("go", "pulse"), Reg("go_stb", "rw")], 12, ValueError,
     "regs[1] 'go_stb': duplicate name: port 'go_stb' is already used by regs[0] 'go'"),
    ([Reg("x", "wo")], 12, ValueError,
     "regs[0] 'x': kind must be one of 'ro', 'rw', 'pulse', 'counter' (got 'wo')"),
    ([Reg("a", "rw"), Reg("x", "rw", width=0)], 12, ValueError,
     "regs[1] 'x': width must be an integer in 1..32 for kind 'rw' (got 0)"),
    ([Reg("x", "ro", width=33)], 12, ValueError,
     "regs[0] 'x': width must be an integer in 1..32 for kind 'ro' (got 33)"),
    ([Reg("x", "pulse", width=64)], 12, ValueError,
     "regs[0] 'x': width must be an integer in 1..32 for kind 'pulse' (got 64)"),
    ([Reg("x", "rw", width=True)], 12, ValueError, "regs[0] 'x': width must be an integer"),
    ([Reg("x", "counter", width=32)], 12, ValueError,
     "regs[0] 'x': width of a counter must be 64 (got 32)"),
    ([Reg("x", "rw", width=8, reset=256)], 12, ValueError,
     "regs[0] 'x': reset must be in 0..255 (fit in width 8) (got 256)"),
    ([Reg("x", "rw", reset=-1)], 12, ValueError, "regs[0] 'x': reset must be in 0..4294967295"),
    ([Reg("x", "ro", reset=1)], 12, ValueError,
     "regs[0] 'x': only rw registers have a reset value (got reset=1 for kind 'ro')"),
    ([Reg("x", "rw", doc=3)], 12, ValueError, "regs[0] 'x': doc must be a string (got 3)"),
    ([Reg("2x", "rw")], 12, ValueError, "regs[0] '2x': name must be a Python identifier"),
    ([Reg("_x", "rw")], 12, ValueError, "regs[0] '_x': name must be a Python identifier"),
    ([Reg("class", "rw")], 12, ValueError, "regs[0] 'class': name must be a Python identifier"),
    ([Reg(3, "rw")], 12, ValueError, "regs[0] 3: name must be a Python identifier"),
    ([Reg("s_axil", "rw")], 12, ValueError, "regs[0] 's_axil': name clashes with the bus member"),
    ([Reg("layout", "ro")], 12, ValueError, "regs[0] 'layout': name clashes with the bus member"),
    ([Reg("signature", "ro")], 12, ValueError, "regs[0] 'signature': name clashes"),
    ([Reg("a", "rw"), Reg("b", "rw"), Reg("c", "rw")], 3, ValueError,
     "regs[2] 'c': does not fit in addr_bits=3: needs bytes 0x8..0xb of a 8-byte address space"),
    ([Reg("a", "rw"), Reg("c", "counter")], 3, ValueError,
     "regs[1] 'c': does not fit in addr_bits=3"),
    ([Reg(f"r{i}", "rw") for i in range(1025)], 12, ValueError,
     "regs[1024] 'r1024': does not fit in addr_bits=12"),
    ([], 12, ValueError, "regs: must hold at least one register"),
    ([Reg("a", "rw")], 1, ValueError, "addr_bits: must be an integer in 2..32 (got 1)"),
    ([Reg("a", "rw")], 33, ValueError, "addr_bits: must be an integer in 2..32 (got 33)"),
    ([Reg("a", "rw")], 12.0, ValueError, "addr_bits: must be an integer in 2..32 (got 12.0)"),
    ([("a", "rw")], 12, TypeError, "regs[0]: must be a Reg"),
    ("ab", 12, TypeError, "regs: must be a list of Reg"),
]


@pytest.mark.parametrize("regs,addr_bits,exc,message", BAD_BANKS)
def test_constructor_validation(regs, addr_bits, exc, message):
    with pytest.raises(exc) as info:
        CsrBank(regs, addr_bits=addr_bits)
    assert str(info.value).startswith(message), str(info.value)


def test_largest_bank_fits():
    regs = [Reg(f"r{i}", "rw") for i in range(1024)]
    dut = CsrBank(regs)
    assert dut.address_of("r1023") == 0xFFC
    Fragment.get(dut, None)   # elaborates
