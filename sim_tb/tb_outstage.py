"""cocotb bench: the output stage on generated Verilog, random words checked against gen.golden."""

import random

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from rtl.config import AccelConfig
from rtl.outstage import OUTSTAGE_LATENCY, outstage_acc_layout, outstage_config_value
from sim_tb.common import StreamSink, StreamSource, load_params, start_clock, watchdog
from tests.test_outstage import make_words, wrap


def pack_word(cfg, w):
    """``(stage_cfg, i_acc payload)`` as the integers the Verilog ports take."""
    stage = outstage_config_value(cfg, w["stage"]).as_value().value
    payload = outstage_acc_layout(cfg).const(
        {"acc": w["acc"], "bias": w["bias"], "last": w["last"]}).as_value().value
    return stage, payload


def unpack_out(cfg, raw):
    """``(data, last)`` of an ``o_data`` payload integer."""
    raw = int(raw)
    return wrap(raw, cfg.psum_bits), raw >> cfg.psum_bits & 1


def describe(n, w):
    return f"word {n}: acc={w['acc']} bias={w['bias']} stage={w['stage']}"


@cocotb.test()
async def random_words_with_backpressure(dut):
    p = load_params()
    cfg = AccelConfig.from_dict(p["config"])
    pyrng = random.Random(p.get("seed", 0))
    words = make_words(cfg, p.get("seed", 0), p.get("blocks", 30))
    await start_clock(dut)
    src = StreamSource(dut, "i_acc", pyrng, 0.3)
    sink = StreamSink(dut, "o_data", pyrng, 0.3)

    async def produce():
        for w in words:
            stage, payload = pack_word(cfg, w)
            dut.stage_cfg.value = stage     # sampled with the word, so it may change per word
            await src.send(payload)

    async def check():
        for n, w in enumerate(words):
            got = unpack_out(cfg, await sink.recv())
            assert got == (w["expected"], int(w["last"])), describe(n, w)

    cocotb.start_soon(produce())
    await watchdog(check(), 20 * len(words) + 1000)
    dut._log.info("%d words checked", len(words))


@cocotb.test()
async def full_rate_latency(dut):
    """No stalls: one word per cycle in and out, each out exactly OUTSTAGE_LATENCY cycles later."""
    p = load_params()
    cfg = AccelConfig.from_dict(p["config"])
    words = make_words(cfg, p.get("seed", 0) + 1, 4)
    await start_clock(dut)
    dut.o_data__ready.value = 1

    async def run():
        accepted, emitted, got = [], [], []
        pending = list(words)
        cycle = 0
        while len(got) < len(words):
            if pending:
                dut.stage_cfg.value, dut.i_acc__payload.value = pack_word(cfg, pending[0])
            dut.i_acc__valid.value = int(bool(pending))
            await ReadOnly()
            if pending and dut.i_acc__ready.value:
                accepted.append(cycle)
                pending.pop(0)
            if dut.o_data__valid.value:
                emitted.append(cycle)
                got.append(unpack_out(cfg, dut.o_data__payload.value))
            await RisingEdge(dut.clk)
            cycle += 1
        return accepted, emitted, got

    accepted, emitted, got = await watchdog(run(), 10 * len(words) + 100)
    for n, (w, g) in enumerate(zip(words, got)):
        assert g == (w["expected"], int(w["last"])), describe(n, w)
    assert accepted == list(range(len(words))), "input stalled without back-pressure"
    assert emitted == [c + OUTSTAGE_LATENCY for c in accepted]
