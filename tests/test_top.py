"""The complete accelerator (rtl/top.py + rtl/control.py) in the Amaranth simulator: layers run from
a DRAM image through CSRs bit-exact vs the golden model, and every error path ends with a status."""

import random
from types import SimpleNamespace

import numpy as np
import pytest

from gen import packing
from gen.golden import OutputStage
from gen.layer import Layer
from gen.program import Program, decode, encode_value, layer_image
from rtl.axi import AXI_RESP_SLVERR
from rtl.config import preset
from rtl.control import ERRORS
from rtl.outstage import outstage_config_value
from rtl.store import OUT_CONTAINERS
from rtl.top import CHIP_ID, COUNTERS, Accelerator, config_words, csr_map
from tests.simutil import run_sim
from tests.test_dram import AxiSlaveModel

MAX_BURST, MAX_OUTSTANDING = 16, 4


class AxiLiteDriver:
    """AXI4-Lite master for the Amaranth simulator (one access at a time)."""

    def __init__(self, bus):
        self.bus = bus

    async def write(self, ctx, addr, data):
        bus = self.bus
        ctx.set(bus.awaddr, addr)
        ctx.set(bus.wdata, data)
        ctx.set(bus.wstrb, 0xF)
        ctx.set(bus.awvalid, 1)
        ctx.set(bus.wvalid, 1)
        aw = w = False
        while not (aw and w):
            _, _, awready, wready = await ctx.tick().sample(bus.awready, bus.wready)
            aw |= bool(awready)
            w |= bool(wready)
            ctx.set(bus.awvalid, not aw)
            ctx.set(bus.wvalid, not w)
        ctx.set(bus.bready, 1)
        resp, = await ctx.tick().sample(bus.bresp).until(bus.bvalid)
        ctx.set(bus.bready, 0)
        return resp

    async def read(self, ctx, addr):
        bus = self.bus
        ctx.set(bus.araddr, addr)
        ctx.set(bus.arvalid, 1)
        await ctx.tick().until(bus.arready)
        ctx.set(bus.arvalid, 0)
        ctx.set(bus.rready, 1)
        data, = await ctx.tick().sample(bus.rdata).until(bus.rvalid)
        ctx.set(bus.rready, 0)
        return data


