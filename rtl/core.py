"""On-chip datapath: global buffer, sender, PE array, psum writer and store path, wired together."""

from amaranth.hdl import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .array import PeArray, array_stats_layout
from .buffers import GlobalBuffer, StreamSlice, glb_load_layout, glb_stats_layout
from .passcfg import array_pe_cfg_layout, pe_pass_layout
from .pe import ProcessingElement
from .sender import Sender, sender_job_layout, sender_table_layout
from .store import StorePath, store_job_layout
from .writer import PsumWriter, writer_job_layout, writer_table_layout

__all__ = ["Core"]


class Core(wiring.Component):
    """Everything between the DMA and the controller.

    ``i_load`` writes whole words into the global buffer (the DMA's read data). A pass is set up
    through ``i_sender_table``, ``i_roles`` and ``i_writer_table`` (while idle) and the
    ``sender_job`` / ``pass_cfg`` / ``writer_job`` inputs, then ``start_pass`` starts the sender
    (GLB -> multicast buses), the PE array and the psum writer (array -> GLB psum tile, writing or
    accumulating) together; ``pass_done`` pulses once all three have finished (``pass_error``
    is the array's error, sampled then). ``start_store`` with ``store_job`` streams psum elements
    through the output stage onto ``o_wdata`` (the DMA's write data); ``store_done`` pulses after
    its last word. ``busy`` is high while a pass or a store runs or the GLB still has accesses in
    flight (``i_load`` words are visible to a pass or store started after ``busy`` went low).
    ``glb_error`` is the GLB's sticky address error; ``stats`` the array's and GLB's per-cycle
    event counts.
    """

    def __init__(self, cfg, make_pe=ProcessingElement):
        self.cfg = cfg
        self._make_pe = make_pe
        super().__init__({
            "i_load": In(stream.Signature(glb_load_layout(cfg))),
            "i_sender_table": In(stream.Signature(sender_table_layout(cfg))),
            "i_roles": In(stream.Signature(array_pe_cfg_layout(cfg))),
            "i_writer_table": In(stream.Signature(writer_table_layout(cfg))),
            "sender_job": In(sender_job_layout(cfg)),
            "pass_cfg": In(pe_pass_layout(cfg)),
            "writer_job": In(writer_job_layout(cfg)),
            "start_pass": In(1),
            "pass_done": Out(1),
            "pass_error": Out(1),
            "store_job": In(store_job_layout(cfg)),
            "start_store": In(1),
            "store_done": Out(1),
            "store_error": Out(1),
            "o_wdata": Out(stream.Signature(unsigned(cfg.dram_data_bits))),
            "busy": Out(1),
            "glb_error": Out(1),
            "clear_glb_error": In(1),
            "array_stats": Out(array_stats_layout(cfg)),
            "glb_stats": Out(glb_stats_layout()),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        m.submodules.glb = glb = GlobalBuffer(cfg)
        m.submodules.sender = sender = Sender(cfg)
        m.submodules.array = array = PeArray(cfg, make_pe=self._make_pe)
        m.submodules.writer = writer = PsumWriter(cfg)
        m.submodules.store = store = StorePath(cfg)

        wiring.connect(m, wiring.flipped(self.i_load), glb.i_load)
        wiring.connect(m, wiring.flipped(self.i_sender_table), sender.i_table)
        wiring.connect(m, wiring.flipped(self.i_roles), array.i_pe_cfg)
        wiring.connect(m, wiring.flipped(self.i_writer_table), writer.i_table)
        # register slices between the units that span the array: the broadcast's ready and the
        # collector's take reach the sender and the writer (and through them the GLB) a cycle
        # later instead of in the same cycle
        for name, src, dst in (("filter", sender.o_filter, array.i_filter),
                               ("ifmap", sender.o_ifmap, array.i_ifmap),
                               ("psum", array.o_psum, writer.i_psum)):
            m.submodules[f"{name}_slice"] = sl = StreamSlice(src.payload.shape())
            wiring.connect(m, src, sl.i)
            wiring.connect(m, sl.o, dst)
        wiring.connect(m, store.o_wdata, wiring.flipped(self.o_wdata))

        # address streams: the units count in wider address spaces than the GLB decodes; the GLB
        # flags an out-of-range address, so truncation cannot alias silently within its range
        def link_addr(src, dst):
            m.d.comb += [dst.valid.eq(src.valid), src.ready.eq(dst.ready),
                         dst.payload.addr.eq(src.payload)]

        def link_data(src, dst):
            m.d.comb += [dst.valid.eq(src.valid), src.ready.eq(dst.ready),
                         dst.payload.eq(src.payload.data)]

        link_addr(sender.o_glb_addr, glb.i_send_addr)
        link_data(glb.o_send_data, sender.i_glb_data)
        link_addr(store.o_glb_addr, glb.i_store_addr)
        link_data(glb.o_store_data, store.i_glb_data)
        m.d.comb += [glb.i_psum.valid.eq(writer.o_write.valid),
                     writer.o_write.ready.eq(glb.i_psum.ready),
                     glb.i_psum.payload.addr.eq(writer.o_write.payload.addr),
                     glb.i_psum.payload.data.eq(writer.o_write.payload.data),
                     glb.i_psum.payload.accumulate.eq(writer.o_write.payload.accumulate)]

        m.d.comb += [
            sender.job.eq(self.sender_job), array.pass_cfg.eq(self.pass_cfg),
            writer.job.eq(self.writer_job), store.job.eq(self.store_job),
            sender.start.eq(self.start_pass), array.start.eq(self.start_pass),
            writer.start.eq(self.start_pass), store.start.eq(self.start_store),
            self.store_done.eq(store.done), self.store_error.eq(store.error),
            self.glb_error.eq(glb.error), glb.clear_error.eq(self.clear_glb_error),
            self.array_stats.eq(array.stats), self.glb_stats.eq(glb.stats),
        ]

        # a pass ends when the sender, the array and the writer have each pulsed done
        pending = Signal(3)
        dones = Cat(sender.done, array.done, writer.done)
        left = pending & ~dones
        with m.If(self.start_pass):
            m.d.sync += pending.eq(0b111)
        with m.Elif(pending != 0):
            m.d.sync += pending.eq(left)
            with m.If(left == 0):
                m.d.comb += [self.pass_done.eq(1),
                             self.pass_error.eq(array.error | writer.error)]
        m.d.comb += self.busy.eq((pending != 0) | store.busy | glb.busy)
        return m
