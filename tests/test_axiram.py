"""Unit tests of rtl/axiram.py: the accelerator's DMA (rtl/dram.py) against the on-chip AXI4 RAM
(random strided bursts, back-pressure, out-of-range errors) and the host port."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring

from rtl.axiram import AxiRam
from rtl.config import preset
from rtl.dram import Dma
from tests.simutil import Stalls, run_sim, stream_get, stream_put


def build(cfg, size_bytes):
    m = Module()
    m.submodules.dma = dma = Dma(cfg, max_burst=8, max_outstanding=2)
    m.submodules.ram = ram = AxiRam(size_bytes, cfg.dram_addr_bits, cfg.dram_data_bits)
    wiring.connect(m, dma.m_axi, ram.s_axi)
    return m, dma, ram


@pytest.mark.parametrize("name", ["tiny", "default"])
def test_dma_writes_and_reads_back_random_blocks(name):
    """Random strided writes, then reads of the same blocks, with stalls on the DMA's streams;
    every word read equals the last word written there (a dict model of the memory)."""
    cfg = preset(name)
    nb = cfg.dram_bytes
    size = 2048
    rng = random.Random(7)
    m, dma, ram = build(cfg, size)
    model, blocks = {}, []
    for _ in range(12):
        rows, row_words = rng.randint(1, 3), rng.randint(1, 20)
        stride = nb * (row_words + rng.randint(0, 4))
        start = nb * rng.randrange(0, size // nb - rows * stride // nb - row_words)
        words = [rng.getrandbits(cfg.dram_data_bits) for _ in range(rows * row_words)]
        blocks.append((start, rows, row_words, stride, words))
    got, tokens = [], []

    async def commands(ctx):
        for write in (1, 0):
            for start, rows, row_words, stride, _ in blocks:
                await stream_put(ctx, dma.i_cmd, {"write": write, "addr": start,
                                                  "row_words": row_words, "rows": rows,
                                                  "stride": stride}, Stalls(rng, 0.2))

    async def wdata(ctx):
        for *_, words in blocks:
            for w in words:
                await stream_put(ctx, dma.i_wdata, w, Stalls(rng, 0.3))

    async def rdata(ctx):
        for *_, words in blocks:
            for _ in words:
                got.append((await stream_get(ctx, dma.o_rdata, Stalls(rng, 0.3))).data)

    async def done(ctx):
        for _ in range(2 * len(blocks)):
            tokens.append(await stream_get(ctx, dma.o_done, Stalls(rng, 0.2)))

    run_sim(m, commands, wdata, rdata, done, deadline_cycles=20_000)
    for start, rows, row_words, stride, words in blocks:
        for r in range(rows):
            for k in range(row_words):
                model[start + r * stride + k * nb] = words[r * row_words + k]
    expected = [model[start + r * stride + k * nb] for start, rows, row_words, stride, _ in blocks
                for r in range(rows) for k in range(row_words)]
    assert got == expected
    assert [(t.write, t.error) for t in tokens] == [(1, 0)] * len(blocks) + [(0, 0)] * len(blocks)


def test_out_of_range_bursts_answer_slverr_and_complete():
    """A burst running past the memory: the DMA's read and write tokens carry the error, the
    read delivers all its words (0 beyond the end), nothing aliases into the memory."""
    cfg = preset("tiny")
    nb = cfg.dram_bytes
    size = 256
    m, dma, ram = build(cfg, size)
    rng = random.Random(3)
    seen = {}

    async def bench(ctx):
        start = size - 2 * nb                    # 2 words inside, 3 outside
        await stream_put(ctx, dma.i_cmd, {"write": 1, "addr": start, "row_words": 5, "rows": 1,
                                          "stride": 0})
        for k in range(5):
            await stream_put(ctx, dma.i_wdata, 0x100 + k)
        seen["write"] = await stream_get(ctx, dma.o_done)
        await stream_put(ctx, dma.i_cmd, {"write": 0, "addr": start, "row_words": 5, "rows": 1,
                                          "stride": 0})
        seen["read"] = [(await stream_get(ctx, dma.o_rdata, Stalls(rng, 0.3))).data
                        for _ in range(5)]
        seen["read_token"] = await stream_get(ctx, dma.o_done)
        await stream_put(ctx, dma.i_cmd, {"write": 0, "addr": 0, "row_words": 1, "rows": 1,
                                          "stride": 0})
        seen["word0"] = (await stream_get(ctx, dma.o_rdata)).data
        await stream_get(ctx, dma.o_done)

    run_sim(m, bench, deadline_cycles=5_000)
    assert (seen["write"].write, seen["write"].error) == (1, 1)
    assert (seen["read_token"].write, seen["read_token"].error) == (0, 1)
    assert seen["read"] == [0x100, 0x101, 0, 0, 0]
    assert seen["word0"] == 0                     # the words past the end did not wrap around


def test_host_port_reads_and_writes_while_the_bus_is_held():
    cfg = preset("default")
    m, dma, ram = build(cfg, 512)
    seen = {}

    async def bench(ctx):
        ctx.set(ram.host_hold, 1)
        await ctx.tick()
        assert ctx.get(ram.host_ready)
        for a in range(8):
            ctx.set(ram.host_en, 1)
            ctx.set(ram.host_req, {"addr": a, "write": 1, "data": 0xABC0 + a})
            await ctx.tick()
        ctx.set(ram.host_req, {"addr": 5, "write": 0, "data": 0})
        await ctx.tick()
        ctx.set(ram.host_en, 0)
        seen["host"] = ctx.get(ram.host_rdata)
        # the DMA's read waits while the host holds the bus, then sees the host's words
        await stream_put(ctx, dma.i_cmd, {"write": 0, "addr": 0, "row_words": 8, "rows": 1,
                                          "stride": 0})
        for _ in range(20):
            await ctx.tick()
        seen["held"] = ctx.get(dma.o_rdata.valid)
        ctx.set(ram.host_hold, 0)
        seen["dma"] = [(await stream_get(ctx, dma.o_rdata)).data for _ in range(8)]

    run_sim(m, bench, deadline_cycles=2_000)
    assert seen == {"host": 0xABC5, "held": 0, "dma": [0xABC0 + a for a in range(8)]}


def test_size_rule():
    for bad in (0, 12, 3.5, True):
        with pytest.raises(ValueError, match=r"size_bytes: must be a positive multiple of the "
                                             r"bus width \(8 bytes\)"):
            AxiRam(bad, 32, 64)
