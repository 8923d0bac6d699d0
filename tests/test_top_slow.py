"""Slow tier: layers on the generated Verilog of the larger presets (``default``, ``eyeriss``)."""

import pytest

from gen.golden import OutputStage
from gen.layer import Layer
from rtl.config import preset
from gen.runlayer import simulate
from tests.test_top_cocotb import check_layer, layer_job

CASES = {
    "default": [
        Layer(N=1, C=8, H=12, W=12, M=8, R=3, S=3, pad=1, act_bits=8, name="demo-like",
              output=OutputStage(mult=3, shift=8, relu=True)),
        Layer(N=2, C=5, H=15, W=13, M=12, R=5, S=3, stride=2, pad=2, act_bits=6,
              act_signed=True, name="5x3 stride 2 batch 2"),
    ],
    "eyeriss": [
        Layer(N=1, C=4, H=15, W=15, M=8, R=3, S=3, act_bits=16, weight_bits=16, act_signed=True,
              name="16-bit 3x3", output=OutputStage(mult=11, shift=14, out_bits=16)),
        Layer(N=1, C=3, H=31, W=31, M=4, R=11, S=11, stride=4, act_bits=16, weight_bits=16,
              name="conv1-like 11x11 stride 4"),
    ],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_presets_run_layers_bit_exact(name):
    cfg = preset(name)
    runs = [layer_job(cfg, layer, seed) for seed, layer in enumerate(CASES[name])]
    results = simulate(cfg, [job for job, _, _ in runs], sim="verilator", pause=0.2)
    for (_, image, expected), result in zip(runs, results):
        check_layer(cfg, result, image, expected)
