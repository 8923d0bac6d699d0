"""Controller: fetches the program (``gen/program.py``) from DRAM through the DMA and sequences the core."""

from amaranth.hdl import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from gen.packing import header_bits

from .buffers import glb_load_layout
from .dram import DATA_BUFFER_WORDS, dma_cmd_layout, dma_done_layout, dma_rdata_layout
from .packing import GroupUnpacker
from .passcfg import array_pe_cfg_layout, pe_pass_layout
from .sender import sender_job_layout, sender_table_layout
from .store import OUT_CONTAINERS, store_job_layout
from .writer import writer_job_layout, writer_table_layout

__all__ = ["Controller", "ERRORS", "OPCODES", "PHASES", "FETCH_BYTES", "write_targets", "LOAD_OPERANDS",
           "STORE_OPERANDS", "STOREP_OPERANDS"]

#: Instruction opcodes (the encoding is documented in gen/program.py).
OPCODES = {"LOAD": 1, "STORE": 2, "WRITE": 3, "PASS": 4, "SYNC": 5, "END": 6, "LOADP": 7,
           "STOREP": 8}
#: Bytes of program the controller fetches with one DMA read (an aligned block).
FETCH_BYTES = 64
#: Operand words after the header (LOADP has as many as LOAD).
LOAD_OPERANDS = 5
STORE_OPERANDS = 4
STOREP_OPERANDS = 3
#: What the controller is doing, reported on ``phase`` (code = index): fetching and decoding
#: instructions and pushing WRITE values, running a LOAD, a PASS, a STORE, or waiting in
#: SYNC/END (and finishing).
PHASES = ("idle", "program", "load", "pass", "store", "sync")
#: Sequencer states of each phase.
_PHASE_STATES = {"program": ("HDR", "ARGS", "WR_WORDS", "WR_PUSH"),
                 "load": ("LOAD_CMD", "LOAD_DATA", "LOADP_CMD", "LOADP_DATA"),
                 "pass": ("PASS_START", "PASS_WAIT"),
                 "store": ("STORE_CHECK", "STORE_START", "STORE_CMD", "STORE_WAIT",
                           "STOREP_RUN"),
                 "sync": ("SYNC", "END", "FINISH")}
#: Error codes reported in ``error_code`` (0: none).
ERRORS = {"none": 0, "bad_opcode": 1, "bad_target": 2, "bad_store": 3, "fetch_dram": 4,
          "load_dram": 5, "store_dram": 6, "pass": 7, "store": 8, "glb": 9, "timeout": 10,
          "bad_packed": 11}


def write_targets(cfg):
    """WRITE targets in code order: ``(name, layout, is_stream)``. Stream targets are table
    entries pushed into the core; the others are job registers held by the controller."""
    return [("sender_table", sender_table_layout(cfg), True),
            ("roles", array_pe_cfg_layout(cfg), True),
            ("writer_table", writer_table_layout(cfg), True),
            ("sender_job", sender_job_layout(cfg), False),
            ("pass_cfg", pe_pass_layout(cfg), False),
            ("writer_job", writer_job_layout(cfg), False),
            ("store_job", store_job_layout(cfg), False)]


