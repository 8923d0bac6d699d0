"""Elaboration to Verilog: the accelerator top for a config, or any component."""

from pathlib import Path

__all__ = ["TOP_NAME", "PE_MODULE", "build_top", "top_verilog", "to_verilog", "write_build",
           "BlackBox", "array_verilog", "soc_verilog", "SOC_NAME"]

#: Verilog module name of the generated top.
TOP_NAME = "accel"
#: Verilog module name of the board SoC top (:class:`rtl.soc.BoardSoc`).
SOC_NAME = "soc"
#: Verilog module name of the processing element, emitted once and instantiated per PE.
PE_MODULE = "rs_pe"


def build_top(cfg, **kwargs):
    """The accelerator (:class:`rtl.top.Accelerator`) for ``cfg`` with every PE a black-box
    instance of ``PE_MODULE`` (see :func:`top_verilog`); ``kwargs`` go to the Accelerator."""
    from rtl.pe import pe_signature
    from rtl.top import Accelerator
    return Accelerator(cfg, make_pe=lambda c: BlackBox(pe_signature(c), PE_MODULE), **kwargs)


def top_verilog(cfg, name=TOP_NAME, **kwargs):
    """Verilog of the accelerator for ``cfg`` as module ``name``: the PE module once, then the
    top that instantiates it ``rows * cols`` times."""
    from rtl.pe import ProcessingElement
    return to_verilog(ProcessingElement(cfg), PE_MODULE) + "\n" + \
        to_verilog(build_top(cfg, **kwargs), name)


def soc_verilog(cfg, mem_bytes, divisor, name=SOC_NAME):
    """Verilog of the board SoC (:class:`rtl.soc.BoardSoc`) with one shared PE module."""
    from rtl.pe import ProcessingElement, pe_signature
    from rtl.soc import BoardSoc
    soc = BoardSoc(cfg, mem_bytes, divisor,
                   make_pe=lambda c: BlackBox(pe_signature(c), PE_MODULE))
    return to_verilog(ProcessingElement(cfg), PE_MODULE) + "\n" + to_verilog(soc, name)


def to_verilog(component, name):
    """Verilog text of an Amaranth ``component`` as module ``name`` (ports from its signature)."""
    from amaranth.back import verilog
    return verilog.convert(component, name=name, emit_src=False)


def _black_box_class():
    from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In

    class BlackBox(wiring.Component):
        """A component with ``signature`` realised as an instance of Verilog module ``module``.

        Used so that a module repeated many times (the PE) is emitted once: the generated
        Verilog keeps the hierarchy, shrinks by the repetition factor, and builds faster in
        Verilator and synthesis. Not simulatable in Amaranth (the instance is opaque).
        """

        def __init__(self, signature, module):
            self._module = module
            super().__init__(signature)

        def elaborate(self, platform):
            m = Module()
            ports = {"i_clk": ClockSignal(), "i_rst": ResetSignal()}
            for path, member, value in self.signature.flatten(self):
                name = "__".join(str(p) for p in path)
                ports[("i_" if member.flow == In else "o_") + name] = value
            m.submodules.inst = Instance(self._module, **ports)
            return m

    return BlackBox


def BlackBox(signature, module):                   # noqa: N802 (a class, built lazily)
    return _black_box_class()(signature, module)


def array_verilog(cfg, name="pe_array"):
    """Verilog of :class:`rtl.array.PeArray` with one shared PE module (``PE_MODULE``)."""
    from rtl.array import PeArray
    from rtl.pe import ProcessingElement, pe_signature
    pe_text = to_verilog(ProcessingElement(cfg), PE_MODULE)
    array = PeArray(cfg, make_pe=lambda c: BlackBox(pe_signature(c), PE_MODULE))
    return pe_text + "\n" + to_verilog(array, name)


def write_build(cfg, out_dir, component=None, name=TOP_NAME, text=None):
    """Write ``<out_dir>/<name>.v`` and ``<out_dir>/config.json``; return the Verilog path.

    The Verilog is ``text`` if given, else that of ``component`` (default: the accelerator top,
    :func:`top_verilog`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vpath = out / f"{name}.v"
    if text is None:
        text = top_verilog(cfg, name) if component is None else to_verilog(component, name)
    vpath.write_text(text)
    (out / "config.json").write_text(cfg.to_json() + "\n")
    return vpath
