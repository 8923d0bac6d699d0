"""On-chip memories: PE scratchpads and the banked global buffer."""

from amaranth.hdl import *
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["Scratchpad"]


class Scratchpad(wiring.Component):
    """A ``depth`` x ``shape`` memory with one synchronous read and one write port.

    Built on :class:`amaranth.lib.memory.Memory` so synthesis maps it to LUT-RAM/BRAM on FPGAs or a
    macro in ASIC flows. Read: assert ``r_en`` with ``r_addr``; ``r_data`` holds the word from the
    next cycle on and keeps it while ``r_en`` is low. Write: ``w_en`` with ``w_addr``/``w_data``
    takes effect at the clock edge; a read of the same address in that cycle returns the old word.
    ``reads``/``writes`` are the per-cycle access strobes that feed the performance counters.
    """

    def __init__(self, shape, depth):
        self.shape = shape
        self.depth = depth
        abits = max(1, (depth - 1).bit_length())
        super().__init__({
            "r_en": In(1), "r_addr": In(abits), "r_data": Out(shape),
            "w_en": In(1), "w_addr": In(abits), "w_data": In(shape),
            "reads": Out(1), "writes": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=self.shape, depth=self.depth, init=[])
        rd = mem.read_port(transparent_for=())
        wr = mem.write_port()
        m.d.comb += [
            rd.en.eq(self.r_en), rd.addr.eq(self.r_addr), self.r_data.eq(rd.data),
            wr.en.eq(self.w_en), wr.addr.eq(self.w_addr), wr.data.eq(self.w_data),
            self.reads.eq(self.r_en), self.writes.eq(self.w_en),
        ]
        return m
