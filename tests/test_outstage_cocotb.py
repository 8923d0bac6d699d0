"""System-level check of the output stage on its generated Verilog under both simulators."""

import pytest

from rtl.config import preset
from rtl.outstage import OutputStageUnit
from sim_tb.runner import SIMULATORS
from tests.cocotb_util import run_bench


CONFIGS = {
    "tiny": preset("tiny"),                                          # psum_bits 32
    "eyeriss": preset("eyeriss"),                                    # psum_bits 48
    "p64": preset("tiny").replace(name="p64", psum_bits=64),         # results beyond int64
}


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("name", list(CONFIGS))
def test_outstage_verilog(sim, name):
    cfg = CONFIGS[name]
    run_bench(OutputStageUnit(cfg), "outstage", cfg, "sim_tb.tb_outstage", sim,
              params={"seed": 9, "blocks": 30})
