"""Unit tests of rtl/buffers.py: the global buffer against a Python model of its memory."""

import random
from collections import defaultdict

import pytest
from amaranth.hdl import Fragment, unsigned

from rtl.buffers import (GLB_RESP_DEPTH, GlobalBuffer, glb_addr_bits, glb_elem_bits,
                         psum_container_bits, psums_per_word)
from rtl.config import preset
from tests.simutil import Stalls, run_sim, stream_get


# Configurations: the CI preset (32-bit bus, 2 banks, 32-bit containers, one psum per word), a
# 64-bit bus with 4 banks (two psums per word), 48-bit psums in 64-bit containers on a 128-bit bus,
# and the extremes: one bank, and a 256-bit bus with 8 banks (eight psums per word). All but the
# preset are kept small (16 rows per bank) so bank and word collisions are frequent.
CONFIGS = {
    "tiny": preset("tiny"),
    "w64b4": preset("tiny").replace(dram_data_bits=64, glb_banks=4, glb_bytes=4 * 8 * 16),
    "psum48": preset("tiny").replace(psum_bits=48, dram_data_bits=128, glb_banks=2,
                                     glb_bytes=2 * 16 * 16),
    "b1": preset("tiny").replace(glb_banks=1, glb_bytes=4 * 16),
    "w256b8": preset("tiny").replace(dram_data_bits=256, glb_banks=8, glb_bytes=8 * 32 * 16),
}