def _words(layout):
    return -(-Shape.cast(layout).width // 32)


class Controller(wiring.Component):
    """Runs the program at DRAM byte address ``prog_addr`` when ``start`` pulses while idle.

    Program words are fetched in aligned blocks of :data:`FETCH_BYTES` through the DMA
    (``dma_cmd`` / ``dma_rdata`` / ``dma_done``), a block when the next word is not held, so only
    while no LOAD or STORE uses the DMA and DMA tokens never interleave. (A program must not
    overwrite itself: a held block is not refetched.)
    LOAD streams the DMA's read data into the GLB (``o_load``, consecutive word addresses); STORE
    starts the core's store path (whose words go straight to the DMA's write data) with the
    ``store_job`` register and waits for both the DMA token and ``store_done``; WRITE pushes table
    entries into the core or sets a job register; PASS pulses ``start_pass`` and waits for
    ``pass_done``; SYNC waits until ``core_busy`` is low; END waits likewise, then finishes.

    Status: ``busy`` from ``start`` to ``done`` (``phase``, :data:`PHASES`, says what it does); ``done`` pulses once at the end of every run;
    ``error`` and ``error_code`` (:data:`ERRORS`) hold why a run stopped early until the next
    ``start``; ``ipc`` is the byte address of the instruction being executed (of the failing one
    after an error). Errors: an unknown opcode or WRITE target; a STORE whose size disagrees with
    its store job (``rows * row_words`` must equal the words of ``count`` elements in the
    container), whose container is wider than the bus, or whose address or stride is not
    bus-aligned (rejected before anything starts, so the DMA and store path never wait on each
    other); a DRAM error response on a fetch, LOAD or STORE (the transfer still completes); a
    failed pass or store; a GLB address error seen at END; and ``timeout``: with ``timeout != 0``
    a run stops when one instruction waits that many cycles without progress (the core may then
    be left mid-pass; reset it before the next run). Every wait ends on a token, pulse or the
    timeout, so a run never hangs while the DMA is responsive.

    With the packed DRAM format (``cfg.pack_group``, :mod:`gen.packing`): LOADP reads a packed
    segment through a :class:`rtl.packing.GroupUnpacker` into the GLB (``bad_packed`` when the
    segment ends early or has a bad header); STOREP runs a packed store job (``pack`` set; a
    plain STORE requires it clear) and writes the words as they come, in DMA writes of up to
    :data:`rtl.dram.DATA_BUFFER_WORDS` words (the words the DMA buffers ahead of a command) from
    the region's start on, so the DRAM traffic is what the data needs; the region must have room
    for the job at full precision (``bad_store`` otherwise). Without ``pack_group`` both are
    unknown opcodes.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        members = {
            "start": In(1), "prog_addr": In(cfg.dram_addr_bits), "timeout": In(32),
            "busy": Out(1), "done": Out(1), "error": Out(1), "error_code": Out(8),
            "phase": Out(range(len(PHASES))),
            "ipc": Out(cfg.dram_addr_bits),
            "dma_cmd": Out(stream.Signature(dma_cmd_layout(cfg))),
            "dma_rdata": In(stream.Signature(dma_rdata_layout(cfg))),
            "dma_done": In(stream.Signature(dma_done_layout())),
            "o_load": Out(stream.Signature(glb_load_layout(cfg))),
            "start_pass": Out(1), "pass_done": In(1), "pass_error": In(1),
            "start_store": Out(1), "store_done": In(1), "store_error": In(1),
            "core_busy": In(1), "glb_error": In(1),
            "store_word": In(1),
        }
        for name, layout, is_stream in write_targets(cfg):
            members[name] = Out(stream.Signature(layout)) if is_stream else Out(layout)
        super().__init__(members)

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        bus = cfg.dram_data_bits
        bus_bytes = bus // 8
        align = ~Const(bus_bytes - 1, cfg.dram_addr_bits)

        # ---- program word supply: 64-byte blocks, fetched when the next word is not held -----
        # A block's words become usable once its DMA token is in (only the token says whether
        # the read failed). A failed block read may just run past the end of memory, so the
        # fetcher then retries bus word by bus word; a failed single read is a fetch error.
        blk_bits = exact_log2(FETCH_BYTES)
        bus_shift = exact_log2(bus_bytes)
        beats = FETCH_BYTES // bus_bytes
        pc = Signal(cfg.dram_addr_bits)          # byte address of the next program word
        fbuf = Signal(8 * FETCH_BYTES)           # the held block
        fblock = Signal(cfg.dram_addr_bits - blk_bits)   # its address
        fheld = Signal(beats)                    # its bus words that are valid
        beat = Signal(range(beats))
        single = Signal()                        # fall back to one bus word per read
        want = Signal()                          # the sequencer waits for a word
        take = Signal()                          # ... and takes it this cycle
        fetch_idle = Signal()
        fetch_cmd = Signal()
        fetch_err = Signal()
        word = Signal(32)
        pc_beat = pc[bus_shift:blk_bits] if beats > 1 else C(0, 1)
        m.d.comb += word.eq(fbuf.word_select(pc[2:blk_bits], 32))
        w_valid = (fblock == pc[blk_bits:]) & fheld.bit_select(pc_beat, 1) & fetch_idle
        with m.If(take):
            m.d.sync += pc.eq(pc + 4)

        with m.FSM(name="fetch"):
            with m.State("IDLE"):
                m.d.comb += fetch_idle.eq(1)
                with m.If(want & ~w_valid & ~fetch_err):
                    m.next = "CMD"
            with m.State("CMD"):
                m.d.comb += fetch_cmd.eq(1)
                with m.If(self.dma_cmd.ready):
                    m.d.sync += [fblock.eq(pc[blk_bits:]), fheld.eq(0),
                                 beat.eq(Mux(single, pc_beat, 0))]
                    m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += self.dma_rdata.ready.eq(1)
                with m.If(self.dma_rdata.valid):
                    m.d.sync += [fbuf.word_select(beat, bus).eq(self.dma_rdata.payload.data),
                                 beat.eq(beat + 1)]
                    with m.If(self.dma_rdata.payload.last):
                        m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.dma_done.ready.eq(1)
                with m.If(self.dma_done.valid):
                    with m.If(~self.dma_done.payload.error):
                        m.d.sync += fheld.eq(Mux(single, 1 << pc_beat, (1 << beats) - 1))
                    with m.Elif(single):
                        m.d.sync += fetch_err.eq(1)
                    with m.Else():
                        m.d.sync += single.eq(1)
                    m.next = "IDLE"

        # ---- DMA command: the fetcher's or the sequencer's ------------------------------------
        seq_cmd = Signal()
        seq_payload = Signal(dma_cmd_layout(cfg))
        cmd = self.dma_cmd.payload
        m.d.comb += self.dma_cmd.valid.eq(fetch_cmd | seq_cmd)
        with m.If(fetch_cmd):
            m.d.comb += [cmd.write.eq(0), cmd.rows.eq(1), cmd.stride.eq(0),
                         cmd.addr.eq(Mux(single, pc & align, Cat(C(0, blk_bits), pc[blk_bits:]))),
                         cmd.row_words.eq(Mux(single, 1, beats))]
        with m.Else():
            m.d.comb += cmd.eq(seq_payload)

        # ---- WRITE targets ----------------------------------------------------------------------
        targets = write_targets(cfg)
        max_words = max(_words(layout) for _, layout, _ in targets)
        acc = Signal(32 * max_words)             # the value being assembled, LSB word first
        wi = Signal(range(max_words + 1))
        target = Signal(range(len(targets)))
        count = Signal(16)
        t_words = Signal(range(max_words + 1))
        with m.Switch(target):
            for i, (_, layout, _) in enumerate(targets):
                with m.Case(i):
                    m.d.comb += t_words.eq(_words(layout))
        for name, layout, is_stream in targets:
            if is_stream:
                m.d.comb += getattr(self, name).payload.eq(acc[:Shape.cast(layout).width])

        # ---- STORE validation: DMA words must equal what the store path will produce ---------
        args = Array(Signal(32, name=f"arg{i}") for i in range(LOAD_OPERANDS))
        job = self.store_job
        job_words = Signal(len(job.count) + 6)
        with m.Switch(job.container):
            for code, cbits in enumerate(OUT_CONTAINERS):
                with m.Case(code):
                    if cbits <= bus:
                        total_bits = job.count * cbits
                        m.d.comb += job_words.eq((total_bits + bus - 1) >> exact_log2(bus))
        packed_ok = C(0)
        if cfg.pack_group:
            # room of the job at full precision (gen.packing.worst_case_words)
            groups = (job.count + cfg.pack_group - 1) >> exact_log2(cfg.pack_group)
            wide = job.container == OUT_CONTAINERS.index(16)
            worst_bits = Signal(len(job.count) + 6)
            m.d.comb += worst_bits.eq(Mux(wide, groups * header_bits(16) + (job.count << 4),
                                          groups * header_bits(8) + (job.count << 3)))
            worst_words = (worst_bits + bus - 1) >> exact_log2(bus)
            packable = (job.container == OUT_CONTAINERS.index(8)) | wide
            packed_ok = packable & (job.count != 0) & job.pack & (args[2] >= worst_words)
        st_addr = Signal(cfg.dram_addr_bits)
        st_stride = Signal(cfg.dram_addr_bits)
        st_words = Signal(32)
        m.d.comb += [st_addr.eq(Cat(args[0], args[1])), st_stride.eq(args[3]),
                     st_words.eq(args[2][:16] * args[2][16:])]
        aligned = ((st_addr & (bus_bytes - 1)) == 0) & ((st_stride & (bus_bytes - 1)) == 0)
        store_ok = (job_words != 0) & (st_words == job_words) & aligned & ~job.pack
        packed_store_ok = packed_ok & ((st_addr & (bus_bytes - 1)) == 0)

        # ---- sequencer --------------------------------------------------------------------------
        op = Signal(8)
        nargs = Signal(range(LOAD_OPERANDS + 1))
        argi = Signal(range(LOAD_OPERANDS + 1))
        gaddr = Signal(len(self.o_load.payload.addr))
        err = Signal()
        code = Signal(8)
        store_seen = Signal()
        check_ok = Signal()                      # STORE / STOREP checks passed
        dma_seen = Signal()
        dma_failed = Signal()
        # packed LOADP / STOREP
        packed_signed = Signal()
        unpack_seen = Signal()
        unpack_start = Signal()
        unpack_feed = Signal()                   # LOADP_DATA: DMA -> unpacker -> GLB
        pushed = Signal(24)                      # STOREP: words the store path handed the DMA
        covered = Signal(24)                     # ... of them in DMA write commands
        cmds = Signal(16)                        # ... commands issued and their tokens
        tokens = Signal(16)
        if cfg.pack_group:
            m.submodules.unpacker = unpacker = GroupUnpacker(cfg)
            m.d.comb += [unpacker.start.eq(unpack_start), unpacker.job.words.eq(args[4]),
                         unpacker.job.signed.eq(packed_signed)]
            with m.If(unpack_feed):
                m.d.comb += [unpacker.i_data.valid.eq(self.dma_rdata.valid),
                             unpacker.i_data.payload.eq(self.dma_rdata.payload),
                             self.dma_rdata.ready.eq(unpacker.i_data.ready),
                             self.o_load.valid.eq(unpacker.o_data.valid),
                             self.o_load.payload.addr.eq(gaddr),
                             self.o_load.payload.data.eq(unpacker.o_data.payload),
                             unpacker.o_data.ready.eq(self.o_load.ready)]
                with m.If(self.o_load.valid & self.o_load.ready):
                    m.d.sync += gaddr.eq(gaddr + 1)
            unpack_done, unpack_error = unpacker.done, unpacker.error
        else:
            unpack_done, unpack_error = C(0), C(0)
        m.d.comb += [self.error.eq(err), self.error_code.eq(code)]

        def fail(reason):
            m.d.sync += [err.eq(1), code.eq(ERRORS[reason])]
            m.next = "FINISH"

        stalled = Signal(32)                     # cycles without progress (watchdog)
        timed_out = Signal()

        def guard():
            """Last statement of a waiting state: the watchdog overrides its transitions."""
            with m.If(timed_out):
                fail("timeout")

        def dma_token():
            """Take the DMA token of the state's one command; returns whether it has come and
            whether it reported an error, this cycle's token included."""
            m.d.comb += self.dma_done.ready.eq(~dma_seen)
            with m.If(self.dma_done.valid & ~dma_seen):
                m.d.sync += [dma_seen.eq(1), dma_failed.eq(self.dma_done.payload.error)]
            return (dma_seen | self.dma_done.valid,
                    dma_failed | (self.dma_done.valid & self.dma_done.payload.error))

        def next_word():
            """Wait for a program word; returns the condition under which it is taken."""
            m.d.comb += want.eq(1)
            with m.If(fetch_err):
                fail("fetch_dram")
            m.d.comb += take.eq(w_valid & ~fetch_err)
            return take

        with m.FSM(name="seq") as seq:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [pc.eq(self.prog_addr), fheld.eq(0), single.eq(0), err.eq(0),
                                 code.eq(0), fetch_err.eq(0)]
                    m.next = "HDR"
            with m.State("HDR"):
                with m.If(next_word()):
                    m.d.sync += [op.eq(word[:8]), argi.eq(0), self.ipc.eq(pc)]
                    with m.Switch(word[:8]):
                        with m.Case(OPCODES["LOAD"]):
                            m.d.sync += nargs.eq(LOAD_OPERANDS)
                            m.next = "ARGS"
                        with m.Case(OPCODES["STORE"]):
                            m.d.sync += nargs.eq(STORE_OPERANDS)
                            m.next = "ARGS"
                        if cfg.pack_group:
                            with m.Case(OPCODES["LOADP"]):
                                m.d.sync += [nargs.eq(LOAD_OPERANDS), packed_signed.eq(word[8])]
                                m.next = "ARGS"
                            with m.Case(OPCODES["STOREP"]):
                                m.d.sync += nargs.eq(STOREP_OPERANDS)
                                m.next = "ARGS"
                        with m.Case(OPCODES["WRITE"]):
                            m.d.sync += [target.eq(word[8:16]), count.eq(word[16:32]),
                                         wi.eq(0)]
                            with m.If(word[8:16] >= len(targets)):
                                fail("bad_target")
                            with m.Elif(word[16:32] != 0):
                                m.next = "WR_WORDS"
                        with m.Case(OPCODES["PASS"]):
                            m.next = "PASS_START"
                        with m.Case(OPCODES["SYNC"]):
                            m.next = "SYNC"
                        with m.Case(OPCODES["END"]):
                            m.next = "END"
                        with m.Default():
                            fail("bad_opcode")
                guard()
            with m.State("ARGS"):
                with m.If(next_word()):
                    m.d.sync += [args[argi].eq(word), argi.eq(argi + 1)]
                    with m.If(argi + 1 == nargs):
                        with m.If(op == OPCODES["LOAD"]):
                            m.next = "LOAD_CMD"
                        with m.Elif(op == OPCODES["LOADP"]):
                            m.next = "LOADP_CMD"
                        with m.Else():
                            m.next = "STORE_CHECK"
                guard()
            with m.State("LOAD_CMD"):
                m.d.comb += [seq_cmd.eq(1), seq_payload.write.eq(0),
                             seq_payload.addr.eq(Cat(args[0], args[1])),
                             seq_payload.row_words.eq(args[3][:16]),
                             seq_payload.rows.eq(args[3][16:]), seq_payload.stride.eq(args[4])]
                m.d.sync += gaddr.eq(args[2])
                with m.If(self.dma_cmd.ready):
                    m.next = "LOAD_DATA"
                guard()
            with m.State("LOAD_DATA"):
                m.d.comb += [self.o_load.valid.eq(self.dma_rdata.valid),
                             self.dma_rdata.ready.eq(self.o_load.ready),
                             self.o_load.payload.addr.eq(gaddr),
                             self.o_load.payload.data.eq(self.dma_rdata.payload.data),
                             self.dma_done.ready.eq(1)]
                with m.If(self.dma_rdata.valid & self.o_load.ready):
                    m.d.sync += gaddr.eq(gaddr + 1)
                with m.If(self.dma_done.valid):
                    with m.If(self.dma_done.payload.error):
                        fail("load_dram")
                    with m.Else():
                        m.next = "HDR"
                guard()
            with m.State("STORE_CHECK"):
                # the size and alignment checks settle into a register first (their multiply
                # and compares stay off the path into the store path's start)
                m.d.sync += check_ok.eq(Mux(op == OPCODES["STOREP"], packed_store_ok, store_ok))
                m.next = "STORE_START"
            with m.State("STORE_START"):
                with m.If(op == OPCODES["STOREP"]):
                    with m.If(check_ok):
                        m.d.comb += self.start_store.eq(1)
                        m.d.sync += [store_seen.eq(0), dma_failed.eq(0), pushed.eq(0),
                                     covered.eq(0), cmds.eq(0), tokens.eq(0)]
                        m.next = "STOREP_RUN"
                    with m.Else():
                        fail("bad_store")
                with m.Elif(check_ok):
                    m.d.comb += self.start_store.eq(1)
                    m.d.sync += [store_seen.eq(0), dma_seen.eq(0), dma_failed.eq(0)]
                    m.next = "STORE_CMD"
                with m.Else():
                    fail("bad_store")
            with m.State("STORE_CMD"):
                m.d.comb += [seq_cmd.eq(1), seq_payload.write.eq(1), seq_payload.addr.eq(st_addr),
                             seq_payload.row_words.eq(args[2][:16]),
                             seq_payload.rows.eq(args[2][16:]), seq_payload.stride.eq(st_stride)]
                with m.If(self.store_done):
                    m.d.sync += store_seen.eq(1)
                with m.If(self.dma_cmd.ready):
                    m.next = "STORE_WAIT"
                guard()
            with m.State("STORE_WAIT"):
                got_store = store_seen | self.store_done
                got_dma, failed_dma = dma_token()
                with m.If(self.store_done):
                    m.d.sync += store_seen.eq(1)
                with m.If(got_store & got_dma):
                    with m.If(self.store_error):
                        fail("store")
                    with m.Elif(failed_dma):
                        fail("store_dram")
                    with m.Else():
                        m.next = "HDR"
                guard()
            with m.State("LOADP_CMD"):
                m.d.comb += [seq_cmd.eq(1), seq_payload.write.eq(0),
                             seq_payload.addr.eq(Cat(args[0], args[1])),
                             seq_payload.row_words.eq(args[3][:16]), seq_payload.rows.eq(1),
                             seq_payload.stride.eq(0)]
                m.d.sync += [gaddr.eq(args[2]), dma_seen.eq(0), dma_failed.eq(0),
                             unpack_seen.eq(0)]
                with m.If(self.dma_cmd.ready):
                    m.d.comb += unpack_start.eq(1)
                    m.next = "LOADP_DATA"
                guard()
            with m.State("LOADP_DATA"):
                m.d.comb += unpack_feed.eq(1)
                got_dma, failed_dma = dma_token()
                with m.If(unpack_done):
                    m.d.sync += unpack_seen.eq(1)
                # a failed read fails at once (a rejected read delivers no data at all)
                with m.If(got_dma & (failed_dma | unpack_seen | unpack_done)):
                    with m.If(failed_dma):
                        fail("load_dram")
                    with m.Elif(unpack_error):
                        fail("bad_packed")
                    with m.Else():
                        m.next = "HDR"
                guard()
            with m.State("STOREP_RUN"):
                # words reach the DMA's buffer before their command: cover them in chunks
                waiting = pushed - covered
                chunk = Mux(waiting > DATA_BUFFER_WORDS, DATA_BUFFER_WORDS, waiting)
                # (a command once half the DMA's buffer holds words, so more can follow while
                # its burst starts)
                m.d.comb += [seq_cmd.eq((waiting >= DATA_BUFFER_WORDS // 2) |
                                        ((store_seen | self.store_done) & (waiting != 0))),
                             seq_payload.write.eq(1),
                             seq_payload.addr.eq(st_addr + (covered << exact_log2(bus_bytes))),
                             seq_payload.row_words.eq(chunk), seq_payload.rows.eq(1),
                             seq_payload.stride.eq(0),
                             self.dma_done.ready.eq(1)]
                with m.If(self.store_done):
                    m.d.sync += store_seen.eq(1)
                issued = seq_cmd & self.dma_cmd.ready
                token = self.dma_done.valid
                with m.If(issued):
                    m.d.sync += covered.eq(covered + chunk)
                m.d.sync += [pushed.eq(pushed + self.store_word),
                             cmds.eq(cmds + issued), tokens.eq(tokens + token)]
                with m.If(token & self.dma_done.payload.error):
                    m.d.sync += dma_failed.eq(1)
                with m.If(store_seen & (waiting == 0) & (tokens == cmds) & ~self.store_word):
                    with m.If(self.store_error):
                        fail("store")
                    with m.Elif(dma_failed):
                        fail("store_dram")
                    with m.Else():
                        m.next = "HDR"
                guard()
            with m.State("WR_WORDS"):
                with m.If(next_word()):
                    m.d.sync += [acc.word_select(wi, 32).eq(word), wi.eq(wi + 1)]
                    with m.If(wi + 1 == t_words):
                        m.next = "WR_PUSH"
                guard()
            with m.State("WR_PUSH"):
                pushed = Signal()
                with m.Switch(target):
                    for i, (name, layout, is_stream) in enumerate(targets):
                        port = getattr(self, name)
                        with m.Case(i):
                            if is_stream:
                                m.d.comb += [port.valid.eq(1), pushed.eq(port.ready)]
                            else:
                                m.d.sync += port.eq(acc[:Shape.cast(layout).width])
                                m.d.comb += pushed.eq(1)
                with m.If(pushed):
                    m.d.sync += [count.eq(count - 1), wi.eq(0)]
                    with m.If(count == 1):
                        m.next = "HDR"
                    with m.Else():
                        m.next = "WR_WORDS"
                guard()
            with m.State("PASS_START"):
                m.d.comb += self.start_pass.eq(1)
                m.next = "PASS_WAIT"
            with m.State("PASS_WAIT"):
                with m.If(self.pass_done):
                    with m.If(self.pass_error):
                        fail("pass")
                    with m.Else():
                        m.next = "HDR"
                guard()
            with m.State("SYNC"):
                with m.If(~self.core_busy):
                    m.next = "HDR"
                guard()
            with m.State("END"):
                with m.If(~self.core_busy):
                    with m.If(self.glb_error):
                        fail("glb")
                    with m.Else():
                        m.next = "FINISH"
                guard()
            with m.State("FINISH"):
                # a fetch in flight still owes its DMA token (not after a timeout: the DMA may
                # be what stopped responding)
                with m.If(fetch_idle | (code == ERRORS["timeout"])):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"

        # ---- watchdog: cycles without progress in one sequencer state ------------------------
        last_state = Signal.like(seq.state)
        m.d.sync += last_state.eq(seq.state)
        def moved(port):
            return port.valid & port.ready

        progress = ((seq.state != last_state) | take | moved(self.o_load) |
                    moved(self.dma_cmd) | moved(self.dma_rdata))
        with m.If(seq.ongoing("IDLE") | progress):
            m.d.sync += stalled.eq(0)
        with m.Else():
            m.d.sync += stalled.eq(stalled + 1)
        m.d.comb += timed_out.eq((self.timeout != 0) & (stalled >= self.timeout) & ~progress)
        m.d.comb += self.busy.eq(~seq.ongoing("IDLE"))
        for code, name in enumerate(PHASES[1:], start=1):
            with m.If(Cat(seq.ongoing(st) for st in _PHASE_STATES[name]).any()):
                m.d.comb += self.phase.eq(code)
        return m
