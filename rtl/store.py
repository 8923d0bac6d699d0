"""Store path: psums from the global buffer through the output stage, packed into DRAM bus words."""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .buffers import psum_container_bits, psums_per_word
from .outstage import OutputStageUnit, outstage_cfg_layout
from .packing import GroupPacker
from .sender import SENDER_ADDR_BITS

__all__ = ["StorePath", "store_job_layout", "OUT_CONTAINERS"]

#: Output element containers selectable per store (code = index).
OUT_CONTAINERS = (8, 16, 32, 64)


def store_job_layout(cfg):
    """One store (sampled at ``start``); see :class:`StorePath`."""
    return data.StructLayout({
        "src": unsigned(SENDER_ADDR_BITS),      # first psum element in the GLB
        "count": unsigned(SENDER_ADDR_BITS),    # elements to store (>= 1)
        "container": range(len(OUT_CONTAINERS)),   # code into OUT_CONTAINERS
        "stage": outstage_cfg_layout(cfg),
        "pack": 1,                              # precision-packed groups (gen/packing.py)
        "pack_signed": 1,                       # ... of signed elements
    })


class StorePath(wiring.Component):
    """Reads ``count`` consecutive psum elements from element address ``src`` of the GLB, passes
    each through the output stage (:class:`rtl.outstage.OutputStageUnit` programmed by
    ``job.stage``; bias 0: biases are in the psum tile already) and packs the results into
    ``dram_data_bits``-wide words for the DMA: element ``i`` of a word in bits
    ``i*container ..`` (two's complement, truncated to the container), the final word zero-padded.

    GLB word reads go out on ``o_glb_addr`` and come back on ``i_glb_data`` in order, at most
    ``depth`` outstanding. One element per cycle without back-pressure. ``o_wdata`` carries the
    packed words (``ceil(count / (dram_data_bits / container))`` of them). ``done`` pulses the
    cycle after the last word was taken; ``busy`` is high from ``start`` to ``done``.
    A container wider than the bus or a zero count sets ``error`` and ends at once.

    With ``job.pack`` the results go through a :class:`rtl.packing.GroupPacker` instead (8- or
    16-bit containers, signed as ``job.pack_signed`` says; the config's ``pack_group``): the
    words on ``o_wdata`` are the packed segment of the ``count`` elements, as many as the data
    needs (at most :func:`gen.packing.worst_case_words`). A packed job on a config without
    ``pack_group``, or with a 32/64-bit container, sets ``error`` and ends at once.
    """

    def __init__(self, cfg, depth=8):
        self.cfg = cfg
        self.depth = depth
        super().__init__({
            "job": In(store_job_layout(cfg)),
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(1),
            "o_glb_addr": Out(stream.Signature(unsigned(SENDER_ADDR_BITS))),
            "i_glb_data": In(stream.Signature(unsigned(cfg.dram_data_bits))),
            "o_wdata": Out(stream.Signature(unsigned(cfg.dram_data_bits))),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        bus, pc, k = cfg.dram_data_bits, psum_container_bits(cfg), psums_per_word(cfg)
        m.submodules.stage = stage = OutputStageUnit(cfg)
        job = Signal(store_job_layout(cfg))
        m.d.comb += stage.stage_cfg.eq(job.stage)
        err = Signal()
        m.d.comb += self.error.eq(err)

        # ---- word requests ---------------------------------------------------------------------
        w_next = Signal(SENDER_ADDR_BITS)            # next word to request
        w_last = Signal(SENDER_ADDR_BITS)            # last word holding an element of the store
        requesting = Signal()
        inflight = Signal(range(self.depth + 1))
        fire = self.o_glb_addr.valid & self.o_glb_addr.ready
        m.d.comb += [self.o_glb_addr.valid.eq(requesting & (inflight < self.depth)),
                     self.o_glb_addr.payload.eq(w_next)]
        with m.If(fire):
            m.d.sync += w_next.eq(w_next + 1)
            with m.If(w_next == w_last):
                m.d.sync += requesting.eq(0)

        # ---- unpack: one element per cycle into the output stage -------------------------------
        word = Signal(bus)
        held = Signal()                              # ``word`` holds unconsumed elements
        lane = Signal(range(k))
        left = Signal(SENDER_ADDR_BITS)              # elements still to unpack
        used_up = Signal()                           # the word's last element goes this cycle
        m.d.comb += used_up.eq(held & stage.i_acc.ready & ((lane == k - 1) | (left == 1)))
        # the next word is taken in the cycle the held one is used up: no bubble between words
        m.d.comb += self.i_glb_data.ready.eq(~held | used_up)
        acc = word.word_select(lane, pc)[:cfg.psum_bits].as_signed()
        m.d.comb += [stage.i_acc.valid.eq(held), stage.i_acc.payload.acc.eq(acc),
                     stage.i_acc.payload.bias.eq(0), stage.i_acc.payload.last.eq(left == 1)]
        with m.If(held & stage.i_acc.ready):
            m.d.sync += [left.eq(left - 1), lane.eq(lane + 1)]
            with m.If(used_up):
                m.d.sync += [held.eq(0), lane.eq(0)]
        with m.If(self.i_glb_data.valid & self.i_glb_data.ready):
            m.d.sync += [word.eq(self.i_glb_data.payload), held.eq(1)]
        m.d.sync += inflight.eq(inflight + fire - used_up)

        # ---- pack into bus words ---------------------------------------------------------------
        packed = Signal(bus)
        slot = Signal(range(bus // 8))
        per_word = Array(Const(bus // c if c <= bus else 1, range(bus // 8 + 1))
                         for c in OUT_CONTAINERS)[job.container]
        # the container packer's output register (or the group packer's, for packed jobs)
        out = stream.Signature(unsigned(bus)).create(path=("words",))
        with m.If(out.ready):
            m.d.sync += out.valid.eq(0)
        can_emit = ~out.valid | out.ready
        packing = Signal()                    # a packed job runs
        m.d.comb += packing.eq(job.pack)
        if cfg.pack_group:
            m.submodules.packer = packer = GroupPacker(cfg)
            m.d.comb += [
                packer.container16.eq(job.container == OUT_CONTAINERS.index(16)),
                packer.signed.eq(job.pack_signed),
                packer.i_data.payload.value.eq(stage.o_data.payload.data[:16]),
                packer.i_data.payload.last.eq(stage.o_data.payload.last),
            ]
            src = packer.o_data
            with m.If(packing):
                m.d.comb += [packer.i_data.valid.eq(stage.o_data.valid),
                             stage.o_data.ready.eq(packer.i_data.ready),
                             packer.o_data.ready.eq(self.o_wdata.ready)]
            with m.Else():
                m.d.comb += [stage.o_data.ready.eq(can_emit), out.ready.eq(self.o_wdata.ready)]
            m.d.comb += [self.o_wdata.valid.eq(Mux(packing, src.valid, out.valid)),
                         self.o_wdata.payload.eq(Mux(packing, src.payload, out.payload))]
            packed_done = packer.done
        else:
            m.d.comb += stage.o_data.ready.eq(can_emit)
            wiring.connect(m, out, wiring.flipped(self.o_wdata))
            packed_done = C(0)
        value = Signal(signed(max(OUT_CONTAINERS)))   # sign-extended result
        m.d.comb += value.eq(stage.o_data.payload.data)
        with m.If(stage.o_data.valid & can_emit & ~packing):
            placed = Signal(bus)
            with m.Switch(job.container):
                for code, c in enumerate(OUT_CONTAINERS):
                    if c <= bus:
                        with m.Case(code):
                            m.d.comb += placed.eq(packed | (value[:c] << (slot * c)))
            with m.If((slot + 1 == per_word) | stage.o_data.payload.last):
                m.d.sync += [out.valid.eq(1), out.payload.eq(placed), packed.eq(0), slot.eq(0)]
            with m.Else():
                m.d.sync += [packed.eq(placed), slot.eq(slot + 1)]

        # ---- control ---------------------------------------------------------------------------
        last_out = Signal()                           # the final word has been handed over
        with m.FSM(name="fsm") as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    j = self.job
                    too_wide = Array(Const(c > bus) for c in OUT_CONTAINERS)[j.container]
                    unpackable = Array(Const(not cfg.pack_group or c > 16)
                                       for c in OUT_CONTAINERS)[j.container]
                    bad = (j.count == 0) | too_wide | (j.pack & unpackable)
                    m.d.sync += [job.eq(j), err.eq(bad), w_next.eq(j.src // k),
                                 w_last.eq((j.src + j.count - 1) // k), requesting.eq(~bad),
                                 lane.eq(j.src % k), left.eq(j.count), packed.eq(0), slot.eq(0),
                                 last_out.eq(0)]
                    m.next = "RUN"
            with m.State("RUN"):
                with m.If(stage.o_data.valid & can_emit & stage.o_data.payload.last):
                    m.d.sync += last_out.eq(1)
                with m.If(err | Mux(packing, packed_done, last_out & ~out.valid)):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m