def run_top(cfg, data, prog_addr=0, *, err_ranges=(), stall=0.2, timeout=0, seed=0,
            deadline=300_000):
    """Load ``data`` into DRAM, start the program, poll until done; returns the CSR readings
    (status, error_code, error_pc, every counter, the config words) and the DRAM model."""
    top = Accelerator(cfg, max_burst=MAX_BURST, max_outstanding=MAX_OUTSTANDING)
    slave = AxiSlaveModel(SimpleNamespace(m_axi=top.m_axi, max_burst=MAX_BURST,
                                          max_outstanding=MAX_OUTSTANDING),
                          cfg, random.Random(seed), stall=stall, latency=4,
                          err_ranges=err_ranges)
    nb = cfg.dram_bytes
    padded = bytes(data) + bytes(-len(data) % nb)
    for i in range(0, len(padded), nb):
        slave.mem[i // nb] = int.from_bytes(padded[i:i + nb], "little")
    addr = csr_map(cfg)
    lite = AxiLiteDriver(top.s_axil)
    out = {}

    async def host(ctx):
        await lite.write(ctx, addr["prog_lo"], prog_addr & 0xFFFF_FFFF)
        await lite.write(ctx, addr["prog_hi"], prog_addr >> 32)
        await lite.write(ctx, addr["timeout"], timeout)
        await lite.write(ctx, addr["ctrl"], 1)
        while True:
            status = await lite.read(ctx, addr["status"])
            if status & 2:
                break
            for _ in range(50):
                await ctx.tick()
        out["status"] = status
        for name in ("error_code", "error_pc", "id", *config_words(cfg)):
            out[name] = await lite.read(ctx, addr[name])
        for name in COUNTERS:
            lo = await lite.read(ctx, addr[name])
            out[name] = lo | await lite.read(ctx, addr[name] + 4) << 32

    run_sim(top, host, monitors=[slave.run], deadline_cycles=deadline)
    return out, slave


def read_dram(cfg, slave):
    nb = cfg.dram_bytes

    def read(addr, nbytes):
        words = range(addr // nb, -(-(addr + nbytes) // nb))
        return b"".join(slave.read(w).to_bytes(nb, "little") for w in words)[addr % nb:][:nbytes]
    return read


LAYERS = [
    Layer(N=1, C=2, H=5, W=5, M=3, R=3, S=3, act_bits=8, output=OutputStage(mult=3, shift=6,
                                                                              relu=True)),
    Layer(N=2, C=3, H=6, W=4, M=2, R=2, S=3, stride=2, pad=1, act_bits=4, act_signed=True),
]


@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("index", range(len(LAYERS)))
def test_layer_runs_bit_exact(index, wide):
    """``wide``: 16-bit data, 48-bit psums, 64-bit DRAM bus (other containers and fetch)."""
    cfg = preset("tiny")
    if wide:
        cfg = cfg.replace(act_bits=16, weight_bits=16, psum_bits=48, dram_data_bits=64)
    layer = LAYERS[index]
    x, w, bias = layer.random_arrays(index + 11, with_bias=True)
    image = layer_image(cfg, layer, x, w, bias)
    out, slave = run_top(cfg, image.data, image.prog_addr, seed=index)
    assert out["status"] == 0b010 and out["error_code"] == 0, out
    assert out["id"] == CHIP_ID
    assert {k: out[k] for k in config_words(cfg)} == config_words(cfg)
    y = image.output(read_dram(cfg, slave))
    np.testing.assert_array_equal(y, layer.golden(x, w, bias))
    # counters: the MAC work is the layer's (every PE-active cycle is one activation bit-step of
    # lanes MACs), DRAM bytes are the image's reads and the outputs' writes
    assert out["dram_wr"] == sum(n for _, n in image.read_ranges())
    assert out["cycles"] > out["mac_cycles"] > 0 and out["pe_active"] >= out["mac_cycles"]


def _program(cfg, build):
    prog = Program(cfg)
    build(prog)
    return prog.to_bytes()


def test_program_round_trip():
    cfg = preset("tiny")
    layer = LAYERS[1]
    x, w, bias = layer.random_arrays(3, with_bias=True)
    image = layer_image(cfg, layer, x, w, bias)
    instrs = decode(cfg, image.program)
    ops = [i.op for i in instrs]
    assert ops.count("PASS") == len(image.passes) * layer.N and ops[-1] == "END"
    assert ops.count("STORE") == layer.N
    stores = [i for i in instrs if i.op == "STORE"]
    assert [s.fields["dram_addr"] for s in stores] == [a for a, _ in image.read_ranges()]
    with pytest.raises(ValueError, match="unknown opcode 9"):
        decode(cfg, [9])


@pytest.mark.parametrize("case", ["bad_opcode", "bad_target", "bad_store", "fetch_dram",
                                  "load_dram", "store_dram", "timeout"])
def test_errors_end_the_run(case):
    cfg = preset("tiny")
    err_ranges = ()
    store_job = {"src": 0, "count": 4, "container": OUT_CONTAINERS.index(32),
                 "stage": outstage_config_value(cfg, None)}
    if case == "bad_opcode":
        data = _program(cfg, lambda p: (p.sync(), p.words.append(0x77), p.end()))
        failing = 4
    elif case == "bad_target":
        data = _program(cfg, lambda p: (p.words.append(3 | 9 << 8 | 1 << 16), p.end()))
        failing = 0
    elif case == "bad_store":
        data = _program(cfg, lambda p: (p.write("store_job", [store_job]),
                                        p.store(0x400, 4 * 32 // cfg.dram_data_bits + 1),
                                        p.end()))
        failing = 4 * (1 + len(p_words(cfg, "store_job")))
    elif case == "fetch_dram":
        data = _program(cfg, lambda p: (p.sync(), p.sync(), p.end()))
        err_ranges = [(4, 8, AXI_RESP_SLVERR)]
        failing = 0   # the second SYNC's fetch fails; ipc still names the first
    elif case == "load_dram":
        data = _program(cfg, lambda p: (p.load(0x400, 0, 4), p.end()))
        err_ranges = [(0x404, 0x408, AXI_RESP_SLVERR)]
        failing = 0
    elif case == "store_dram":
        data = _program(cfg, lambda p: (p.write("store_job", [store_job]),
                                        p.store(0x400, 4 * 32 // cfg.dram_data_bits), p.end()))
        err_ranges = [(0x400, 0x404, AXI_RESP_SLVERR)]
        failing = 4 * (1 + len(p_words(cfg, "store_job")))
    else:   # a pass whose writer waits for more outputs than the array makes
        data = _program(cfg, lambda p: (p.write("writer_job", [{"tops": 1, "filters": 1,
                                                               "cols": 1, "col_stride": 1}]),
                                        p.run_pass(), p.end()))
        failing = 4 * (1 + len(p_words(cfg, "writer_job")))
    out, _ = run_top(cfg, data, err_ranges=err_ranges, timeout=500 if case == "timeout" else 0,
                     deadline=20_000)
    assert out["status"] == 0b110, out
    assert out["error_code"] == ERRORS[case]
    if case != "fetch_dram":
        assert out["error_pc"] == failing


def p_words(cfg, target):
    """Operand words of one value of WRITE ``target``."""
    return encode_value(Program(cfg).layouts[target], 0)


def test_counters_match_the_model():
    from gen.model import exact_counters
    cfg = preset("tiny")
    layer = LAYERS[1]
    x, w, bias = layer.random_arrays(5, with_bias=True)
    image = layer_image(cfg, layer, x, w, bias)
    out, _ = run_top(cfg, image.data, image.prog_addr, seed=2)
    assert out["status"] == 0b010
    model = exact_counters(cfg, image)
    assert {k: out[k] for k in model} == model
    phases = [out[k] for k in COUNTERS if k.startswith("t_")]
    assert sum(phases) == out["cycles"] and min(phases) > 0


@pytest.mark.parametrize("glb_bytes,layer,rounds", [
    (256, Layer(N=1, C=2, H=6, W=6, M=4, R=3, S=3, act_bits=3), "bands"),
    (192, Layer(N=2, C=3, H=4, W=3, M=9, R=2, S=2, act_bits=2, act_signed=True,
                output=OutputStage(mult=5, shift=3, out_bits=8)), "filter groups"),
])
def test_layer_in_glb_rounds(glb_bytes, layer, rounds):
    """Layers larger than the GLB run in rounds (bands of output rows, groups of filters); the
    mapping is the mapper's first candidate of each kind."""
    from gen.mapper import candidates, rounds_of
    from gen.model import exact_counters
    cfg = preset("tiny").replace(glb_bytes=glb_bytes)

    def kind(m):
        plan = rounds_of(layer, m)
        return len(plan) > 1 and (len({r.m0 for r in plan}) > 1) == (rounds == "filter groups")
    mapping = next(m for m in candidates(cfg, layer) if kind(m))
    x, w, bias = layer.random_arrays(7, with_bias=True)
    image = layer_image(cfg, layer, x, w, bias, mapping=mapping)
    out, slave = run_top(cfg, image.data, image.prog_addr, seed=3)
    assert out["status"] == 0b010, out
    np.testing.assert_array_equal(image.output(read_dram(cfg, slave)), layer.golden(x, w, bias))
    model = exact_counters(cfg, image)
    assert {k: out[k] for k in model} == model


def test_program_ending_next_to_unreadable_memory_still_runs():
    """The 64-byte block read runs into an SLVERR range after END: the controller falls back
    to single bus-word reads and finishes without error."""
    cfg = preset("tiny")
    data = _program(cfg, lambda p: (p.sync(), p.sync(), p.end()))
    out, _ = run_top(cfg, data, err_ranges=[(16, 64, AXI_RESP_SLVERR)], deadline=20_000)
    assert out["status"] == 0b010 and out["error_code"] == 0, out
    assert out["dram_rd"] == 64 + 3 * cfg.dram_bytes      # the failed block, then 3 single reads


PACKED_LAYERS = [
    # ReLU outputs (unsigned, packed), unsigned inputs with zeros
    Layer(N=1, C=3, H=6, W=6, M=4, R=3, S=3, act_bits=8, pad=1,
          output=OutputStage(mult=3, shift=9, relu=True)),
    # signed inputs and signed 8-bit outputs, two images
    Layer(N=2, C=2, H=5, W=4, M=3, R=2, S=3, act_bits=6, act_signed=True,
          output=OutputStage(mult=5, shift=7, out_bits=8)),
    # raw accumulators: inputs packed, outputs stay 32-bit
    Layer(N=1, C=2, H=4, W=4, M=2, R=3, S=3, act_bits=4),
]


@pytest.mark.parametrize("index", range(len(PACKED_LAYERS)))
def test_packed_layer_runs_bit_exact(index):
    """Packed DRAM format: LOADP inputs and STOREP outputs give the golden result and the DRAM
    traffic is the model's (the codec's packed sizes); inputs of half the precision with
    zeros read fewer bytes than the unpacked image (outputs near full precision may need more:
    a header per group)."""
    from gen.model import exact_counters
    cfg = preset("tiny").replace(pack_group=8)
    layer = PACKED_LAYERS[index]
    x, w, bias = layer.random_arrays(index + 21, with_bias=True)
    x >>= layer.act_bits // 2                                           # half the precision
    x[np.random.default_rng(index).random(x.shape) < 0.5] = 0         # ReLU-like sparsity
    image = layer_image(cfg, layer, x, w, bias, pack=True)
    ops = [i.op for i in decode(cfg, image.program)]
    assert "LOADP" in ops and ("STOREP" in ops) == (layer.output is not None)
    out, slave = run_top(cfg, image.data, image.prog_addr, seed=index)
    assert out["status"] == 0b010 and out["error_code"] == 0, out
    np.testing.assert_array_equal(image.output(read_dram(cfg, slave)), layer.golden(x, w, bias))
    model = exact_counters(cfg, image)
    assert {k: out[k] for k in model} == model
    plain = exact_counters(cfg, layer_image(cfg, layer, x, w, bias, pack=False))
    assert out["dram_rd"] < plain["dram_rd"]


@pytest.mark.parametrize("case", ["truncated", "no_room", "plain_store_of_packed_job",
                                  "load_dram", "store_dram"])
def test_packed_errors_end_the_run(case):
    cfg = preset("tiny").replace(pack_group=8)
    job = {"src": 0, "count": 16, "container": OUT_CONTAINERS.index(8),
           "stage": outstage_config_value(cfg, OutputStage(mult=1, shift=0, relu=True)),
           "pack": 1}
    room = packing.worst_case_words(16, 8, 8, cfg.dram_data_bits)
    err_ranges = ()
    if case == "load_dram":
        data = _program(cfg, lambda p: (p.loadp(0x400, 0, 2, 1, False), p.end()))
        err_ranges = [(0x404, 0x408, AXI_RESP_SLVERR)]
        code, failing = "load_dram", 0
    elif case == "store_dram":    # 16 zeros from the GLB: two header-only groups, one word
        data = _program(cfg, lambda p: (p.write("store_job", [job]), p.storep(0x400, room),
                                        p.end()))
        err_ranges = [(0x400, 0x404, AXI_RESP_SLVERR)]
        code, failing = "store_dram", 4 * (1 + len(p_words(cfg, "store_job")))
    elif case == "truncated":    # 8 GLB words need far more than a word of all-255 groups
        segment = packing.pack([255] * 32, 8, 8, False, cfg.dram_data_bits)
        data = bytearray(_program(cfg, lambda p: (p.loadp(0x400, 0, 1, 8, False), p.end())))
        data += bytes(0x400 - len(data)) + b"".join(v.to_bytes(4, "little") for v in segment)
        code, failing = "bad_packed", 0
    elif case == "no_room":
        data = _program(cfg, lambda p: (p.write("store_job", [job]), p.storep(0x400, room - 1),
                                        p.end()))
        code, failing = "bad_store", 4 * (1 + len(p_words(cfg, "store_job")))
    else:
        data = _program(cfg, lambda p: (p.write("store_job", [job]), p.store(0x400, 4),
                                        p.end()))
        code, failing = "bad_store", 4 * (1 + len(p_words(cfg, "store_job")))
    out, _ = run_top(cfg, bytes(data), err_ranges=err_ranges, deadline=20_000)
    assert out["status"] == 0b110, out
    assert out["error_code"] == ERRORS[code]
    assert out["error_pc"] == failing


def test_packed_opcodes_need_pack_group():
    cfg = preset("tiny")
    with pytest.raises(ValueError, match="pack_group=0"):
        Program(cfg).loadp(0, 0, 1, 1, False)
    layer = PACKED_LAYERS[0]
    x, w, bias = layer.random_arrays(1)
    with pytest.raises(ValueError, match="pack: the config has no packed DRAM format"):
        layer_image(cfg, layer, x, w, bias, pack=True)
    # the hardware without pack_group treats LOADP as an unknown opcode
    data = _program(cfg.replace(pack_group=8), lambda p: (p.loadp(0x400, 0, 1, 1, False),
                                                           p.end()))
    out, _ = run_top(cfg, data, deadline=20_000)
    assert out["status"] == 0b110 and out["error_code"] == ERRORS["bad_opcode"]
