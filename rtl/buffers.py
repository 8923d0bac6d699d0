"""On-chip memories: PE scratchpads and the banked global buffer."""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .config import AccelConfig

__all__ = ["StreamSlice", "Scratchpad", "GlobalBuffer", "GLB_RESP_DEPTH", "psum_container_bits", "psums_per_word",
           "glb_addr_bits", "glb_elem_bits", "glb_load_layout", "glb_addr_layout",
           "glb_data_layout", "glb_psum_layout", "glb_stats_layout"]


class StreamSlice(wiring.Component):
    """Register slice of a stream (a two-entry skid buffer): cuts every combinational path
    through it, in both directions, at full throughput.

    Contract: ``o`` delivers the words taken on ``i``, in order, one cycle after at the
    earliest; ``i.ready`` and ``o.valid``/``o.payload`` are register outputs (``i.ready`` is
    high unless the second entry is taken, so a stalled ``o`` stops ``i`` one cycle later); with
    ``o.ready`` high one word passes per cycle. Reset: empty.
    """

    def __init__(self, shape):
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        skid_valid = Signal()
        skid = Signal.like(self.i.payload)
        take = self.i.valid & self.i.ready
        m.d.comb += self.i.ready.eq(~skid_valid)
        with m.If(~self.o.valid | self.o.ready):         # the output register is free
            with m.If(skid_valid):
                m.d.sync += [self.o.payload.eq(skid), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [self.o.valid.eq(take), self.o.payload.eq(self.i.payload)]
        with m.Elif(take):                               # output held: park the word
            m.d.sync += [skid_valid.eq(1), skid.eq(self.i.payload)]
        return m


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


# --------------------------------------------------------------------------------------------------
# Global buffer
# --------------------------------------------------------------------------------------------------

#: Words each read port's response FIFO holds (>= 3 keeps one read per cycle without back-pressure).
GLB_RESP_DEPTH = 4


def _ceil_log2(n):
    return max(0, (n - 1).bit_length())


def psum_container_bits(cfg):
    """Bits of the GLB slot one partial sum occupies: 32 if ``psum_bits <= 32``, else 64."""
    return 32 if cfg.psum_bits <= 32 else 64


def psums_per_word(cfg):
    """Psum containers in one GLB word (``dram_data_bits // psum_container_bits``)."""
    return cfg.dram_data_bits // psum_container_bits(cfg)


def glb_addr_bits(cfg):
    """Width of a GLB word address: one bit more than ``glb_words`` needs, so addresses up to
    twice the size reach the GLB (and flag ``error``) instead of aliasing onto valid words."""
    return _ceil_log2(cfg.glb_words) + 1


def glb_elem_bits(cfg):
    """Width of a psum element address (word address bits + container index bits)."""
    return glb_addr_bits(cfg) + _ceil_log2(psums_per_word(cfg))


def glb_load_layout(cfg):
    """Payload of ``i_load``: one whole-word write."""
    return data.StructLayout({"addr": unsigned(glb_addr_bits(cfg)),
                              "data": unsigned(cfg.dram_data_bits)})


def glb_addr_layout(cfg):
    """Payload of ``i_store_addr`` / ``i_send_addr``: one whole-word read request."""
    return data.StructLayout({"addr": unsigned(glb_addr_bits(cfg))})


def glb_data_layout(cfg):
    """Payload of ``o_store_data`` / ``o_send_data``: the word read."""
    return data.StructLayout({"data": unsigned(cfg.dram_data_bits)})


def glb_psum_layout(cfg):
    """Payload of ``i_psum``: write (``accumulate=0``) or add to (``accumulate=1``) one psum."""
    return data.StructLayout({"addr": unsigned(glb_elem_bits(cfg)),
                              "data": signed(cfg.psum_bits),
                              "accumulate": 1})


def glb_stats_layout():
    """Per-cycle GLB event counts: bank word reads and bank word writes performed this cycle."""
    return data.StructLayout({"reads": 2, "writes": 2})


class GlobalBuffer(wiring.Component):
    """The global buffer: banked SRAM holding ifmap, filter and psum tiles, with four stream ports.

    Storage is ``glb_words`` words of ``dram_data_bits`` bits in ``glb_banks`` banks; each bank is
    one :class:`amaranth.lib.memory.Memory` with one synchronous read port and one write port
    (simple dual-port: BRAM on FPGAs, a two-port SRAM macro in ASIC flows). Word address ``a``
    lives in bank ``a % glb_banks``, row ``a // glb_banks`` (low-order interleaving, so
    consecutive words hit different banks). Psum element address ``e`` names container
    ``e % k`` of word ``e // k``, ``k = psums_per_word(cfg)``; a container is
    ``psum_container_bits(cfg)`` (32 or 64) bits, container ``j`` being word bits
    ``[j*cb, (j+1)*cb)``.

    Ports (valid/ready streams; word addresses are :func:`glb_addr_bits` wide, element addresses
    :func:`glb_elem_bits`, one bit more than the memory needs so overruns are caught, not aliased):

    * ``i_load`` ``{addr, data}``: whole-word write (DMA load path).
    * ``i_store_addr`` ``{addr}`` -> ``o_store_data`` ``{data}``: whole-word read (DMA store path).
    * ``i_send_addr`` ``{addr}`` -> ``o_send_data`` ``{data}``: whole-word read (sender to the PEs).
    * ``i_psum`` ``{addr, data, accumulate}``: element write into a psum container.
      ``accumulate=0`` overwrites the container with ``data`` sign-extended; ``accumulate=1``
      replaces it with ``old + data``, wrapping at the container width. The other containers of
      the word are left unchanged (read-modify-write). The container is at least ``psum_bits``
      wide (strictly wider unless ``psum_bits`` is 32 or 64) and the mapper only accepts layers
      whose sums fit ``psum_bits``, so accumulation does not wrap in practice; an intermediate sum
      that leaves ``psum_bits`` but fits the container is kept exactly. Containers read back (on
      ``o_store_data`` / ``o_send_data``) as container-wide two's complement values.

    Contract:

    * Handshakes: every input port takes its request into a one-entry request register; its
      ``ready`` is ``register empty or its request is performed this cycle``, which depends only on
      registered state (of this and other ports and the response FIFO levels), never on any
      ``valid`` or ``payload`` combinationally. ``o_*_data`` hold ``valid``/``payload`` until taken
      (each read port has a :data:`GLB_RESP_DEPTH`-word response FIFO; a read is only issued
      to a bank when its word has room there, so back-pressure never loses or reorders data,
      it only stops the port from taking further addresses once the FIFO and register are full).
    * Banks and arbitration: per cycle each bank performs at most one read and one write. Reads
      (store, send, and the read half of a psum update) compete for a bank's read port in round
      robin (a per-bank pointer; the winner becomes lowest priority), so a read that keeps
      requesting (with room for its response) is served within three cycles. The write half of a
      psum update owns its bank's write port two cycles after its read; ``i_load`` gets the
      write port otherwise, and a psum update may not start on a bank while the load port is
      held back by a write-back there, so a load waits for at most two write-backs and loads and
      psum updates hammering one bank share its write port. No port starves. Each port requests
      one bank at a time, so ports aimed at different banks never wait for each other.
    * Latency with no conflicts (handshake in cycle ``t``): a load is written at the end of cycle
      ``t+1``; a psum element is read in ``t+1``, its word registered at the end of ``t+2`` (the
      block RAM's output never feeds the adder directly) and written back at the end of ``t+3``;
      a read is performed in ``t+1`` and its word is valid on ``o_*_data`` from cycle ``t+3``.
    * Throughput: one request per port per cycle, all four ports at once, when there is no
      back-pressure and no bank conflict (the three reads - store, send, psum - in different banks
      and the two writes - load, psum write-back - in different banks; four banks allow it), also
      for back-to-back psum updates of the same word or the same element.
    * Ordering within a port: requests are performed in handshake order; read data returns in
      request order; load writes land in order (a later write to a word wins); psum updates of one
      port apply in order. Read-modify-write hazard: forwarding, no stall. Every bank read returns
      the word written to that row in the same cycle if there is one (write-first, by a registered
      bypass next to the memory); a psum update's captured word also takes a write to its row in
      the cycle it arrives (an earlier update's write-back or a load), and its write-back owns the
      bank's write port, so each update is atomic and sees the previous one even back to back on
      the same element.
    * Ordering across ports: none while requests are in flight; two ports' requests to one word
      may be performed in either order. Each request is performed atomically in one cycle (a psum
      update is atomic as a whole). ``busy`` is high while an accepted request is not yet
      performed (a request register is full or a psum update is in its capture or write-back
      stage; read data waiting in a response FIFO does not count). If ``busy`` is low in cycle
      ``c``, every write handshaked before ``c`` has been performed and every request handshaked
      in or after ``c`` sees it.
    * Errors: a word address ``>= glb_words`` (or an element address ``>= glb_words * k``) sets
      the sticky ``error`` output and the access is dropped: no bank is touched (it does not
      count in ``stats``), a read returns a word of 0 in its turn, so nothing hangs. ``error``
      stays set until ``clear_error`` (a new error in the same cycle wins).
    * Counters: ``stats.reads`` / ``stats.writes`` count the bank word reads / writes performed
      in the cycle (0..3 / 0..2); a psum update counts one read and, two cycles later, one write.
    * Reset: request registers, psum capture and write-back stages and response FIFOs empty,
      round-robin pointers 0, ``error`` 0. Memory contents are not reset (zero after
      configuration/initialisation on FPGAs and in simulation; undefined on ASIC SRAM).

    Parameters
    ----------
    cfg : AccelConfig
        ``glb_words`` / ``glb_banks`` / ``dram_data_bits`` size the memory, ``psum_bits`` the psum
        port. ``ValueError`` if a psum container does not fit a word (``psum_bits > 32`` needs
        ``dram_data_bits >= 64``).

    Members
    -------
    i_load : In(stream.Signature(glb_load_layout(cfg)))
    i_store_addr : In(stream.Signature(glb_addr_layout(cfg)))
    o_store_data : Out(stream.Signature(glb_data_layout(cfg)))
    i_send_addr : In(stream.Signature(glb_addr_layout(cfg)))
    o_send_data : Out(stream.Signature(glb_data_layout(cfg)))
    i_psum : In(stream.Signature(glb_psum_layout(cfg)))
    error : Out(1)
        Sticky out-of-range flag; ``clear_error`` (In(1)) clears it.
    busy : Out(1)
        An accepted request has not been performed yet.
    stats : Out(glb_stats_layout())
        Per-cycle bank access counts for the performance counters.
    """

    def __init__(self, cfg):
        if not isinstance(cfg, AccelConfig):
            raise TypeError(f"cfg: must be an AccelConfig (got {cfg!r})")
        cb = psum_container_bits(cfg)
        if cb > cfg.dram_data_bits:
            raise ValueError(
                f"psum_bits: a {cfg.psum_bits}-bit psum needs a {cb}-bit GLB container, wider "
                f"than dram_data_bits (got psum_bits={cfg.psum_bits}, "
                f"dram_data_bits={cfg.dram_data_bits})")
        self.cfg = cfg
        self.container_bits = cb
        self.psums_per_word = psums_per_word(cfg)
        super().__init__({
            "i_load": In(stream.Signature(glb_load_layout(cfg))),
            "i_store_addr": In(stream.Signature(glb_addr_layout(cfg))),
            "o_store_data": Out(stream.Signature(glb_data_layout(cfg))),
            "i_send_addr": In(stream.Signature(glb_addr_layout(cfg))),
            "o_send_data": Out(stream.Signature(glb_data_layout(cfg))),
            "i_psum": In(stream.Signature(glb_psum_layout(cfg))),
            "error": Out(1),
            "clear_error": In(1),
            "busy": Out(1),
            "stats": Out(glb_stats_layout()),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        width = cfg.dram_data_bits
        nbanks = cfg.glb_banks
        bank_bits = _ceil_log2(nbanks)
        rows = cfg.glb_words // nbanks
        cb = self.container_bits
        k = self.psums_per_word
        k_bits = _ceil_log2(k)

        def decode(word_addr, bank, row, oob):
            """Split a word address into bank and row and flag it out of range."""
            return [bank.eq(word_addr[:bank_bits]), row.eq(word_addr[bank_bits:]),
                    oob.eq(word_addr >= cfg.glb_words)]

        # Banks: one read and one write port each, plus a registered write-first bypass.
        rd_ports, wr_ports, rdata = [], [], []
        for b in range(nbanks):
            mem = Memory(shape=unsigned(width), depth=rows, init=[])
            m.submodules[f"bank{b}"] = mem
            rd = mem.read_port(transparent_for=())
            wr = mem.write_port()
            fwd_hit = Signal(name=f"fwd_hit{b}")
            fwd_data = Signal(width, name=f"fwd_data{b}")
            m.d.sync += [fwd_hit.eq(rd.en & wr.en & (rd.addr == wr.addr)), fwd_data.eq(wr.data)]
            word = Signal(width, name=f"rdata{b}")
            m.d.comb += word.eq(Mux(fwd_hit, fwd_data, rd.data))
            rd_ports.append(rd)
            wr_ports.append(wr)
            rdata.append(word)

        def bank_word(bank):
            out = 0
            for b in range(nbanks):
                out = Mux(bank == b, rdata[b], out) if nbanks > 1 else rdata[b]
            return out

        err_set = []

        # ---- request registers -------------------------------------------------------------------
        class Req:
            pass

        def request_register(name, port, word_addr_of):
            """One-entry register in front of a port; returns the held request's decoded fields."""
            r = Req()
            r.valid = Signal(name=f"{name}_held")
            r.bank = Signal(range(nbanks), name=f"{name}_bank")
            r.row = Signal(range(rows), name=f"{name}_row")
            r.oob = Signal(name=f"{name}_oob")
            r.payload = Signal.like(port.payload, name=f"{name}_payload")
            r.issue = Signal(name=f"{name}_issue")    # performed (or dropped) this cycle
            r.grant = Signal(name=f"{name}_grant")    # won its bank this cycle
            r.req = Signal(name=f"{name}_req")        # wants its bank this cycle
            m.d.comb += port.ready.eq(~r.valid | r.issue)
            with m.If(port.valid & port.ready):
                m.d.sync += [r.valid.eq(1), r.payload.eq(port.payload)]
                m.d.sync += decode(word_addr_of(port.payload), r.bank, r.row, r.oob)
            with m.Elif(r.issue):
                m.d.sync += r.valid.eq(0)
            err_set.append(r.issue & r.oob)
            return r

        load = request_register("load", self.i_load, lambda p: p.addr)
        store = request_register("store", self.i_store_addr, lambda p: p.addr)
        send = request_register("send", self.i_send_addr, lambda p: p.addr)
        psum = request_register("psum", self.i_psum, lambda p: p.addr[k_bits:])

        # ---- psum update: read (t+1), capture (t+2), add and write back (t+3) --------------------
        # One update per stage: which container, the value, overwrite or accumulate.
        update = data.StructLayout({"valid": 1, "bank": range(nbanks), "row": range(rows),
                                    "index": range(k), "data": signed(cfg.psum_bits), "acc": 1})
        # Capture stage: the bank's word arrives; a write to the same row in this cycle (an
        # earlier update's write-back or a load) is forwarded into the captured word.
        cap = Signal(update)
        m.d.sync += [cap.valid.eq(psum.grant), cap.bank.eq(psum.bank), cap.row.eq(psum.row),
                     cap.index.eq(psum.payload.addr[:k_bits]), cap.data.eq(psum.payload.data),
                     cap.acc.eq(psum.payload.accumulate)]
        # Write-back stage: add into the captured word and write it.
        wb = Signal(update)
        old_word = Signal(width)
        m.d.sync += wb.eq(cap)
        containers = [old_word[j * cb:(j + 1) * cb] for j in range(k)]
        old_c = Signal(cb)
        m.d.comb += old_c.eq(old_word.word_select(wb.index, cb) if k > 1 else containers[0])
        ext = Signal(signed(cb))
        m.d.comb += ext.eq(wb.data)                  # sign extension to the container
        new_c = Signal(cb)
        m.d.comb += new_c.eq(Mux(wb.acc, old_c + ext, ext))
        new_word = Signal(width)
        m.d.comb += new_word.eq(Cat(*[Mux(wb.index == j, new_c, containers[j]) if k > 1 else new_c
                                      for j in range(k)]))

        # ---- writes: psum write-back first, then the load port -----------------------------------
        load_blocked = Signal()     # the load port's request waits for a write-back on its bank
        m.d.comb += [
            load.req.eq(load.valid & ~load.oob),
            load.grant.eq(load.req & ~(wb.valid & (wb.bank == load.bank))),
            load_blocked.eq(load.req & ~load.grant),
            load.issue.eq(load.valid & (load.oob | load.grant)),
        ]
        for b, wr in enumerate(wr_ports):
            wb_here = wb.valid & (wb.bank == b)
            load_here = load.grant & (load.bank == b)
            m.d.comb += [
                wr.en.eq(wb_here | load_here),
                wr.addr.eq(Mux(wb_here, wb.row, load.row)),
                wr.data.eq(Mux(wb_here, new_word, load.payload.data)),
            ]
        wb_hit = wb.valid & (wb.bank == cap.bank) & (wb.row == cap.row)
        load_hit = load.grant & (load.bank == cap.bank) & (load.row == cap.row)
        m.d.sync += old_word.eq(Mux(wb_hit, new_word,
                                    Mux(load_hit, load.payload.data, bank_word(cap.bank))))

        # ---- read ports: credit for the response FIFO --------------------------------------------
        readers = []
        for name, r, out in (("store", store, self.o_store_data), ("send", send, self.o_send_data)):
            fifo = SyncFIFO(width=width, depth=GLB_RESP_DEPTH)
            m.submodules[f"{name}_resp"] = fifo
            pend = Signal(name=f"{name}_pend")          # a read issued last cycle returns now
            pend_bank = Signal(range(nbanks), name=f"{name}_pend_bank")
            pend_oob = Signal(name=f"{name}_pend_oob")
            credit = Signal(name=f"{name}_credit")
            m.d.comb += [
                credit.eq(fifo.level + pend < GLB_RESP_DEPTH),
                r.req.eq(r.valid & ~r.oob & credit),
                r.issue.eq(r.valid & credit & (r.oob | r.grant)),
                fifo.w_en.eq(pend),
                fifo.w_data.eq(Mux(pend_oob, 0, bank_word(pend_bank))),
                out.valid.eq(fifo.r_rdy),
                out.payload.data.eq(fifo.r_data),
                fifo.r_en.eq(out.ready),
            ]
            m.d.sync += [pend.eq(r.issue), pend_bank.eq(r.bank), pend_oob.eq(r.oob)]
            readers.append(r)

        # A psum update may not start on a bank whose write port the load port is waiting for.
        m.d.comb += [
            psum.req.eq(psum.valid & ~psum.oob & ~(load_blocked & (load.bank == psum.bank))),
            psum.issue.eq(psum.valid & (psum.oob | psum.grant)),
        ]
        readers.append(psum)

        # ---- per-bank round-robin read arbitration -----------------------------------------------
        n = len(readers)
        grants = [[] for _ in readers]
        for b, rd in enumerate(rd_ports):
            ptr = Signal(range(n), name=f"rr{b}")
            reqs = [r.req & (r.bank == b) for r in readers]
            gnt = [Signal(name=f"gnt{b}_{i}") for i in range(n)]
            with m.Switch(ptr):
                for start in range(n):
                    with m.Case(start):
                        order = [(start + j) % n for j in range(n)]
                        with m.If(reqs[order[0]]):
                            m.d.comb += gnt[order[0]].eq(1)
                        for i in order[1:]:
                            with m.Elif(reqs[i]):
                                m.d.comb += gnt[i].eq(1)
            for i, r in enumerate(readers):
                with m.If(gnt[i]):
                    m.d.sync += ptr.eq((i + 1) % n)
                grants[i].append(gnt[i])
            addr = 0
            for i, r in enumerate(readers):
                addr = Mux(gnt[i], r.row, addr)
            m.d.comb += [rd.en.eq(Cat(*gnt).any()), rd.addr.eq(addr)]
        for r, g in zip(readers, grants):
            m.d.comb += r.grant.eq(Cat(*g).any())

        # ---- status ------------------------------------------------------------------------------
        error = Signal()
        m.d.sync += error.eq((error & ~self.clear_error) | Cat(*err_set).any())
        m.d.comb += [
            self.error.eq(error),
            self.busy.eq(load.valid | store.valid | send.valid | psum.valid | cap.valid | wb.valid),
            self.stats.reads.eq(sum(rd.en for rd in rd_ports)),
            self.stats.writes.eq(sum(wr.en for wr in wr_ports)),
        ]
        return m