class GlbModel:
    """The GLB as a list of words; the contract's semantics of every port, out-of-range included."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.words = [0] * cfg.glb_words
        self.cb = psum_container_bits(cfg)
        self.k = psums_per_word(cfg)

    def load(self, addr, value):
        if addr < len(self.words):
            self.words[addr] = value

    def read(self, addr):
        return self.words[addr] if addr < len(self.words) else 0

    def psum(self, elem, value, accumulate):
        word, j = divmod(elem, self.k)
        if word >= len(self.words):
            return
        mask = (1 << self.cb) - 1
        old = self.words[word] >> (j * self.cb) & mask
        new = ((old if accumulate else 0) + value) & mask
        self.words[word] = self.words[word] & ~(mask << (j * self.cb)) | new << (j * self.cb)

    def element(self, elem):
        """Container ``elem`` read back as a signed value."""
        word, j = divmod(elem, self.k)
        v = self.words[word] >> (j * self.cb) & ((1 << self.cb) - 1)
        return v - (1 << self.cb) if v >> (self.cb - 1) else v


async def put_checked(ctx, stream, payload, stalls=None):
    """simutil.stream_put that also checks ``ready`` does not follow ``valid`` or the payload."""
    if stalls is not None:
        await stalls.wait(ctx)
    before = ctx.get(stream.ready)
    ctx.set(stream.payload, payload)
    ctx.set(stream.valid, 1)
    assert ctx.get(stream.ready) == before, "ready depends combinationally on valid/payload"
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


class GlbDriver:
    """Runs phases of simultaneous traffic on all four GLB ports with random stalls on every stream.

    A phase is a dict of request lists: ``load`` [(addr, data)], ``store`` / ``send`` [addr],
    ``psum`` [(elem, data, accumulate)]. Ports run independently within a phase; between phases
    every driver waits until all of them are done and ``busy`` is low, which by the contract makes
    the writes of a phase visible to every port in the next. Reads return lists per phase.
    """

    PORTS = ("load", "store", "send", "psum")

    def __init__(self, cfg, stall_prob=0.3, seed=0):
        self.cfg = cfg
        self.dut = GlobalBuffer(cfg)
        self.rng = random.Random(seed)
        self.stall_prob = stall_prob
        self.stats = {"reads": 0, "writes": 0}
        self.error = None

    def stalls(self):
        return Stalls(self.rng, self.stall_prob)

    def run(self, phases, monitors=(), deadline_cycles=20_000):
        dut = self.dut
        participants = 6      # four request drivers and two response consumers
        arrived = defaultdict(int)
        opened = set()
        reads = {"store": [[] for _ in phases], "send": [[] for _ in phases]}

        async def barrier(ctx, p):
            arrived[p] += 1
            if arrived[p] == participants:
                while ctx.get(dut.busy):
                    await ctx.tick()
                opened.add(p)
            while p not in opened:
                await ctx.tick()

        async def load(ctx):
            for p, phase in enumerate(phases):
                for addr, value in phase.get("load", ()):
                    await put_checked(ctx, dut.i_load, {"addr": addr, "data": value}, self.stalls())
                await barrier(ctx, p)

        def requester(name, stream):
            async def run(ctx):
                for p, phase in enumerate(phases):
                    for addr in phase.get(name, ()):
                        await put_checked(ctx, stream, {"addr": addr}, self.stalls())
                    await barrier(ctx, p)
            return run

        def consumer(name, stream):
            async def run(ctx):
                for p, phase in enumerate(phases):
                    for _ in phase.get(name, ()):
                        reads[name][p].append((await stream_get(ctx, stream, self.stalls())).data)
                    await barrier(ctx, p)
            return run

        async def psum(ctx):
            for p, phase in enumerate(phases):
                for elem, value, acc in phase.get("psum", ()):
                    await put_checked(ctx, dut.i_psum,
                                      {"addr": elem, "data": value, "accumulate": acc},
                                      self.stalls())
                await barrier(ctx, p)

        async def finish(ctx):
            while len(opened) < len(phases):
                await ctx.tick()
            self.error = ctx.get(dut.error)

        async def stats(ctx):
            while True:
                _, _, st = await ctx.tick().sample(dut.stats)
                self.stats["reads"] += st.reads
                self.stats["writes"] += st.writes

        def held_output(stream):
            """valid and payload of an output stream stay put until the transfer."""
            async def run(ctx):
                last = None
                while True:
                    _, _, valid, ready, payload = await ctx.tick().sample(
                        stream.valid, stream.ready, stream.payload)
                    if last is not None:
                        assert valid and payload.data == last, "o_*_data dropped or changed a word"
                    last = payload.data if valid and not ready else None
            return run

        run_sim(dut, load, psum, finish,
                requester("store", dut.i_store_addr), consumer("store", dut.o_store_data),
                requester("send", dut.i_send_addr), consumer("send", dut.o_send_data),
                monitors=[stats, held_output(dut.o_store_data), held_output(dut.o_send_data),
                          *monitors],
                deadline_cycles=deadline_cycles)
        return reads


def oob_word(cfg, rng):
    return rng.randrange(cfg.glb_words, 1 << glb_addr_bits(cfg))


def oob_elem(cfg, rng):
    return rng.randrange(cfg.glb_words * psums_per_word(cfg), 1 << glb_elem_bits(cfg))


def random_psum_value(cfg, rng):
    lo, hi = -(1 << (cfg.psum_bits - 1)), (1 << (cfg.psum_bits - 1)) - 1
    return rng.choice([lo, hi, -1, 0, 1]) if rng.random() < 0.15 else rng.randint(lo, hi)


def random_phase(cfg, model, rng, n, hot, oob_prob=0.0):
    """One phase of mixed traffic whose result is defined by the per-port ordering contract.

    Load writes and psum updates go to disjoint word sets ``W`` and ``P``; reads target only words
    outside both (their values are those before the phase). ``hot`` collects words written in
    earlier phases, so reads mostly check written data. Applies the phase to ``model`` and returns
    the phase and the expected read data.
    """
    words, k, banks = cfg.glb_words, psums_per_word(cfg), cfg.glb_banks
    # Psum words: a base word, its neighbour (the next bank), a word in the same bank, a random one.
    base = rng.randrange(words)
    nxt, same_bank = (base + 1) % words, (base + banks) % words
    pwords = sorted({base, nxt, same_bank, rng.randrange(words)})
    free = [w for w in range(words) if w not in pwords]
    lwords = rng.sample(free, min(len(free) // 2, max(4, n // 4)))   # repeats likely
    stable = [w for w in range(words) if w not in pwords and w not in set(lwords)]
    stable_hot = [w for w in hot if w in set(stable)] or stable

    def maybe_oob(addr, kind):
        if rng.random() < oob_prob:
            return oob_word(cfg, rng) if kind == "word" else oob_elem(cfg, rng)
        return addr

    loads = [(maybe_oob(rng.choice(lwords), "word"), rng.getrandbits(cfg.dram_data_bits))
             for _ in range(n)]
    psums = []
    while len(psums) < n:
        word = rng.choice(pwords)
        j = rng.randrange(k)
        run = rng.randint(1, 6)
        kind = rng.random()
        for i in range(run):
            if kind < 0.5:           # the same element back to back
                elem = word * k + j
            elif kind < 0.7:         # neighbouring elements of one word
                elem = word * k + (j + i) % k
            elif kind < 0.85:        # the same element of words in adjacent banks
                elem = (base, nxt)[i % 2] * k + j
            else:                    # the same element of two words of one bank
                elem = (base, same_bank)[i % 2] * k + j
            psums.append((maybe_oob(elem, "elem"), random_psum_value(cfg, rng),
                          int(rng.random() > 0.15)))
    store = [maybe_oob(rng.choice(stable_hot if rng.random() < 0.8 else stable), "word")
             for _ in range(n)]
    send = [maybe_oob(rng.choice(stable_hot if rng.random() < 0.8 else stable), "word")
            for _ in range(n)]
    expected = {"store": [model.read(a) for a in store], "send": [model.read(a) for a in send]}
    for addr, value in loads:
        model.load(addr, value)
    for elem, value, acc in psums:
        model.psum(elem, value, acc)
    hot.update(lwords)
    hot.update(pwords)
    return {"load": loads, "store": store, "send": send, "psum": psums}, expected


def readout_phase(cfg, model):
    """Read the whole memory back, half through each read port."""
    half = cfg.glb_words // 2
    store, send = list(range(half)), list(range(half, cfg.glb_words))
    return {"store": store, "send": send}, {"store": [model.read(a) for a in store],
                                            "send": [model.read(a) for a in send]}


def expected_stats(cfg, phases):
    ok_word = lambda a: a < cfg.glb_words
    ok_elem = lambda e: e < cfg.glb_words * psums_per_word(cfg)
    reads = writes = 0
    for ph in phases:
        reads += sum(map(ok_word, ph.get("store", ()))) + sum(map(ok_word, ph.get("send", ())))
        writes += sum(ok_word(a) for a, _ in ph.get("load", ()))
        upd = sum(ok_elem(e) for e, _, _ in ph.get("psum", ()))
        reads += upd
        writes += upd
    return {"reads": reads, "writes": writes}


def run_random(cfg, seed, *, phases=5, n=100, oob_prob=0.0, stall_prob=0.3):
    rng = random.Random(seed)
    model = GlbModel(cfg)
    hot = set()
    plan, expect = [], []
    for _ in range(phases):
        ph, ex = random_phase(cfg, model, rng, n, hot, oob_prob)
        plan.append(ph)
        expect.append(ex)
    ph, ex = readout_phase(cfg, model)
    plan.append(ph)
    expect.append(ex)
    driver = GlbDriver(cfg, stall_prob=stall_prob, seed=seed)
    reads = driver.run(plan)
    for p, ex in enumerate(expect):
        for port in ("store", "send"):
            got = reads[port][p]
            bad = [(i, plan[p][port][i], hex(g), hex(e))
                   for i, (g, e) in enumerate(zip(got, ex[port])) if g != e]
            assert len(got) == len(ex[port]) and not bad, \
                f"phase {p} {port}: (index, addr, got, expected) {bad[:5]}"
    return driver, plan, model


@pytest.mark.parametrize("name,seed", [("tiny", 1), ("tiny", 2), ("w64b4", 3), ("w64b4", 4),
                                       ("psum48", 5), ("psum48", 6), ("b1", 8), ("w256b8", 9)])
def test_glb_random_traffic(name, seed):
    """All four ports at once with random stalls; read data, final contents and counters match."""
    cfg = CONFIGS[name]
    driver, plan, model = run_random(cfg, seed)
    assert driver.error == 0
    assert driver.stats == expected_stats(cfg, plan)


def test_glb_random_traffic_out_of_range():
    """Out-of-range requests in random traffic: dropped, reads give 0, error set, no hang."""
    cfg = CONFIGS["w64b4"]
    driver, plan, model = run_random(cfg, 7, oob_prob=0.1)
    assert driver.error == 1
    assert driver.stats == expected_stats(cfg, plan)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_glb_psum_accumulation_chains(name):
    """Long back-to-back accumulations into one element and its neighbours, no stalls."""
    cfg = CONFIGS[name]
    rng = random.Random(11)
    k, banks = psums_per_word(cfg), cfg.glb_banks
    model = GlbModel(cfg)
    elems = [3 * k, 3 * k + k - 1, (3 + banks) * k, 4 * k]   # word 3 (both ends), same bank, next
    psums = [(e, random_psum_value(cfg, rng), 0) for e in elems]
    for _ in range(4):
        e = rng.choice(elems)
        psums += [(e, random_psum_value(cfg, rng), 1) for _ in range(rng.randint(8, 20))]
        psums += [(rng.choice(elems), random_psum_value(cfg, rng), 1) for _ in range(20)]
    for e, v, a in psums:
        model.psum(e, v, a)
    words = sorted({e // k for e in elems})
    reads = GlbDriver(cfg, stall_prob=0.0).run([{"psum": psums}, {"store": words}])
    assert reads["store"][1] == [model.read(w) for w in words]
    # and the element view: sign-extended containers
    for e in elems:
        word, j = divmod(e, k)
        cb = psum_container_bits(cfg)
        got = reads["store"][1][words.index(word)] >> (j * cb) & ((1 << cb) - 1)
        got -= (1 << cb) if got >> (cb - 1) else 0
        assert got == model.element(e)


def test_glb_psum_sum_exceeding_psum_bits():
    """With 64-bit containers, sums beyond psum_bits are kept exactly (wrap only at 64 bits)."""
    cfg = CONFIGS["psum48"]
    big = (1 << 47) - 1
    model = GlbModel(cfg)
    psums = [(5, big, 0)] + [(5, big, 1)] * 7 + [(6, -big - 1, 0)] + [(6, -big - 1, 1)] * 3
    for p in psums:
        model.psum(*p)
    assert model.element(5) == 8 * big and model.element(6) == -4 * (big + 1)
    reads = GlbDriver(cfg, stall_prob=0.2, seed=3).run([{"psum": psums}, {"store": [2, 3]}])
    assert reads["store"][1] == [model.read(2), model.read(3)]


def handshake_trace(dut, cycles_out):
    """A monitor recording per cycle: handshakes of every port, output valids and stats."""
    streams = {"load": dut.i_load, "store": dut.i_store_addr, "send": dut.i_send_addr,
               "psum": dut.i_psum, "store_data": dut.o_store_data, "send_data": dut.o_send_data}

    async def run(ctx):
        cycle = 0
        names = list(streams)
        while True:
            _, _, *vals = await ctx.tick().sample(*[s.valid for s in streams.values()],
                                                  *[s.ready for s in streams.values()], dut.stats)
            n = len(names)
            cycles_out.append({"cycle": cycle, "reads": vals[-1].reads, "writes": vals[-1].writes,
                               **{names[i]: bool(vals[i] and vals[n + i]) for i in range(n)},
                               **{names[i] + "_valid": bool(vals[i]) for i in range(n)}})
            cycle += 1
    return run


def test_glb_throughput_all_ports():
    """No conflicts, no stalls: every port takes one request per cycle, reads return in 3 cycles.

    Four banks: loads to bank 0, store reads bank 1, send reads bank 2, psum updates (runs on the
    same element and on neighbouring elements) bank 3.
    """
    cfg = CONFIGS["w64b4"]
    k, n = psums_per_word(cfg), 48
    rng = random.Random(5)
    model = GlbModel(cfg)
    init = [(a, rng.getrandbits(64)) for a in range(cfg.glb_words)]
    for a, v in init:
        model.load(a, v)
    loads = [(4 * rng.randrange(16), rng.getrandbits(64)) for _ in range(n)]
    store = [4 * rng.randrange(16) + 1 for _ in range(n)]
    send = [4 * rng.randrange(16) + 2 for _ in range(n)]
    psums = [((4 * (i // 8) + 3) * k + (i // 2) % k, rng.randint(-999, 999), 1) for i in range(n)]
    expected = {"store": [model.read(a) for a in store], "send": [model.read(a) for a in send]}
    for a, v in loads:
        model.load(a, v)
    for p in psums:
        model.psum(*p)
    driver = GlbDriver(cfg, stall_prob=0.0)
    trace = []
    phases = [{"load": init}, {"load": loads, "store": store, "send": send, "psum": psums},
              readout_phase(cfg, model)[0]]
    reads = driver.run(phases, monitors=[handshake_trace(driver.dut, trace)])
    assert reads["store"][1] == expected["store"] and reads["send"][1] == expected["send"]
    assert reads["store"][2] + reads["send"][2] == model.words
    start = max(t["cycle"] for t in trace if t["load"]) - n + 1   # phase 1 is the last load run
    first = {}
    for port in ("load", "store", "send", "psum"):
        cyc = [t["cycle"] for t in trace if t[port] and t["cycle"] >= start - 1][:n]
        assert cyc == list(range(cyc[0], cyc[0] + n)), f"{port}: not one request per cycle"
        first[port] = cyc[0]
    for port in ("store", "send"):
        out = [t["cycle"] for t in trace if t[port + "_data"] and t["cycle"] >= first[port]][:n]
        assert out == list(range(first[port] + 3, first[port] + 3 + n)), f"{port}: latency"
    # all four ports under way (a psum update's write-back comes 3 cycles after its handshake)
    steady = [t for t in trace if max(first.values()) + 3 <= t["cycle"] < min(first.values()) + n]
    assert len(steady) >= n - 4
    assert all(t["reads"] == 3 and t["writes"] == 2 for t in steady)


@pytest.mark.parametrize("port,expected", [
    # per cycle t+1 .. t+4 after the handshake in cycle t: (busy, stats.reads, stats.writes, o_valid)
    ("load", [(1, 0, 1, 0), (0, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0)]),
    ("store", [(1, 1, 0, 0), (0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 0, 1)]),
    ("psum", [(1, 1, 0, 0), (1, 0, 0, 0), (1, 0, 1, 0), (0, 0, 0, 0)]),
    ("oob_store", [(1, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 1), (0, 0, 0, 1)]),
])
def test_glb_single_request_timing(port, expected):
    """The documented latencies of a lone request, ``busy`` until it is performed, the strobes."""
    cfg = CONFIGS["w64b4"]
    dut = GlobalBuffer(cfg)
    stream, payload = {
        "load": (dut.i_load, {"addr": 9, "data": 5}),
        "store": (dut.i_store_addr, {"addr": 9}),
        "psum": (dut.i_psum, {"addr": 9, "data": 5, "accumulate": 1}),
        "oob_store": (dut.i_store_addr, {"addr": cfg.glb_words}),
    }[port]
    seen = []

    async def bench(ctx):
        await ctx.tick()
        assert ctx.get(stream.ready) and not ctx.get(dut.busy)
        ctx.set(stream.payload, payload)
        ctx.set(stream.valid, 1)
        await ctx.tick()                      # the handshake (cycle t)
        ctx.set(stream.valid, 0)
        for _ in expected:
            st = ctx.get(dut.stats)
            seen.append((ctx.get(dut.busy), st.reads, st.writes, ctx.get(dut.o_store_data.valid)))
            await ctx.tick()

    run_sim(dut, bench, deadline_cycles=50)
    assert seen == expected


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("offset", range(-1, 6))
def test_glb_load_during_psum_updates_is_atomic(name, offset):
    """A load to the word two back-to-back psum updates are working on, handshaked from one cycle
    before the first update to five after (so it lands before a read, with it, in a capture
    cycle, is held back by the write-backs, or comes after both): the word ends as the order of
    the three requests the documented timing gives, never with the load lost or an update
    applied to the word as it was before the load."""
    cfg = CONFIGS[name]
    dut = GlobalBuffer(cfg)
    k, cb, word = psums_per_word(cfg), psum_container_bits(cfg), 5
    elem = word * k + k - 1
    old = int.from_bytes(bytes(range(1, cfg.dram_data_bits // 8 + 1)), "little")
    new = old ^ ((1 << cfg.dram_data_bits) - 1)
    values = (-77, 1 << (min(cb, cfg.psum_bits) - 3))

    def after(load_at):
        """The word if the load lands after ``load_at`` of the two updates (0, 1 or 2)."""
        model = GlbModel(cfg)
        model.load(word, old)
        for i, v in enumerate(values):
            if i == load_at:
                model.load(word, new)
            model.psum(elem, v, 1)
        if load_at == 2:
            model.load(word, new)
        return model.read(word)

    orders = [after(n) for n in range(3)]
    got = []

    async def bench(ctx):
        await put_checked(ctx, dut.i_load, {"addr": word, "data": old})
        ctx.set(dut.i_load.payload, {"addr": word, "data": new})
        for cycle in range(-1, max(offset, 1) + 1):
            # updates handshake in cycles 0 and 1 (reads in 1 and 2, write-backs in 3 and 4)
            ctx.set(dut.i_psum.valid, cycle in (0, 1))
            ctx.set(dut.i_psum.payload, {"addr": elem, "data": values[min(max(cycle, 0), 1)],
                                         "accumulate": 1})
            ctx.set(dut.i_load.valid, cycle == offset)
            for stream, at in ((dut.i_psum, 0), (dut.i_psum, 1), (dut.i_load, offset)):
                if cycle == at:
                    assert ctx.get(stream.ready), (stream, cycle)
            await ctx.tick()
        ctx.set(dut.i_load.valid, 0)
        ctx.set(dut.i_psum.valid, 0)
        await ctx.tick().until(~dut.busy)
        await put_checked(ctx, dut.i_store_addr, {"addr": word})
        got.append((await stream_get(ctx, dut.o_store_data)).data)

    run_sim(dut, bench, deadline_cycles=100)
    assert len(set(orders)) == 3, [hex(o) for o in orders]
    # the load is written at the end of cycle offset+1 unless a write-back holds its bank's
    # write port (cycles 3 and 4, so a load handshaked in 2 or 3 lands in 5); an update sees
    # every write up to its capture cycle (2 or 3): before both, or after both
    expected = 0 if offset <= 1 else 2
    assert got[0] == orders[expected], (hex(got[0]), [hex(o) for o in orders])


def test_glb_read_backpressure():
    """A stalled consumer: the port takes GLB_RESP_DEPTH + 1 addresses, then holds; no word lost."""
    cfg = CONFIGS["tiny"]
    dut = GlobalBuffer(cfg)
    got = []

    async def bench(ctx):
        for a in range(8):
            await put_checked(ctx, dut.i_load, {"addr": a, "data": 1000 + a})
        ctx.set(dut.i_store_addr.valid, 1)
        n = 0
        for _ in range(30):   # consumer stalled
            ctx.set(dut.i_store_addr.payload, {"addr": n})
            *_, ready = await ctx.tick().sample(dut.i_store_addr.valid, dut.i_store_addr.ready)
            n += ready
        ctx.set(dut.i_store_addr.valid, 0)
        ctx.set(dut.o_store_data.ready, 1)
        assert n == GLB_RESP_DEPTH + 1
        for _ in range(n):
            payload, = await ctx.tick().sample(dut.o_store_data.payload).until(
                dut.o_store_data.valid)
            got.append(payload.data)
        ctx.set(dut.o_store_data.ready, 0)

    run_sim(dut, bench, deadline_cycles=500)
    assert got == [1000 + a for a in range(GLB_RESP_DEPTH + 1)]


def hammer_one_bank(cfg, ports, window=120):
    """Hold ``valid`` on ``ports`` (all aimed at bank 0) for ``window`` cycles; count handshakes."""
    dut = GlobalBuffer(cfg)
    k, banks = psums_per_word(cfg), cfg.glb_banks
    requests = {"load": (dut.i_load, {"addr": 0, "data": 1}),
                "store": (dut.i_store_addr, {"addr": 2 * banks}),
                "send": (dut.i_send_addr, {"addr": 4 * banks}),
                "psum": (dut.i_psum, {"addr": 6 * banks * k, "data": 1, "accumulate": 1})}
    counts = dict.fromkeys(ports, 0)

    async def bench(ctx):
        ctx.set(dut.o_store_data.ready, 1)
        ctx.set(dut.o_send_data.ready, 1)
        for name in ports:
            stream, payload = requests[name]
            ctx.set(stream.payload, payload)
            ctx.set(stream.valid, 1)
        for _ in range(window):
            _, _, *taken = await ctx.tick().sample(*[requests[p][0].ready for p in ports])
            for name, t in zip(ports, taken):
                counts[name] += t

    run_sim(dut, bench, deadline_cycles=window + 10)
    return counts


@pytest.mark.parametrize("name", ["tiny", "w64b4"])
def test_glb_fairness_one_bank(name):
    """Every port hammering bank 0: round robin shares the read port, loads and psum updates share
    the write port, nobody starves."""
    cfg, window = CONFIGS[name], 120
    counts = hammer_one_bank(cfg, ["load", "store", "send", "psum"], window)
    for port in ("store", "send", "psum"):     # a third of the read port each
        assert counts[port] >= window // 3 - 2, counts
    assert counts["load"] >= window // 2, counts
    # only the two writers: psum write-backs and loads alternate on the write port
    counts = hammer_one_bank(cfg, ["load", "psum"], window)
    assert min(counts.values()) >= window // 2 - 2, counts
    # only the readers: the bank's read port is busy every cycle
    counts = hammer_one_bank(cfg, ["store", "send"], window)
    assert min(counts.values()) >= window // 2 - 2, counts


def test_glb_out_of_range_directed():
    """Each port: an out-of-range address sets error, is dropped (no aliasing), reads return 0."""
    cfg = CONFIGS["w64b4"]
    dut = GlobalBuffer(cfg)
    words, k = cfg.glb_words, psums_per_word(cfg)
    top_word, top_elem = (1 << glb_addr_bits(cfg)) - 1, (1 << glb_elem_bits(cfg)) - 1
    seen = {}

    async def read(ctx, addr):
        await put_checked(ctx, dut.i_store_addr, {"addr": addr})
        return (await stream_get(ctx, dut.o_store_data)).data

    async def settle(ctx):
        await ctx.tick()
        while ctx.get(dut.busy):
            await ctx.tick()

    async def bench(ctx):
        for a in (0, 5, words - 1):
            await put_checked(ctx, dut.i_load, {"addr": a, "data": 0x1111 * (a + 1)})
        await settle(ctx)
        seen["clean"] = ctx.get(dut.error)
        cases = [
            ("load", dut.i_load, {"addr": words, "data": 0xBAD}),
            ("load_top", dut.i_load, {"addr": words + 5, "data": 0xBAD}),
            ("psum", dut.i_psum, {"addr": words * k, "data": 7, "accumulate": 0}),
            ("psum_top", dut.i_psum, {"addr": top_elem, "data": 7, "accumulate": 1}),
        ]
        for name, stream, payload in cases:
            await put_checked(ctx, stream, payload)
            await settle(ctx)
            seen[name] = ctx.get(dut.error)
            ctx.set(dut.clear_error, 1)
            await ctx.tick()
            ctx.set(dut.clear_error, 0)
            seen[name + "_cleared"] = ctx.get(dut.error)
        for name, addr in (("store", words), ("store_top", top_word)):
            seen[name + "_data"] = await read(ctx, addr)
            seen[name] = ctx.get(dut.error)
            ctx.set(dut.clear_error, 1)
            await ctx.tick()
            ctx.set(dut.clear_error, 0)
        await put_checked(ctx, dut.i_send_addr, {"addr": top_word})
        seen["send_data"] = (await stream_get(ctx, dut.o_send_data)).data
        seen["send"] = ctx.get(dut.error)
        seen["contents"] = [await read(ctx, a) for a in (0, 5, words - 1)]

    run_sim(dut, bench, deadline_cycles=2000)
    assert seen.pop("clean") == 0
    assert seen.pop("contents") == [0x1111, 0x1111 * 6, 0x1111 * words]
    for name in ("load", "load_top", "psum", "psum_top", "store", "store_top", "send"):
        assert seen.pop(name) == 1, name
    assert set(seen.values()) == {0}, seen


def test_glb_constructor_validation():
    with pytest.raises(ValueError,
                       match=r"psum_bits.*dram_data_bits.*psum_bits=48.*dram_data_bits=32"):
        GlobalBuffer(preset("tiny").replace(psum_bits=48))
    with pytest.raises(TypeError, match="cfg"):
        GlobalBuffer({"name": "tiny"})
    # the boundary: 33-bit psums need 64-bit containers, fine on a 64-bit bus
    Fragment.get(GlobalBuffer(preset("tiny").replace(psum_bits=33, dram_data_bits=64)), None)


@pytest.mark.parametrize("fields,width", [
    (dict(psum_bits=32, dram_data_bits=32), (32, 1)),
    (dict(psum_bits=20, dram_data_bits=256), (32, 8)),
    (dict(psum_bits=33, dram_data_bits=64), (64, 1)),
    (dict(psum_bits=64, dram_data_bits=128), (64, 2)),
])
def test_glb_container_geometry(fields, width):
    cfg = preset("tiny").replace(**fields)
    assert (psum_container_bits(cfg), psums_per_word(cfg)) == width
    glb = GlobalBuffer(cfg)
    assert (glb.container_bits, glb.psums_per_word) == width
    Fragment.get(glb, None)   # elaborates


# ---- StreamSlice ---------------------------------------------------------------------------------

@pytest.mark.parametrize("seed,p_in,p_out", [(1, 0.0, 0.0), (2, 0.5, 0.0), (3, 0.0, 0.6),
                                             (4, 0.4, 0.4), (5, 0.8, 0.8)])
def test_slice_passes_every_word_in_order(seed, p_in, p_out):
    """Random stalls on both sides: the words come out in order, none lost or repeated."""
    import random

    from rtl.buffers import StreamSlice
    from tests.simutil import stream_put
    dut = StreamSlice(unsigned(12))
    rng = random.Random(seed)
    words = [rng.getrandbits(12) for _ in range(300)]
    stalls_in, stalls_out = Stalls(random.Random(seed + 1), p_in), Stalls(rng, p_out)
    got = []

    async def source(ctx):
        for w in words:
            await stream_put(ctx, dut.i, w, stalls_in)

    async def sink(ctx):
        for _ in words:
            got.append(await stream_get(ctx, dut.o, stalls_out))

    run_sim(dut, source, sink, deadline_cycles=20_000)
    assert got == words


def test_slice_full_throughput_and_one_cycle_latency():
    from rtl.buffers import StreamSlice
    dut = StreamSlice(unsigned(8))
    seen = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        for cycle in range(20):
            ctx.set(dut.i.payload, cycle)
            assert ctx.get(dut.i.ready)
            if ctx.get(dut.o.valid):
                seen.append((cycle, ctx.get(dut.o.payload)))
            await ctx.tick()

    run_sim(dut, bench)
    assert seen == [(c, c - 1) for c in range(1, 20)]   # one word a cycle, one cycle late


def test_slice_outputs_are_registered():
    """``i.ready``, ``o.valid`` and ``o.payload`` never follow ``i.*`` or ``o.ready`` within a
    cycle (the point of the slice); words do move."""
    import random

    from rtl.buffers import StreamSlice
    from tests.simutil import check_registered_outputs
    dut = StreamSlice(unsigned(16))
    moved = []

    async def bench(ctx):
        moved.append(await check_registered_outputs(
            ctx, [dut.i.valid, dut.i.payload, dut.o.ready],
            [dut.i.ready, dut.o.valid, dut.o.payload], random.Random(7),
            dut.o.valid & dut.o.ready))

    run_sim(dut, bench)
    assert moved[0] > 50
