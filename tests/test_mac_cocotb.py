"""System-level check of the MAC on its generated Verilog under both simulators."""

import pytest

from rtl.config import preset
from rtl.mac import Mac
from sim_tb.runner import SIMULATORS
from tests.cocotb_util import run_bench


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("mac", ["serial", "parallel"])
def test_mac_verilog(sim, mac):
    cfg = preset("tiny").replace(mac=mac, lanes=3)
    run_bench(Mac(cfg), "mac", cfg, "sim_tb.tb_mac", sim, tag=f"-{mac}", params={"seed": 5})
