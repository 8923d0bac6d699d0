"""System-level check of the MAC on its generated Verilog under both simulators."""

import pytest

from rtl.config import preset
from rtl.mac import Mac
from sim_tb.runner import SIMULATORS
from tests.cocotb_util import run_bench


@pytest.mark.parametrize("sim", SIMULATORS)
@pytest.mark.parametrize("kind", ["serial", "parallel", "dynamic"])
def test_mac_verilog(sim, kind):
    """Random dot products (edge values included) bit-exact, and the MAC's busy cycles equal
    every operation's cycles (data-dependent with dynamic precision)."""
    cfg = preset("tiny").replace(mac="parallel" if kind == "parallel" else "serial", lanes=3,
                                 dynamic_precision=kind == "dynamic")
    run_bench(Mac(cfg), "mac", cfg, "sim_tb.tb_mac", sim, tag=f"-{kind}", params={"seed": 5})
