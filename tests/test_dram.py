"""Unit tests of rtl/dram.py: the AXI4 DMA against a checking AXI4 slave memory model."""

import random
from collections import deque

import pytest
from amaranth.hdl import Fragment
from amaranth.lib import wiring

from rtl.axi import AXI_BURST_INCR, AXI_RESP_DECERR, AXI_RESP_OKAY, AXI_RESP_SLVERR
from rtl.config import preset
from rtl.dram import Dma
from tests.simutil import Stalls, check_registered_outputs, run_sim, stream_get, stream_put

PAGE = 4096


def initial_word(word, bits):
    """Contents of never-written memory: a hash of the word index."""
    return (word * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % (1 << 64) * 0x10001 % (1 << bits)


def error_word(word, bits):
    """What the slave returns on an R beat that carries an error response."""
    return (0xDEADBEEF ^ word) * 0x100000001 % (1 << bits)


class AxiSlaveModel:
    """AXI4 slave memory for the Amaranth simulator that checks the master's side of the protocol.

    Every channel stalls at random (``stall`` is the chance of an idle cycle); reads and write
    responses come back after a random latency of ``latency`` cycles (an upper bound, or a
    ``(lo, hi)`` range). Bytes in one of the ``err_ranges`` ``(lo, hi, resp)`` answer ``resp``
    on R (the beat carries :func:`error_word`) and make the B response of any burst touching
    them ``resp`` (those beats are not written). With ``w_before_aw`` the slave accepts W beats
    before their AW, otherwise only after it; with ``aw_waits_for_w`` it takes an AW only once
    all of that burst's W beats are in (legal: a slave may wait for WVALID before AWREADY).
    Read bursts whose index (0-based, in AR order) is in ``short_rlast`` get ``rlast`` low on
    their final beat.

    Checked on every cycle: INCR, full-width size, ID 0, aligned address, at most ``max_burst``
    beats, no 4 KiB crossing, full strobes, ``wlast`` exactly on the final beat, AW/W/AR valid
    and payload held until accepted, at most ``max_outstanding`` read bursts and write bursts
    in flight (the peaks reached are kept in ``peak_reads`` / ``peak_writes``).
    """

    def __init__(self, dut, cfg, rng, *, stall=0.0, latency=0, err_ranges=(), w_before_aw=True,
                 aw_waits_for_w=False, short_rlast=()):
        assert w_before_aw or not aw_waits_for_w
        self.axi = dut.m_axi
        self.bits = cfg.dram_data_bits
        self.nbytes = cfg.dram_bytes
        self.shift = self.nbytes.bit_length() - 1
        self.max_burst = dut.max_burst
        self.max_outstanding = dut.max_outstanding
        self.rng = rng
        self.stall = stall
        self.latency = latency if isinstance(latency, tuple) else (0, latency)
        self.aw_waits_for_w = aw_waits_for_w
        self.peak_reads = self.peak_writes = 0
        self.err_ranges = list(err_ranges)
        self.w_before_aw = w_before_aw
        self.short_rlast = set(short_rlast)
        self.mem = {}
        self.bursts = []          # ("r" | "w", byte address, beats) in handshake order
        self.any_valid = False    # an AW, W or AR valid was ever seen
        self.cycle = 0

    def read(self, word):
        return self.mem.get(word, initial_word(word, self.bits))

    def resp(self, byte_addr):
        for lo, hi, resp in self.err_ranges:
            if lo <= byte_addr < hi:
                return resp
        return AXI_RESP_OKAY

    def _check_burst(self, kind, addr, length, size, burst, ident):
        beats = length + 1
        where = f"{kind} burst at {addr:#x} of {beats} beats"
        assert burst == AXI_BURST_INCR, f"{where}: burst type {burst}"
        assert size == self.shift, f"{where}: size {size}"
        assert ident == 0, f"{where}: id {ident}"
        assert addr % self.nbytes == 0, f"{where}: misaligned"
        assert beats <= self.max_burst, f"{where}: longer than max_burst={self.max_burst}"
        assert addr % PAGE + beats * self.nbytes <= PAGE, f"{where}: crosses a 4 KiB boundary"
        self.bursts.append((kind, addr, beats))

    def _idle(self):
        return self.rng.random() < self.stall

    def _later(self):
        return self.cycle + self.rng.randint(*self.latency)

    async def run(self, ctx):
        axi = self.axi
        outs = [axi.awvalid, axi.awaddr, axi.awlen, axi.awsize, axi.awburst, axi.awid,
                axi.wvalid, axi.wdata, axi.wstrb, axi.wlast, axi.bready,
                axi.arvalid, axi.araddr, axi.arlen, axi.arsize, axi.arburst, axi.arid, axi.rready]
        strb_all = (1 << self.nbytes) - 1
        aw_pending = deque()      # accepted AW bursts still collecting W beats: (addr, beats)
        w_beats = deque()         # accepted W beats not yet matched with their AW: (data, last)
        b_queue = deque()         # (due cycle, resp)
        b_wait = 0                # AW accepted whose B has not been taken
        ar_queue = deque()        # accepted AR: [due cycle, addr, beats, next beat, index]
        ar_count = 0
        held = {"aw": None, "w": None, "ar": None}  # payload offered but not taken last cycle
        b_cur = r_cur = None
        while True:
            self.cycle += 1
            w_need = sum(beats for _, beats in aw_pending) - len(w_beats)
            awready = not self._idle()
            if self.aw_waits_for_w:   # awlen only changes on clock edges: safe to peek
                awready = awready and -w_need >= ctx.get(axi.awlen) + 1
            wready = not self._idle() and (
                w_need > 0 or (self.w_before_aw and -w_need < self.max_burst + 8))
            arready = not self._idle()
            if b_cur is None and b_queue and b_queue[0][0] <= self.cycle and not self._idle():
                b_cur = b_queue.popleft()[1]
            if r_cur is None and ar_queue and ar_queue[0][0] <= self.cycle and not self._idle():
                _, addr, beats, beat, index = ar_queue[0]
                byte_addr = addr + beat * self.nbytes
                word = byte_addr // self.nbytes
                resp = self.resp(byte_addr)
                last = beat == beats - 1 and index not in self.short_rlast
                r_cur = (error_word(word, self.bits) if resp else self.read(word), resp, last)
            ctx.set(axi.awready, awready)
            ctx.set(axi.wready, wready)
            ctx.set(axi.arready, arready)
            ctx.set(axi.bvalid, b_cur is not None)
            ctx.set(axi.bresp, b_cur or 0)
            ctx.set(axi.rvalid, r_cur is not None)
            if r_cur is not None:
                ctx.set(axi.rdata, r_cur[0])
                ctx.set(axi.rresp, r_cur[1])
                ctx.set(axi.rlast, r_cur[2])
            (_, _, awvalid, awaddr, awlen, awsize, awburst, awid, wvalid, wdata, wstrb, wlast,
             bready, arvalid, araddr, arlen, arsize, arburst, arid, rready) = \
                await ctx.tick().sample(*outs)

            # Valid and payload are held until the handshake.
            offered = {"aw": (awvalid, (awaddr, awlen, awsize, awburst, awid), awready),
                       "w": (wvalid, (wdata, wstrb, wlast), wready),
                       "ar": (arvalid, (araddr, arlen, arsize, arburst, arid), arready)}
            for ch, (valid, payload, ready) in offered.items():
                if held[ch] is not None:
                    assert valid and payload == held[ch], f"{ch} valid/payload dropped before ready"
                held[ch] = payload if valid and not ready else None
                self.any_valid |= bool(valid)

            if awvalid and awready:
                self._check_burst("w", awaddr, awlen, awsize, awburst, awid)
                aw_pending.append((awaddr, awlen + 1))
                b_wait += 1
                self.peak_writes = max(self.peak_writes, b_wait)
                assert b_wait <= self.max_outstanding, "too many write bursts in flight"
            if wvalid and wready:
                assert wstrb == strb_all, f"wstrb {wstrb:#x}"
                w_beats.append((wdata, wlast))
            while aw_pending and len(w_beats) >= aw_pending[0][1]:
                addr, beats = aw_pending.popleft()
                resp = AXI_RESP_OKAY
                for i in range(beats):
                    data, last = w_beats.popleft()
                    assert last == (i == beats - 1), \
                        f"wlast={last} on beat {i} of {beats} at {addr:#x}"
                    byte_addr = addr + i * self.nbytes
                    if self.resp(byte_addr):
                        resp = resp or self.resp(byte_addr)
                    else:
                        self.mem[byte_addr // self.nbytes] = data
                b_queue.append((self._later(), resp))
            if b_cur is not None and bready:
                b_cur = None
                b_wait -= 1

            if arvalid and arready:
                self._check_burst("r", araddr, arlen, arsize, arburst, arid)
                ar_queue.append([self._later(), araddr, arlen + 1, 0, ar_count])
                ar_count += 1
                self.peak_reads = max(self.peak_reads, len(ar_queue))
                assert len(ar_queue) <= self.max_outstanding, "too many read bursts in flight"
            if r_cur is not None and rready:
                r_cur = None
                head = ar_queue[0]
                head[3] += 1
                if head[3] == head[2]:
                    ar_queue.popleft()


# Golden model ------------------------------------------------------------------------------------

def cmd_addrs(cfg, cmd):
    """Byte addresses of a command's words in transfer order."""
    mask = (1 << cfg.dram_addr_bits) - 1
    for r in range(cmd["rows"]):
        row = (cmd["addr"] + r * cmd["stride"]) & mask
        for w in range(cmd["row_words"]):
            yield (row + w * cfg.dram_bytes) & mask


def cmd_bursts(cfg, cmd, max_burst):
    """The bursts ``(kind, byte address, beats)`` a command splits into: per row, bursts as long
    as ``max_burst`` allows, cut at the row's end and at every 4 KiB boundary."""
    mask, nbytes = (1 << cfg.dram_addr_bits) - 1, cfg.dram_bytes
    for r in range(cmd["rows"]):
        addr, left = (cmd["addr"] + r * cmd["stride"]) & mask, cmd["row_words"]
        while left:
            beats = min(left, max_burst, (PAGE - addr % PAGE) // nbytes)
            yield "w" if cmd["write"] else "r", addr, beats
            addr, left = (addr + beats * nbytes) & mask, left - beats


def is_bad(cfg, cmd):
    return (cmd["addr"] % cfg.dram_bytes or cmd["stride"] % cfg.dram_bytes
            or cmd["rows"] == 0 or cmd["row_words"] == 0)


class Job:
    """One command with its write data and the expected read data, done token and bytes."""

    def __init__(self, cfg, cmd, slave, gmem, rng):
        self.cmd = cmd
        bits, nbytes = cfg.dram_data_bits, cfg.dram_bytes
        self.bad = bool(is_bad(cfg, cmd))
        addrs = [] if self.bad else list(cmd_addrs(cfg, cmd))
        self.error = bool(self.bad or any(slave.resp(a) for a in addrs))
        self.wdata, self.rdata = [], []
        if cmd["write"]:
            self.wdata = [rng.getrandbits(bits) for _ in addrs]
            for a, d in zip(addrs, self.wdata):
                if not slave.resp(a):
                    gmem[a // nbytes] = d
        else:
            self.rdata = [error_word(a // nbytes, bits) if slave.resp(a)
                          else gmem.get(a // nbytes, initial_word(a // nbytes, bits))
                          for a in addrs]
        self.nbytes = len(addrs) * nbytes


def run_jobs(cfg, dut, slave, cmds, *, seed=0, stall=0.3, deadline=None, after=None,
             errors=None, done_delay=0, monitors=()):
    """Drive ``cmds`` through ``dut`` against ``slave`` with random stream stalls; check everything.

    ``errors`` overrides the expected error flags of the done tokens (default: from the slave's
    error ranges); ``done_delay`` cycles pass before ``o_done`` is first drained; ``after(ctx,
    status)`` runs at the end. Returns the jobs and the status sampled after the last token.
    """
    rng = random.Random(seed)
    gmem = {}
    jobs = [Job(cfg, cmd, slave, gmem, rng) for cmd in cmds]
    for job, error in zip(jobs, errors or ()):
        job.error = error
    status = {}

    def stalls():
        return Stalls(rng, stall)

    async def commands(ctx):
        st = stalls()
        for job in jobs:
            await stream_put(ctx, dut.i_cmd, job.cmd, st)

    async def wdata(ctx):
        st = stalls()
        for job in jobs:
            for d in job.wdata:
                await stream_put(ctx, dut.i_wdata, d, st)

    async def rdata(ctx):
        st = stalls()
        for n, job in enumerate(jobs):
            for i, expected in enumerate(job.rdata):
                got = await stream_get(ctx, dut.o_rdata, st)
                assert got.data == expected, \
                    f"command {n} {job.cmd}: word {i} is {got.data:#x}, expected {expected:#x}"
                assert got.last == (i == len(job.rdata) - 1), f"command {n}: last on word {i}"

    async def done(ctx):
        st = stalls()
        for _ in range(done_delay):
            await ctx.tick()
        for n, job in enumerate(jobs):
            token = await stream_get(ctx, dut.o_done, st)
            assert (token.write, token.error) == (job.cmd["write"], job.error), \
                f"command {n} {job.cmd}: done token {token}"
        for _ in range(3):
            await ctx.tick()
        for name in ("busy", "error", "bytes_read", "bytes_written",
                     "o_rdata.valid", "o_done.valid", "m_axi.arvalid", "m_axi.awvalid",
                     "m_axi.wvalid"):
            obj = dut
            for part in name.split("."):
                obj = getattr(obj, part)
            status[name] = ctx.get(obj)
        if after is not None:
            await after(ctx, status)

    words = sum(len(j.rdata) + len(j.wdata) + 10 for j in jobs)
    deadline = deadline or 8 * words + 2_000 + done_delay   # measured: at most 3 cycles/word
    run_sim(dut, commands, wdata, rdata, done, monitors=[slave.run, *monitors],
            deadline_cycles=deadline)
    return jobs, status


def check_final(cfg, slave, jobs, status):
    """Memory equals the golden model; counters, sticky error and idle state are as expected."""
    gmem = {}
    for job in jobs:
        if job.cmd["write"] and not job.bad:
            for a, d in zip(cmd_addrs(cfg, job.cmd), job.wdata):
                if not slave.resp(a):
                    gmem[a // cfg.dram_bytes] = d
    assert slave.mem == gmem
    good = [j for j in jobs if not j.bad]
    assert status["bytes_read"] == sum(j.nbytes for j in good if not j.cmd["write"])
    assert status["bytes_written"] == sum(j.nbytes for j in good if j.cmd["write"])
    assert status["error"] == any(j.error for j in jobs)
    assert status["busy"] == 0
    for name in ("o_rdata.valid", "o_done.valid", "m_axi.arvalid", "m_axi.awvalid",
                 "m_axi.wvalid"):
        assert status[name] == 0, f"{name} still high when idle"


# Commands ----------------------------------------------------------------------------------------

def simple(write, addr, row_words, rows=1, stride=0):
    return {"write": write, "addr": addr, "row_words": row_words, "rows": rows, "stride": stride}


def random_cmd(cfg, rng, max_burst, window, bad_prob=0.0):
    nbytes = cfg.dram_bytes
    mask = (1 << cfg.dram_addr_bits) - 1
    page_words = PAGE // nbytes
    r = rng.random()
    if r < 0.35:
        row_words = rng.randint(1, 4)
    elif r < 0.8:
        row_words = rng.randint(1, min(2 * max_burst + 3, page_words + 8, 64))
    else:
        row_words = rng.randint(max_burst, min(int(2.5 * max_burst) + 2, 2 * page_words, 300))
    rows = rng.choice([1, 1, 2, 3, 4])
    if rng.random() < 0.4:   # start shortly before a 4 KiB boundary
        addr = rng.randrange(PAGE, window, PAGE) - nbytes * rng.randint(1, min(page_words, 40))
    else:
        addr = rng.randrange(0, window, nbytes)
    r = rng.random()
    if r < 0.1:
        stride = 0                                              # the same row again
    elif r < 0.2:
        stride = -nbytes * rng.randint(1, 2 * row_words) & mask  # rows going down (wraps)
    elif r < 0.35:
        stride = nbytes * rng.randint(1, row_words)             # overlapping rows
    else:
        stride = row_words * nbytes + nbytes * rng.randint(0, 8)
    if rng.random() < 0.05:                                     # wraps at the top of memory
        addr = (mask + 1 - nbytes * rng.randint(1, 20)) & mask
    cmd = {"write": rng.random() < 0.5, "addr": addr, "row_words": row_words, "rows": rows,
           "stride": stride}
    if rng.random() < bad_prob:
        kind = rng.randrange(4)
        if kind == 0:
            cmd["addr"] |= rng.randint(1, nbytes - 1)
        elif kind == 1:
            cmd["stride"] |= rng.randint(1, nbytes - 1)
        elif kind == 2:
            cmd["rows"] = 0
        else:
            cmd["row_words"] = 0
    return cmd


RANDOM_CASES = {
    # name: (data bits, max_burst, max_outstanding, commands, slave options)
    "32b-burst16": (32, 16, 2, 40, dict(stall=0.3, latency=6)),
    "64b-burst256": (64, 256, 4, 14, dict(stall=0.2, latency=12, w_before_aw=False)),
    "64b-burst8-errors": (64, 8, 3, 40, dict(stall=0.3, latency=4, err_ranges=[
        (0x1F80, 0x2010, AXI_RESP_SLVERR), (0x3000, 0x3040, AXI_RESP_DECERR)])),
    "128b-burst4": (128, 4, 1, 24, dict(stall=0.3, latency=3)),
    "32b-burst5-aw-after-w": (32, 5, 3, 24, dict(stall=0.3, latency=5, aw_waits_for_w=True)),
    "64b-burst1": (64, 1, 2, 12, dict(stall=0.3, latency=2)),
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", sorted(RANDOM_CASES))
def test_dma_random_commands(case, seed):
    bits, max_burst, outstanding, n, slave_opts = RANDOM_CASES[case]
    cfg = preset("tiny").replace(dram_data_bits=bits, glb_bytes=16 * 1024)
    seed = sum(map(ord, case)) + 1000 * seed
    rng = random.Random(seed)
    dut = Dma(cfg, max_burst=max_burst, max_outstanding=outstanding)
    slave = AxiSlaveModel(dut, cfg, random.Random(seed + 1), **slave_opts)
    cmds = [random_cmd(cfg, rng, max_burst, 4 * PAGE, bad_prob=0.05) for _ in range(n)]
    # Always: a row with full-length bursts straddling two 4 KiB boundaries (a whole page in
    # between), written then read back.
    long_row = simple(1, 2 * PAGE - 5 * cfg.dram_bytes,
                      PAGE // cfg.dram_bytes + 2 * max_burst + 3)
    cmds[n // 3:n // 3] = [long_row, {**long_row, "write": 0}]
    jobs, status = run_jobs(cfg, dut, slave, cmds, seed=seed + 2)
    check_final(cfg, slave, jobs, status)
    # Every command split exactly as documented (longest bursts, cut at rows and 4 KiB pages).
    assert slave.bursts == [b for j in jobs if not j.bad for b in cmd_bursts(cfg, j.cmd, max_burst)]
    # The run exercised what it is meant to exercise.
    lengths = [beats for _, _, beats in slave.bursts]
    assert max(lengths) == min(max_burst, PAGE // cfg.dram_bytes)
    assert any(addr % PAGE + beats * cfg.dram_bytes == PAGE for _, addr, beats in slave.bursts)
    assert {"r", "w"} <= {kind for kind, _, _ in slave.bursts}
    if slave.err_ranges:
        assert any(j.error and not j.bad for j in jobs)


def test_dma_read_error_completes():
    """SLVERR/DECERR beats are consumed and delivered; the command's token has error=1."""
    cfg = preset("tiny")   # 32-bit bus
    dut = Dma(cfg, max_burst=4, max_outstanding=2)
    slave = AxiSlaveModel(dut, cfg, random.Random(3), stall=0.3, latency=3,
                          err_ranges=[(0x108, 0x10C, AXI_RESP_SLVERR),
                                      (0x208, 0x210, AXI_RESP_DECERR)])
    cmds = [simple(0, 0x100, 10), simple(0, 0x300, 6), simple(0, 0x200, 3, rows=2, stride=8),
            simple(0, 0x400, 1), simple(0, 0x100, 3), simple(0, 0x20C, 1), simple(0, 0x400, 2)]
    jobs, status = run_jobs(cfg, dut, slave, cmds, seed=4)
    # error in the middle, none, across two rows, none, on the last word, on the only word, none
    assert [j.error for j in jobs] == [True, False, True, False, True, True, False]
    check_final(cfg, slave, jobs, status)
    assert status["bytes_read"] == 4 * (10 + 6 + 6 + 1 + 3 + 1 + 2)


def test_dma_write_error_completes():
    """A SLVERR B response fails the command but every W beat is still sent."""
    cfg = preset("tiny")
    dut = Dma(cfg, max_burst=4, max_outstanding=2)
    slave = AxiSlaveModel(dut, cfg, random.Random(5), stall=0.3, latency=3,
                          err_ranges=[(0x110, 0x114, AXI_RESP_SLVERR)])
    cmds = [simple(1, 0x100, 12), simple(1, 0x200, 5), simple(0, 0x100, 12),
            simple(1, 0x0FC, 1, rows=3, stride=0x14), simple(1, 0x110, 1), simple(1, 0x104, 4),
            simple(1, 0x300, 2)]
    jobs, status = run_jobs(cfg, dut, slave, cmds, seed=6)
    # error in the middle burst, none, (the read sees it too), middle row, only burst, last
    # burst, none
    assert [j.error for j in jobs] == [True, False, True, True, True, True, False]
    check_final(cfg, slave, jobs, status)
    assert status["bytes_written"] == 4 * (12 + 5 + 3 + 1 + 4 + 2)
    assert sum(beats for kind, _, beats in slave.bursts if kind == "w") == 12 + 5 + 3 + 1 + 4 + 2


def test_dma_rlast_mismatch_is_an_error():
    """A read burst whose rlast is missing on its final beat fails its command, nothing hangs."""
    cfg = preset("tiny")
    dut = Dma(cfg, max_burst=4, max_outstanding=2)
    # bursts: 0x40 (3 beats) | 0x80, 0x90 (4 + 4) | 0xC0 (2): the second command's first burst
    slave = AxiSlaveModel(dut, cfg, random.Random(7), stall=0.2, short_rlast={1})
    jobs, status = run_jobs(cfg, dut, slave, [simple(0, 0x40, 3), simple(0, 0x80, 8),
                                              simple(0, 0xC0, 2)], seed=8,
                            errors=[False, True, False])
    check_final(cfg, slave, jobs, status)


@pytest.mark.parametrize("kind", ["addr", "stride", "rows", "row_words"])
@pytest.mark.parametrize("write", [0, 1])
def test_dma_bad_command_rejected_without_bus_traffic(kind, write):
    cfg = preset("tiny").replace(dram_data_bits=64)
    dut = Dma(cfg, max_burst=8, max_outstanding=2)
    slave = AxiSlaveModel(dut, cfg, random.Random(9), stall=0.3)
    bad = simple(write, 0x100, 4, rows=2, stride=0x40)
    bad[kind] = {"addr": 0x104, "stride": 0x42, "rows": 0, "row_words": 0}[kind]
    jobs, status = run_jobs(cfg, dut, slave, [bad, bad], seed=10)
    assert [j.error for j in jobs] == [True, True]
    assert not slave.any_valid, "a rejected command touched the bus"
    check_final(cfg, slave, jobs, status)


def test_dma_bad_command_between_good_ones():
    """A rejected command waits for the earlier tokens and does not disturb the later commands."""
    cfg = preset("tiny").replace(dram_data_bits=64)
    dut = Dma(cfg, max_burst=8, max_outstanding=2)
    slave = AxiSlaveModel(dut, cfg, random.Random(11), stall=0.3, latency=5)
    cmds = [simple(1, 0x100, 9), simple(0, 0x100, 9), simple(1, 0x100, 9, rows=0),
            simple(0, 0x101, 1), simple(1, 0x200, 3), simple(0, 0x200, 3)]
    jobs, status = run_jobs(cfg, dut, slave, cmds, seed=12)
    assert [j.error for j in jobs] == [False, False, True, True, False, False]
    check_final(cfg, slave, jobs, status)


def test_dma_done_back_pressure():
    """o_done not drained for a long time: the DMA stalls (4 tokens held), then loses nothing."""
    cfg = preset("tiny")
    dut = Dma(cfg, max_burst=4, max_outstanding=2)
    slave = AxiSlaveModel(dut, cfg, random.Random(13), stall=0.2, latency=2)
    cmds = [simple(i % 3 == 0, 0x40 * i, 1 + i % 5) for i in range(12)]
    stalled = []

    async def probe(ctx):   # at cycle 390 of the 400-cycle delay: stuck, four tokens waiting
        for _ in range(390):
            await ctx.tick()
        stalled.append((ctx.get(dut.busy), ctx.get(dut.o_done.valid)))
        while True:
            await ctx.tick()

    jobs, status = run_jobs(cfg, dut, slave, cmds, seed=14, done_delay=400, monitors=[probe])
    check_final(cfg, slave, jobs, status)
    assert stalled == [(1, 1)]


def test_dma_clear_error_and_counters():
    cfg = preset("tiny")
    dut = Dma(cfg, max_burst=4, max_outstanding=2)
    slave = AxiSlaveModel(dut, cfg, random.Random(15), err_ranges=[(0x10, 0x14, AXI_RESP_SLVERR)])

    async def after(ctx, status):
        def state():
            return ctx.get(dut.error), ctx.get(dut.bytes_read), ctx.get(dut.bytes_written)

        assert state() == (1, 16, 8)
        ctx.set(dut.clear_error, 1)
        await ctx.tick()
        ctx.set(dut.clear_error, 0)
        assert state() == (0, 16, 8)
        ctx.set(dut.clear_counters, 1)
        await ctx.tick()
        ctx.set(dut.clear_counters, 0)
        assert state() == (0, 0, 0)
        await ctx.tick()
        assert state() == (0, 0, 0)

    jobs, status = run_jobs(cfg, dut, slave, [simple(0, 0x8, 4), simple(1, 0x40, 2)], after=after)
    assert [j.error for j in jobs] == [True, False]


def test_dma_reset_state():
    cfg = preset("tiny")
    dut = Dma(cfg)

    async def tb(ctx):
        for _ in range(3):
            await ctx.tick()
            for sig, value in [(dut.busy, 0), (dut.error, 0), (dut.bytes_read, 0),
                               (dut.bytes_written, 0), (dut.i_cmd.ready, 1), (dut.i_wdata.ready, 1),
                               (dut.o_rdata.valid, 0), (dut.o_done.valid, 0),
                               (dut.m_axi.arvalid, 0), (dut.m_axi.awvalid, 0),
                               (dut.m_axi.wvalid, 0), (dut.m_axi.rready, 0),
                               (dut.m_axi.bready, 0)]:
                assert ctx.get(sig) == value, sig.name

    run_sim(dut, tb, deadline_cycles=100)


def trace_run(dut, slave, cmd, words):
    """One command with unstalled streams; per-cycle samples of the handshakes of interest."""
    trace = []

    async def tb(ctx):
        ctx.set(dut.o_rdata.ready, 1)
        ctx.set(dut.o_done.ready, 1)
        ctx.set(dut.i_cmd.payload, cmd)
        ctx.set(dut.i_cmd.valid, 1)
        await ctx.tick().until(dut.i_cmd.ready)
        ctx.set(dut.i_cmd.valid, 0)
        await ctx.tick().until(dut.o_done.valid)

    async def wdata(ctx):
        for w in words:
            await stream_put(ctx, dut.i_wdata, w)

    async def monitor(ctx):
        axi = dut.m_axi
        while True:
            _, _, *v = await ctx.tick().sample(
                dut.i_cmd.valid & dut.i_cmd.ready, axi.arvalid, axi.awvalid,
                axi.rvalid & axi.rready, axi.wvalid & axi.wready,
                dut.o_rdata.valid, dut.o_rdata.valid & dut.o_rdata.ready)
            trace.append(v)

    run_sim(dut, tb, wdata, monitors=[slave.run, monitor], deadline_cycles=5_000)
    return list(zip(*trace))


def first(seq):
    return seq.index(1)


def test_dma_latency_and_throughput():
    """Documented latencies hold, and a long read or write moves one beat per cycle."""
    cfg = preset("tiny")
    n = 300
    dut = Dma(cfg, max_burst=32, max_outstanding=4)
    slave = AxiSlaveModel(dut, cfg, random.Random(0), latency=(6, 6))
    cmd = simple(0, 0x80, n // 2, rows=2, stride=0x1000)
    cmd_hs, arvalid, _, r_hs, _, rd_valid, rd_hs = trace_run(dut, slave, cmd, [])
    assert first(arvalid) - first(cmd_hs) == 3
    assert first(rd_valid) - first(r_hs) == 2
    assert sum(rd_hs) == n
    assert len(rd_hs) - rd_hs[::-1].index(1) - first(rd_hs) == n, "bubbles in the read data"
    assert slave.peak_reads == 4

    dut = Dma(cfg, max_burst=32, max_outstanding=4)
    slave = AxiSlaveModel(dut, cfg, random.Random(0), latency=(6, 6))
    words = list(range(n))
    cmd_hs, _, awvalid, _, w_hs, _, _ = trace_run(dut, slave, {**cmd, "write": 1}, words)
    assert first(awvalid) - first(cmd_hs) == 3
    assert sum(w_hs) == n
    assert len(w_hs) - w_hs[::-1].index(1) - first(w_hs) == n, "bubbles in the write data"
    assert [slave.mem[0x80 // 4 + i] for i in range(n // 2)] == words[:n // 2]
    assert slave.peak_writes == 4


BAD_PARAMS = [
    ({"max_burst": 0}, ValueError, "max_burst: must be an integer in 1..256 (got 0)"),
    ({"max_burst": 257}, ValueError, "max_burst: must be an integer in 1..256 (got 257)"),
    ({"max_burst": True}, ValueError, "max_burst:"),
    ({"max_burst": 16.0}, ValueError, "max_burst:"),
    ({"max_outstanding": 0}, ValueError, "max_outstanding: must be an integer in 1..64 (got 0)"),
    ({"max_outstanding": 65}, ValueError, "max_outstanding: must be an integer in 1..64 (got 65)"),
    ({"max_outstanding": "4"}, ValueError, "max_outstanding:"),
    ({"cfg": "tiny"}, TypeError, "cfg: must be an AccelConfig"),
]


@pytest.mark.parametrize("kwargs,exc,message", BAD_PARAMS)
def test_dma_constructor_validation(kwargs, exc, message):
    kwargs = {"cfg": preset("tiny"), **kwargs}
    with pytest.raises(exc) as info:
        Dma(kwargs.pop("cfg"), **kwargs)
    assert str(info.value).startswith(message)


def test_dma_signature_follows_config():
    for bits in (32, 64, 128, 256):
        cfg = preset("tiny").replace(dram_data_bits=bits, dram_addr_bits=40,
                                     glb_bytes=2 * 16 * bits)
        dut = Dma(cfg, max_burst=16)
        Fragment.get(dut, None)   # elaborates
        assert len(dut.m_axi.wdata) == bits and len(dut.m_axi.wstrb) == bits // 8
        assert len(dut.m_axi.araddr) == 40 and len(dut.i_cmd.payload.addr) == 40
        assert len(dut.o_rdata.payload.data) == bits and len(dut.i_wdata.payload) == bits


def test_dma_axi_outputs_do_not_depend_on_axi_inputs():
    """With the state fixed, changing every AXI input leaves every AXI output unchanged."""
    cfg = preset("tiny")
    dut = Dma(cfg, max_burst=4, max_outstanding=2)
    axi = dut.m_axi
    inputs = [axi.awready, axi.wready, axi.bid, axi.bresp, axi.bvalid, axi.arready, axi.rid,
              axi.rdata, axi.rresp, axi.rlast, axi.rvalid]
    outputs = [getattr(axi, name) for name, member in axi.signature.members.items()
               if member.flow == wiring.Out]
    rng = random.Random(17)

    # A plain tick loop (no `until`): commands back to back, random write data every cycle.
    async def feed(ctx):
        ctx.set(dut.o_rdata.ready, 1)
        ctx.set(dut.o_done.ready, 1)
        ctx.set(dut.i_cmd.valid, 1)
        ctx.set(dut.i_wdata.valid, 1)
        n = 0
        while True:
            ctx.set(dut.i_cmd.payload, simple(n % 2, 0x100 * n, 1 + n % 9, rows=2, stride=0x40))
            ctx.set(dut.i_wdata.payload, rng.getrandbits(32))
            _, _, cmd_taken = await ctx.tick().sample(dut.i_cmd.valid & dut.i_cmd.ready)
            n += cmd_taken

    async def check(ctx):
        moved = await check_registered_outputs(
            ctx, inputs, outputs, rng, (axi.wvalid & axi.wready) | (axi.rvalid & axi.rready))
        assert moved > 50   # the state did move around

    run_sim(dut, check, monitors=[feed], deadline_cycles=1_000)
