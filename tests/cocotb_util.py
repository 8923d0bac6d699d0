"""pytest side of the cocotb benches: one build directory per (unit, config, simulator)."""

from pathlib import Path

from gen.verilog import write_build
from sim_tb.runner import run_cocotb

__all__ = ["BUILD", "run_bench"]

BUILD = Path(__file__).resolve().parent.parent / "build" / "tests"


def run_bench(component, name, cfg, bench, sim, tag="", params=None, text=None, **kw):
    """Elaborate ``component`` (or take Verilog ``text``) as module ``name`` and run cocotb module
    ``bench`` on it under ``sim``."""
    out = BUILD / f"{name}-{cfg.name}{tag}-{sim}"
    vpath = write_build(cfg, out, component=component, name=name, text=text)
    return run_cocotb(vpath, name, bench, sim, out / "sim",
                      params={"config": cfg.to_dict(), **(params or {})}, **kw)
