"""The on-chip datapath (rtl/core.py) runs whole layers from a GLB image: bit-exact vs golden."""

import random

import numpy as np
import pytest

from gen.glbplan import plan_layer
from gen.golden import OutputStage, conv2d, output_stage, value_range
from gen.rowstationary import ConvShape
from rtl.config import preset
from rtl.core import Core
from rtl.outstage import outstage_config_value
from rtl.store import OUT_CONTAINERS
from tests.simutil import Stalls, pulse_and_wait, run_sim, stream_get, stream_put


def run_layer(cfg, shape, x, w, bias, stage, pa, act_signed, stall_prob=0.2, seed=0):
    """Load the GLB image, run every pass, store through the output stage; returns (M, E, F)."""
    plan = plan_layer(cfg, shape, x, w, bias, pa=pa, act_signed=act_signed)
    dut = Core(cfg)
    rng = random.Random(seed)
    container = 32 if stage is None else (8 if stage.out_bits <= 8 else 16)
    n_out = -(-plan.store_count // (cfg.dram_data_bits // container))
    out = []
    status = {"pass_errors": []}

    async def control(ctx):
        for a, word in enumerate(plan.words):
            await stream_put(ctx, dut.i_load, {"addr": a, "data": word})
        for cmd in plan.passes:
            for entry in cmd.sender_table:
                await stream_put(ctx, dut.i_sender_table, entry)
            for role in cmd.roles:
                await stream_put(ctx, dut.i_roles, role)
            for entry in cmd.writer_table:
                await stream_put(ctx, dut.i_writer_table, entry)
            ctx.set(dut.sender_job, cmd.sender_job)
            ctx.set(dut.pass_cfg, cmd.array_pass.pe.const(cfg))
            ctx.set(dut.writer_job, cmd.writer_job)
            await pulse_and_wait(ctx, dut.start_pass, dut.pass_done)
            status["pass_errors"].append(ctx.get(dut.pass_error))
        while ctx.get(dut.busy):
            await ctx.tick()
        ctx.set(dut.store_job, {"src": plan.store_src, "count": plan.store_count,
                                "container": OUT_CONTAINERS.index(container),
                                "stage": outstage_config_value(cfg, stage)})
        await pulse_and_wait(ctx, dut.start_store, dut.store_done)
        status["glb_error"] = ctx.get(dut.glb_error)

    async def sink(ctx):
        for _ in range(n_out):
            out.append(await stream_get(ctx, dut.o_wdata, Stalls(rng, stall_prob)))

    run_sim(dut, control, sink, deadline_cycles=400_000)
    assert status["pass_errors"] == [0] * len(plan.passes) and status["glb_error"] == 0
    per = cfg.dram_data_bits // container
    signed_out = stage is None or not stage.relu
    vals = []
    for word in out:
        for i in range(per):
            v = (word >> (i * container)) & ((1 << container) - 1)
            vals.append(v - (1 << container) if signed_out and v >> (container - 1) else v)
    return np.array(vals[:plan.store_count]).reshape(shape.E, shape.F, shape.M).transpose(2, 0, 1)


@pytest.mark.parametrize("name,shape,pa,act_signed,stage", [
    ("tiny", ConvShape(C=3, H=7, W=6, M=3, R=3, S=3, stride=1), 8, False,
     OutputStage(mult=5, shift=8, relu=True, out_bits=8)),
    ("tiny", ConvShape(C=2, H=8, W=7, M=2, R=5, S=2, stride=2), 4, True, None),
    ("default", ConvShape(C=5, H=6, W=7, M=5, R=2, S=3, stride=1), 6, True,
     OutputStage(mult=-3, shift=4, relu=False, out_bits=16)),
])
def test_core_runs_layer_from_glb(name, shape, pa, act_signed, stage):
    cfg = preset(name)
    rng = np.random.default_rng(shape.C * 7 + pa)
    alo, ahi = value_range(pa, act_signed)
    wlo, whi = value_range(cfg.weight_bits, True)
    x = rng.integers(alo, ahi + 1, (shape.C, shape.H, shape.W))
    w = rng.integers(wlo, whi + 1, (shape.M, shape.C, shape.R, shape.S))
    bias = rng.integers(-1000, 1000, shape.M)
    y = run_layer(cfg, shape, x, w, bias, stage, pa, act_signed)
    golden = output_stage(conv2d(x[None], w, bias, stride=shape.stride)[0], stage)
    np.testing.assert_array_equal(y, golden)


def test_layer_too_big_for_the_glb_is_rejected():
    cfg = preset("tiny")
    shape = ConvShape(C=16, H=40, W=40, M=4, R=3, S=3)
    x = np.zeros((16, 40, 40), dtype=np.int64)
    w = np.zeros((4, 16, 3, 3), dtype=np.int64)
    with pytest.raises(ValueError, match="glb_bytes: the layer needs .* glb_bytes=8192"):
        plan_layer(cfg, shape, x, w)
