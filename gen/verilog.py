"""Elaboration to Verilog: the accelerator top for a config, or any component."""

import json
from pathlib import Path

__all__ = ["TOP_NAME", "build_top", "to_verilog", "write_build"]

#: Verilog module name of the generated top.
TOP_NAME = "accel"


def build_top(cfg):
    """The top-level component for ``cfg``.

    Placeholder until the complete accelerator lands: the top is the processing element
    (:class:`rtl.pe.ProcessingElement`), a real unit of the design with the config's widths.
    """
    from rtl.pe import ProcessingElement
    return ProcessingElement(cfg)


def to_verilog(component, name):
    """Verilog text of an Amaranth ``component`` as module ``name`` (ports from its signature)."""
    from amaranth.back import verilog
    return verilog.convert(component, name=name, emit_src=False)


def write_build(cfg, out_dir, component=None, name=TOP_NAME):
    """Write ``<out_dir>/<name>.v`` and ``<out_dir>/config.json``; return the Verilog path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vpath = out / f"{name}.v"
    text = to_verilog(component if component is not None else build_top(cfg), name)
    vpath.write_text(text)
    (out / "config.json").write_text(cfg.to_json() + "\n")
    return vpath
