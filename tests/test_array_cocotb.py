"""System-level check of the PE array on its generated Verilog under both simulators."""

import pytest

from gen.verilog import array_verilog
from rtl.config import preset
from sim_tb.runner import SIMULATORS
from tests.cocotb_util import run_bench

LAYERS = [
    # 3x3 filters, two channel groups chained up the columns, strip-mined output rows
    dict(shape=dict(C=3, H=8, W=7, M=3, R=3, S=3, stride=1), pa=8, act_signed=False),
    # folded set (R = 5 > 3 rows), stride 2, signed 5-bit activations
    dict(shape=dict(C=2, H=9, W=8, M=2, R=5, S=2, stride=2), pa=5, act_signed=True),
    # 1x1 filters, unchained replicated sets
    dict(shape=dict(C=4, H=5, W=5, M=3, R=1, S=1, stride=1), pa=3, act_signed=False,
         chain=False),
]


@pytest.mark.parametrize("sim", SIMULATORS)
def test_array_verilog(sim):
    cfg = preset("tiny")
    # the Verilog back end's form: one shared PE module instantiated rows x cols times
    run_bench(None, "pe_array", cfg, "sim_tb.tb_array", sim, text=array_verilog(cfg),
              params={"seed": 3, "layers": LAYERS})
