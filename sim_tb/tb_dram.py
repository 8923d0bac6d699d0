"""cocotb bench: the DMA on generated Verilog against cocotbext-axi's AxiRam, random 2-D transfers."""

import logging
import random

import cocotb
from cocotb.triggers import RisingEdge
from cocotbext.axi import AxiBus, AxiRam

from rtl.config import AccelConfig
from rtl.dram import dma_cmd_layout, dma_done_layout, dma_rdata_layout
from sim_tb.common import StreamSink, StreamSource, load_params, start_clock, watchdog

RAM_BYTES = 1 << 16
PAGE = 4096


def pauses(rng, prob):
    """Pause generator for a cocotbext-axi channel: paused with probability ``prob`` each cycle."""
    while True:
        yield rng.random() < prob


def field(layout, raw, name):
    f = layout[name]
    return (raw >> f.offset) & ((1 << f.width) - 1)


def random_cmd(cfg, rng, max_burst):
    """A random 2-D command inside the RAM (or wrapping at the top of the address space)."""
    nbytes = cfg.dram_bytes
    mask = (1 << cfg.dram_addr_bits) - 1
    row_words = rng.choice([rng.randint(1, 4), rng.randint(1, 3 * max_burst),
                            rng.randint(1, PAGE // nbytes + 4)])
    rows = rng.randint(1, 4)
    stride = rng.choice([row_words * nbytes, row_words * nbytes + nbytes * rng.randint(1, 40),
                         nbytes * rng.randint(0, row_words), -nbytes * rng.randint(1, row_words) & mask])
    if rng.random() < 0.5:   # just before a 4 KiB boundary
        addr = rng.randrange(PAGE, RAM_BYTES, PAGE) - nbytes * rng.randint(1, 24)
    else:
        addr = rng.randrange(0, RAM_BYTES // 2, nbytes)
    if rng.random() < 0.05:
        addr = (mask + 1 - nbytes * rng.randint(1, 8)) & mask
    return {"write": int(rng.random() < 0.5), "addr": addr, "row_words": row_words, "rows": rows,
            "stride": stride}


def cmd_addrs(cfg, cmd):
    mask = (1 << cfg.dram_addr_bits) - 1
    for r in range(cmd["rows"]):
        row = cmd["addr"] + r * cmd["stride"]
        for w in range(cmd["row_words"]):
            yield (row + w * cfg.dram_bytes) & mask


@cocotb.test()
async def random_transfers(dut):
    p = load_params()
    cfg = AccelConfig.from_dict(p["config"])
    max_burst = p["max_burst"]
    rng = random.Random(p.get("seed", 0))
    nbytes, bits = cfg.dram_bytes, cfg.dram_data_bits
    cmd_layout, rdata_layout, done_layout = dma_cmd_layout(cfg), dma_rdata_layout(cfg), dma_done_layout()

    for sig in (dut.clear_error, dut.clear_counters):
        sig.value = 0
    ram = AxiRam(AxiBus.from_prefix(dut, "m_axi", bus_separator="__"), dut.clk, dut.rst,
                 size=RAM_BYTES)
    for side in (ram.write_if, ram.read_if):
        side.log.setLevel(logging.WARNING)
    prob = p.get("pause", 0.3)
    for ch in (ram.write_if.aw_channel, ram.write_if.w_channel, ram.write_if.b_channel,
               ram.read_if.ar_channel, ram.read_if.r_channel):
        ch.set_pause_generator(pauses(random.Random(rng.random()), prob))
    golden = bytearray(rng.randbytes(RAM_BYTES))
    ram.write(0, bytes(golden))

    cmds = [random_cmd(cfg, rng, max_burst) for _ in range(p.get("commands", 24))]
    bad = {"write": 1, "addr": 0x100 + nbytes // 2, "row_words": 2, "rows": 1, "stride": 0}
    cmds.insert(len(cmds) // 2, bad)   # rejected (misaligned): error token, no bus traffic
    expected = []          # per command: (write, error, read words or write words)
    for cmd in cmds:
        if cmd is bad:
            expected.append((1, 1, []))
            continue
        words = []
        for a in cmd_addrs(cfg, cmd):
            a %= RAM_BYTES
            if cmd["write"]:
                w = rng.getrandbits(bits)
                golden[a:a + nbytes] = w.to_bytes(nbytes, "little")
            else:
                w = int.from_bytes(golden[a:a + nbytes], "little")
            words.append(w)
        expected.append((cmd["write"], 0, words))

    await start_clock(dut)
    src_cmd = StreamSource(dut, "i_cmd", random.Random(rng.random()), prob)
    src_w = StreamSource(dut, "i_wdata", random.Random(rng.random()), prob)
    sink_r = StreamSink(dut, "o_rdata", random.Random(rng.random()), prob)
    sink_done = StreamSink(dut, "o_done", random.Random(rng.random()), prob)
    bus = {"r": 0, "w": 0, "bursts": 0}

    async def monitor():
        """Burst legality and beat counts, sampled at each clock edge."""
        while True:
            await RisingEdge(dut.clk)
            for ch in ("ar", "aw"):
                if int(getattr(dut, f"m_axi__{ch}valid").value) and \
                        int(getattr(dut, f"m_axi__{ch}ready").value):
                    addr = int(getattr(dut, f"m_axi__{ch}addr").value)
                    beats = int(getattr(dut, f"m_axi__{ch}len").value) + 1
                    assert beats <= max_burst, f"{ch} burst of {beats} beats"
                    assert addr % PAGE + beats * nbytes <= PAGE, f"{ch} burst crosses 4 KiB"
                    assert int(getattr(dut, f"m_axi__{ch}size").value) == nbytes.bit_length() - 1
                    assert int(getattr(dut, f"m_axi__{ch}burst").value) == 1
                    bus["bursts"] += 1
            if int(dut.m_axi__rvalid.value) and int(dut.m_axi__rready.value):
                bus["r"] += 1
            if int(dut.m_axi__wvalid.value) and int(dut.m_axi__wready.value):
                assert int(dut.m_axi__wstrb.value) == (1 << nbytes) - 1
                bus["w"] += 1

    async def commands():
        for cmd in cmds:
            await src_cmd.send(cmd_layout.const(cmd).as_value().value)

    async def wdata():
        for write, error, words in expected:
            if write and not error:
                for w in words:
                    await src_w.send(w)

    async def rdata():
        for n, (write, error, words) in enumerate(expected):
            if write:
                continue
            for i, w in enumerate(words):
                raw = int(await sink_r.recv())
                got = field(rdata_layout, raw, "data")
                assert got == w, f"command {n} {cmds[n]}: word {i} is {got:#x}, expected {w:#x}"
                assert field(rdata_layout, raw, "last") == (i == len(words) - 1)

    async def check():
        cocotb.start_soon(commands())
        cocotb.start_soon(wdata())
        reader = cocotb.start_soon(rdata())
        for n, (write, error, _) in enumerate(expected):
            raw = int(await sink_done.recv())
            token = (field(done_layout, raw, "write"), field(done_layout, raw, "error"))
            assert token == (write, error), f"command {n} {cmds[n]}: done token {token}"
        await reader
        for _ in range(3):
            await RisingEdge(dut.clk)

    cocotb.start_soon(monitor())
    words = sum(len(w) for *_, w in expected)
    await watchdog(check(), 6 * words + 2_000)   # measured: under 2 cycles per word

    assert ram.read(0, RAM_BYTES) == bytes(golden), "RAM contents differ from the golden model"
    read_words = sum(len(w) for wr, _, w in expected if not wr)
    write_words = sum(len(w) for wr, _, w in expected if wr)
    assert (bus["r"], bus["w"]) == (read_words, write_words)
    assert int(dut.bytes_read.value) == read_words * nbytes
    assert int(dut.bytes_written.value) == write_words * nbytes
    assert int(dut.error.value) == 1            # the rejected command
    assert int(dut.busy.value) == 0
    dut._log.info("%d commands, %d words, %d bursts", len(cmds), words, bus["bursts"])
