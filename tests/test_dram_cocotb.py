"""System-level check of the DMA on its generated Verilog against cocotbext-axi's AxiRam."""

import pytest

from rtl.config import preset
from rtl.dram import Dma
from sim_tb.runner import SIMULATORS
from tests.cocotb_util import run_bench

# (data bits, max_burst, max_outstanding, commands)
CASES = {"32b": (32, 16, 2, 40), "64b": (64, 64, 4, 40)}


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_dma_verilog(sim, case):
    bits, max_burst, outstanding, commands = CASES[case]
    cfg = preset("tiny").replace(dram_data_bits=bits, glb_bytes=16 * 1024)
    run_bench(Dma(cfg, max_burst=max_burst, max_outstanding=outstanding), "dma", cfg,
              "sim_tb.tb_dram", sim, tag=f"-{case}",
              params={"seed": 21, "max_burst": max_burst, "max_outstanding": outstanding,
                      "commands": commands, "pause": 0.3})
