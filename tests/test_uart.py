"""Unit tests of rtl/uart.py: bit timing of the transmitter, the receiver against a line model
with clock mismatch, glitches, framing errors and overruns, and a loopback."""

import random

import pytest
from amaranth.hdl import Module

from rtl.uart import UartRx, UartTx, uart_divisor
from tests.simutil import Stalls, run_sim, stream_get, stream_put


def line_bits(byte, stop=1):
    return [0] + [(byte >> i) & 1 for i in range(8)] + [stop]


@pytest.mark.parametrize("divisor", [4, 7, 16])
def test_tx_sends_8n1_with_exact_bit_times(divisor):
    """Every byte leaves as start, 8 data bits LSB first, stop, each exactly ``divisor`` cycles;
    with bytes waiting they follow each other without a gap; the line idles high."""
    rng = random.Random(divisor)
    data = [rng.randrange(256) for _ in range(24)]
    dut = UartTx(divisor)
    trace = []

    async def source(ctx):
        for i, byte in enumerate(data):
            await stream_put(ctx, dut.i_data, byte, Stalls(rng, 0.5 if i < 12 else 0.0))
        for _ in range(12 * divisor):             # the last byte leaves, the line idles
            await ctx.tick()

    async def sample(ctx):
        while True:
            trace.append(ctx.get(dut.tx))
            await ctx.tick()

    run_sim(dut, source, monitors=[sample], deadline_cycles=40 * divisor * len(data))
    # decode: runs of equal samples, each a whole number of bit times
    got, starts, i = [], [], 0
    while len(got) < len(data):
        while trace[i] == 1:
            i += 1
        starts.append(i)
        bits = [trace[i + k * divisor:i + (k + 1) * divisor] for k in range(10)]
        assert all(len(set(b)) == 1 for b in bits), "a bit changed within its bit time"
        levels = [b[0] for b in bits]
        assert levels[0] == 0 and levels[9] == 1
        got.append(sum(v << k for k, v in enumerate(levels[1:9])))
        i += 10 * divisor
    assert got == data
    assert trace[i:] and set(trace[i:]) == {1}
    # bytes offered without stalls (the second half) leave back to back
    assert all(b - a == 10 * divisor for a, b in zip(starts[13:], starts[14:]))


def drive(ctx_bits, divisor_err, divisor):
    """Line samples for bit levels ``ctx_bits``, each bit ``divisor * (1 + divisor_err)``
    cycles long (the sender's clock is off by ``divisor_err``)."""
    out, t = [], 0.0
    step = divisor * (1 + divisor_err)
    for level in ctx_bits:
        t += step
        while len(out) < round(t):
            out.append(level)
    return out


def run_rx(divisor, samples, ready_prob=1.0, seed=0):
    dut = UartRx(divisor)
    rng = random.Random(seed)
    got, events = [], {"framing": 0, "overrun": 0}

    async def line(ctx):
        for v in samples:
            ctx.set(dut.rx, v)
            await ctx.tick()
        for _ in range(4 * divisor):
            await ctx.tick()

    async def sink(ctx):
        while True:
            got.append(await stream_get(ctx, dut.o_data, Stalls(rng, 1 - ready_prob)))

    async def flags(ctx):
        while True:
            events["framing"] += ctx.get(dut.framing_error)
            events["overrun"] += ctx.get(dut.overrun)
            await ctx.tick()

    run_sim(dut, line, monitors=[sink, flags], deadline_cycles=len(samples) + 1000)
    return got, events


@pytest.mark.parametrize("divisor,err", [(4, 0.0), (7, 0.02), (16, -0.03), (16, 0.03)])
def test_rx_receives_bytes_across_clock_mismatch(divisor, err):
    rng = random.Random(divisor * 100 + int(err * 100))
    data = [rng.randrange(256) for _ in range(30)]
    levels = [1] * 3
    for byte in data:
        levels += line_bits(byte) + [1] * rng.choice([0, 0, 1, 3])
    got, events = run_rx(divisor, drive(levels, err, divisor) + [1] * 8)
    assert got == data
    assert events == {"framing": 0, "overrun": 0}


def test_rx_ignores_glitches_and_flags_framing_errors():
    d = 16
    samples = [1] * 20 + [0] * 5 + [1] * 40                 # glitch: shorter than half a bit
    samples += drive(line_bits(0xA5), 0, d)                 # good byte
    samples += drive(line_bits(0x3C, stop=0) + [0, 0, 1, 1], 0, d)   # stop bit 0, line low
    samples += drive(line_bits(0x5A) + [1], 0, d)           # good byte after the break
    got, events = run_rx(d, samples)
    assert got == [0xA5, 0x5A]
    assert events == {"framing": 1, "overrun": 0}


def test_rx_overrun_drops_the_new_byte_and_keeps_the_old():
    """Nobody takes the bytes: the first is held, the next ones are dropped and flagged."""
    d = 8
    samples = drive([1] + line_bits(0x11) + line_bits(0x22) + line_bits(0x33) + [1], 0, d)
    dut = UartRx(d)
    seen = {"overrun": 0}

    async def line(ctx):
        for v in samples:
            ctx.set(dut.rx, v)
            seen["overrun"] += ctx.get(dut.overrun)
            await ctx.tick()
        seen["valid"] = ctx.get(dut.o_data.valid)
        seen["payload"] = ctx.get(dut.o_data.payload)

    run_sim(dut, line, deadline_cycles=len(samples) + 100)
    assert seen == {"overrun": 2, "valid": 1, "payload": 0x11}


@pytest.mark.parametrize("divisor", [4, 5, 13])
def test_loopback_tx_to_rx(divisor):
    rng = random.Random(divisor)
    data = [rng.randrange(256) for _ in range(40)]
    m = Module()
    m.submodules.tx = tx = UartTx(divisor)
    m.submodules.rx = rx = UartRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    got = []

    async def source(ctx):
        for byte in data:
            await stream_put(ctx, tx.i_data, byte, Stalls(rng, 0.3))

    async def sink(ctx):
        for _ in data:
            got.append(await stream_get(ctx, rx.o_data, Stalls(rng, 0.3)))

    run_sim(m, source, sink, deadline_cycles=20 * divisor * len(data))
    assert got == data


def test_divisor_and_baud_rules():
    assert uart_divisor(48_000_000, 115_200) == 417
    assert uart_divisor(12_000_000, 3_000_000) == 4
    with pytest.raises(ValueError, match=r"baud: 4000000 Bd needs at least 4 clock cycles"):
        uart_divisor(12_000_000, 4_000_000)
    with pytest.raises(ValueError, match=r"baud: 2500000 Bd is off by more than 2%"):
        uart_divisor(12_000_000, 2_500_000)
    for bad in (3, 4.5, True, None):
        with pytest.raises(ValueError, match=r"divisor: must be an integer >= 4"):
            UartTx(bad)
        with pytest.raises(ValueError, match=r"divisor: must be an integer >= 4"):
            UartRx(bad)
