"""Analytical model of a layer run: cycles, accesses per memory level, energy.

What the model predicts for a :class:`gen.program.LayerImage` (the compiled layer):

* exactly (equal to the hardware counters, checked on every simulated layer): DRAM bytes read and
  written, GLB word reads and writes, scratchpad reads and writes, the PEs' MAC work
  (``pe_active``); these follow from the program and the passes alone;
* cycles per phase (program fetch and WRITEs, LOADs, PASSes, STOREs, SYNC/END) from a timing
  model of each unit (:func:`pass_cycles` follows every word through the sender, the PEs' load /
  compute / drain sequence, the psum chains, the collector and the writer); within a few percent
  of the hardware with an ideal DRAM (no wait states);
* energy in the normalised units of the Eyeriss papers (:data:`ENERGY`, per access of one data
  element at each level).
"""

import heapq
from dataclasses import dataclass
from functools import lru_cache

from gen.program import decode
from rtl.control import FETCH_BYTES

__all__ = ["ENERGY", "pass_accesses", "pass_cycles", "pass_cycles_quick", "column_bounds", "program_dram_bytes", "pe_active_cycles",
           "exact_counters", "LayerModel", "layer_model"]

#: Normalised energy per data-element access (Eyeriss, ISCA 2016 / JSSC 2017): DRAM, global
#: buffer, array (inter-PE networks), scratchpad, MAC operation.
ENERGY = {"dram": 200, "glb": 6, "array": 2, "spad": 1, "mac": 1}

#: Timing constants of the units around the passes, measured on the RTL with an ideal DRAM
#: (cocotbext-axi AxiRam without pauses): cycles per 64-byte program block fetched beyond its
#: beats, per LOAD beyond its words, per STORE beyond its elements, per SYNC.
FETCH_LATENCY, PER_LOAD, PER_STORE, PER_SYNC = 9, 8, 15, 2
#: Extra cycles of a LOADP (the unpacker's window) and a STOREP (flush, last DMA write).
UNPACK_LATENCY, PACK_LATENCY = 1, 12

_SEND_LATENCY = 5     # sender address issue -> word at the PEs (GLB read 3, register 1, bus stage 1)
_SEND_DEPTH = 8       # sender reads in flight


def store_cycles(count):
    """Cycles of a STORE of ``count`` output elements: the store path turns out one element a
    cycle and the DMA's bursts overlap with it (packed words are never more than elements)."""
    return count + PER_STORE


def program_dram_bytes(cfg, words, prog_addr=0, packed_stores=None):
    """``(read, written)`` DRAM bytes of running program ``words`` at ``prog_addr``: one
    ``FETCH_BYTES`` block per block the program spans (the controller fetches each once, in
    order; assumes no read error), plus every LOAD's words and LOADP's packed words; every
    STORE's words written, and per STOREP the words of ``packed_stores`` (in program order;
    without it the room, i.e. the words at full precision)."""
    nb = cfg.dram_bytes
    blocks = _fetch_blocks(words, prog_addr)
    read = written = 0
    stores = iter(packed_stores or ())
    for ins in decode(cfg, words):
        f = ins.fields
        if ins.op in ("LOAD", "STORE"):
            nbytes = f["row_words"] * f["rows"] * nb
            if ins.op == "LOAD":
                read += nbytes
            else:
                written += nbytes
        elif ins.op == "LOADP":
            read += f["dma_words"] * nb
        elif ins.op == "STOREP":
            written += next(stores, f["room_words"]) * nb
    return blocks * FETCH_BYTES + read, written


def _dram_words(cfg, data, addr, n):
    nb = cfg.dram_bytes
    return [int.from_bytes(data[addr + i * nb:addr + (i + 1) * nb], "little") for i in range(n)]


def unpack_cycles(cfg, words, glb_words):
    """Cycles :class:`rtl.packing.GroupUnpacker` takes to turn the packed segment ``words``
    (bus-word ints, one arriving per cycle) into ``glb_words`` GLB words: its window replayed
    bit count by bit count (a word is taken while the window has room, a GLB word is written
    once the window holds all its bits)."""
    from gen.packing import header_bits
    from rtl.sender import act_container_bits
    bus, cont = cfg.dram_data_bits, act_container_bits(cfg)
    k, hb = bus // cont, header_bits(cont)
    per_group = cfg.pack_group // k
    stream = sum(w << (i * bus) for i, w in enumerate(words))
    needs, pos, p = [], 0, 0
    for j in range(glb_words):                   # the bits each GLB word takes
        head = hb if j % per_group == 0 else 0
        if head:
            p = (stream >> pos) & ((1 << hb) - 1)
        needs.append(head + k * p)
        pos += head + k * p
    wb = 3 * bus + hb
    fill = taken = made = cycles = 0
    while made < glb_words or taken < len(words):
        producing = made < glb_words
        decode = producing and fill >= needs[made]
        take = taken < len(words) and (fill <= wb - bus or not producing)
        fill -= needs[made] if decode else 0
        fill += bus if take and producing else 0
        made += decode
        taken += take
        cycles += 1
    return cycles


def _fetch_blocks(words, prog_addr):
    return (prog_addr + 4 * len(words) - 1) // FETCH_BYTES - prog_addr // FETCH_BYTES + 1


def pe_active_cycles(cfg, passes):
    """Summed active MAC cycles of all PEs over ``passes`` (:class:`rtl.passcfg.ArrayPass`): each
    PE of a block spends :func:`gen.pe_model.pe_mac_bound` cycles per output column."""
    return sum(pass_accesses(cfg, ap)["pe_active"] for ap in passes)


@lru_cache(maxsize=65536)
def pass_accesses(cfg, ap):
    """Accesses of one array pass ``ap``: ``glb_rd`` / ``glb_wr`` (sender reads, one per value;
    psum updates, one read and one write per psum), ``spad_rd`` / ``spad_wr`` (all enabled PEs:
    filter, ifmap and psum spads), ``array`` (words on the filter and ifmap buses plus psums
    leaving a PE), ``pe_active`` (MAC cycles summed over PEs) and ``macs`` (useful MACs)."""
    from gen.pe_model import pe_mac_bound
    job = ap.pe
    g = job.groups(cfg)
    ops = g * job.chans * job.taps
    ftags, itags = ap.tags()
    pes = sum(b.height * b.width for b in ap.blocks)
    continued = ap.chained_above()
    tops = sum(b.width for b in ap.blocks if b not in continued)
    f_words = len(ftags) * ops * job.load_filters
    i_words = len(itags) * job.chans * job.row_length()
    psums = tops * job.filters * job.cols
    per_pe_rd = job.cols * (2 * ops + g)
    per_pe_wr = (ops * job.load_filters +
                 job.chans * (job.taps + (job.cols - 1) * min(job.stride, job.taps)) +
                 job.cols * g)
    return {"glb_rd": f_words + i_words + psums, "glb_wr": psums,
            "spad_rd": pes * per_pe_rd, "spad_wr": pes * per_pe_wr,
            "array": f_words + i_words + pes * job.filters * job.cols,
            "pe_active": pes * pe_mac_bound(cfg, job) * job.cols,
            "macs": pes * job.filters * job.chans * job.taps * job.cols}


def _pass_key(ap, cmd=None):
    """What a pass's timing depends on: its PE pass, every PE's role and, with the pass's
    :class:`gen.glbplan.PassCommands`, the GLB addresses (they set the bank conflicts)."""
    addrs = None
    if cmd is not None:
        table = {(e["ifmap"], e["index"]): e["base"] for e in cmd.sender_table}
        ftags, itags = ap.tags()
        addrs = (tuple(table[(0, t)] for t in range(len(ftags))),
                 tuple(table[(1, t)] for t in range(len(itags))), cmd.sender_job["pos_stride"],
                 tuple(e["base"] for e in sorted(cmd.writer_table, key=lambda e: e["index"])),
                 cmd.writer_job["col_stride"])
    return ap.pe, tuple(sorted(ap.pe_configs().items())), addrs


def _work(tables):
    """Per PE (sorted) and output column: cycles until the MAC accepts the column's last
    operation but one, and until it finishes the column (from :func:`gen.pe_model.pass_op_cycles`
    tables); None when every operation takes ``pa`` cycles (fixed precision)."""
    if tables is None:
        return None
    return tuple(tuple((int(row[:-2].sum()), int(row.sum())) for row in tables[pe])
                 for pe in sorted(tables))


def pass_cycles(cfg, ap, cmd=None, tables=None):
    """Cycles of one PASS instruction (its start state to the core's ``pass_done``).

    Follows every bus word: the sender issues one GLB read a cycle (3 extra cycles per filter
    key, 2 before the first ifmap key, at most :data:`_SEND_DEPTH` in flight), a word reaches the
    array :data:`_SEND_LATENCY` cycles after its read and is delivered once every PE it is
    tagged for is loading; each PE then waits for its psum bank, issues its operations
    (:mod:`gen.pe_model`'s sequencer) and drains its psums up the chain to the collector, which
    takes one psum a cycle, top PE after top PE; the writer adds its latency (the pass ends when
    the GLB has taken the last psum; its update pipeline drains during the following SYNC). With
    the pass's GLB commands ``cmd`` the sender's reads and the psum updates also compete for the
    GLB banks' read ports (round robin: the one served last yields); without, they never
    collide. With dynamic precision, ``tables`` (:func:`gen.pe_model.pass_op_cycles` of the
    pass's data) give every operation's MAC cycles; without, each takes ``pa`` (the worst
    case)."""
    work = _work(tables)
    if cmd is None and work is None:
        return _geometry_cycles(cfg, _geometry(ap), ap)
    return _pass_cycles(cfg, _pass_key(ap, cmd) + (work,))


def pass_cycles_quick(cfg, ap):
    """A closed-form estimate of :func:`pass_cycles` for searching mappings: the filter send,
    then per output column the slowest of the sender (every ifmap key's words),
    a PE (load and MAC work) and the collector (every top's psums), plus a column of fill."""
    job = ap.pe
    ops = job.groups(cfg) * job.chans * job.taps
    c = job.pa if cfg.mac == "serial" else 1
    ftags, itags = ap.tags()
    b = column_bounds(cfg, ap)
    first = len(itags) * job.chans * job.taps + 2 + ops * c
    return (len(ftags) * (ops + 3) * job.load_filters + first + (job.cols - 1) * max(b.values())
            + b["collector"] + 10)


def column_bounds(cfg, ap):
    """Cycles per output column of pass ``ap`` that each unit needs at least, in steady state:
    ``sender`` (every ifmap key's new words), ``pe`` (a PE's load and MAC work)
    and ``collector`` (every top PE's psums); the largest bounds the pass."""
    job = ap.pe
    ops = job.groups(cfg) * job.chans * job.taps
    c = job.pa if cfg.mac == "serial" else 1
    continued = ap.chained_above()
    tops = sum(b.width for b in ap.blocks if b not in continued)
    need = job.chans * job.stride
    return {"sender": len(ap.tags()[1]) * need, "pe": need + 3 + ops * c,
            "collector": tops * job.filters}


def _geometry(ap):
    """The pass with its blocks moved to filter, channel and output-row origin 0: passes with
    equal geometry have the same roles and tags, so the same timing without conflicts."""
    m0 = min(b.m0 for b in ap.blocks)
    c0 = min(b.c0 for b in ap.blocks)
    e0 = min(b.e0 for b in ap.blocks)
    return ap.pe, tuple((b.row, b.col, b.height, b.width, b.r0, b.e0 - e0, b.m0 - m0, b.c0 - c0,
                         b.chained) for b in ap.blocks)


_GEOMETRY = {}


def _geometry_cycles(cfg, geometry, ap):
    key = (cfg, geometry)
    if key not in _GEOMETRY:
        _GEOMETRY[key] = _pass_cycles(cfg, _pass_key(ap) + (None,))
    return _GEOMETRY[key]


@lru_cache(maxsize=4096)
def _pass_cycles(cfg, key):
    from rtl.buffers import psums_per_word
    from rtl.sender import act_container_bits, filter_word_bits
    job, roles, addrs, work = key
    roles = dict(roles)
    g = job.groups(cfg)
    ops = g * job.chans * job.taps
    c = job.pa if cfg.mac == "serial" else 1
    double = g <= cfg.psum_spad // 2
    pes = sorted(roles)
    span = {pe: work[k] if work else [((ops - 2) * c, ops * c)] * job.cols
            for k, pe in enumerate(pes)}
    banks = cfg.glb_banks
    a_per = cfg.dram_data_bits // act_container_bits(cfg)
    f_per = cfg.dram_data_bits // filter_word_bits(cfg)
    k_per = psums_per_word(cfg)

    by_ftag, by_itag = {}, {}
    for pe in pes:
        by_ftag.setdefault(roles[pe].filter_tag, []).append(pe)
        by_itag.setdefault(roles[pe].ifmap_tag, []).append(pe)

    # ---- sender: issue, GLB arbitration and delivery of one word --------------------------------
    delivered = []
    seq, last = 1, -1                # next cycle the sender's sequencer may issue; last delivery
    updates = []                     # (cycle, bank) of psum updates the sender has not passed
    served = {}                      # bank -> who its read port served last ("send" / "psum")

    def send(bank, ready):
        nonlocal seq, last
        issue = seq
        if len(delivered) >= _SEND_DEPTH:
            issue = max(issue, delivered[-_SEND_DEPTH] + 1)
        late = 0
        while updates and updates[0][0] <= issue:
            u, ub = heapq.heappop(updates)
            if u == issue and ub == bank and served.get(bank) == "send":
                late = 1                             # the update wins; the read waits a cycle
            elif u == issue and ub == bank:
                heapq.heappush(updates, (u + 1, ub))  # the read wins; the update waits
                break
            served[ub] = "psum"
        if bank is not None:
            served[bank] = "send"
        d = max(issue + late + _SEND_LATENCY, last + 1, ready)
        seq, last = issue + 1 + late, d
        delivered.append(d)
        return d

    def bank_of(word):
        return None if addrs is None else word % banks

    # ---- per-PE state (``ready``: cycle the PE accepts its next ifmap word) --------------------
    got = dict.fromkeys(pes, 0)      # ifmap words of the current column received
    mac_last = dict.fromkeys(pes, -1)
    bank_free = {pe: [0, 0] for pe in pes}
    stored = {pe: [] for pe in pes}
    drain_free = dict.fromkeys(pes, 0)
    full_at = {}

    ready = dict.fromkeys(pes, 1)    # without filters to load, PEs take ifmaps at once
    for tag in sorted(by_ftag) if job.load_filters else ():     # filters: all PEs load them
        seq += 2                                     # F_BASE, F_LOAD
        for i in range(ops):
            d = send(bank_of(None if addrs is None else (addrs[0][tag] + i) // f_per), 0)
        seq += 1                                     # the key's end
        for pe in by_ftag[tag]:
            ready[pe] = d + 1

    # psum chains, bottom-up, in collector order of their tops
    chains = []
    for (r, col) in sorted(pes, key=lambda rc: (rc[1], rc[0])):
        if roles[(r, col)].top:
            members, rr = [(r, col)], r
            while roles[(rr, col)].accumulate:
                rr -= 1
                members.insert(0, (rr, col))
            chains.append(members)

    collector, col_off = 0, 0
    for f in range(job.cols):
        npos = job.taps if f == 0 else job.stride
        need = job.chans * npos
        bank = f % 2 if double else 0
        for t in range(len(by_itag)):
            targets = by_itag[t]
            if f == 0 and t == 0:
                seq += 2                             # I_BASE, I_LOAD; later keys follow at once
            for w in range(need):
                word = None
                if addrs is not None:
                    word = (addrs[1][t] + col_off + (w // job.chans) * addrs[2] +
                            w % job.chans) // a_per
                d = send(bank_of(word), max(ready[pe] for pe in targets))
                for pe in targets:
                    got[pe] += 1
                    if got[pe] < need:
                        continue
                    got[pe] = 0
                    wait = max(d + 1, bank_free[pe][bank])
                    done = stored[pe]
                    if not double and done:
                        wait = max(wait, done[-1])
                    elif double and len(done) >= 2:
                        wait = max(wait, done[-2])
                    issue = wait + 1
                    accept = max(issue + 1, mac_last[pe])
                    before_last, total = span[pe][f]
                    last_issue = accept + before_last if ops >= 2 else issue
                    mac_last[pe] = accept + total
                    ready[pe] = last_issue + 1
                    full_at[pe] = mac_last[pe] + 2
                    done.append(full_at[pe])
        if addrs is not None:
            col_off += npos * addrs[2]
        # drain of column f: chains emit in lock step, the collector takes one psum a cycle
        for k, members in enumerate(chains):
            h = len(members)
            start = [max(full_at[pe], drain_free[pe]) for pe in members]
            prev = [None] * h
            for j in range(job.filters):
                cur = [0] * h
                for m in range(h):
                    load = start[m] + 1 if j == 0 else prev[m] + 1
                    if m > 0:
                        load = max(load, cur[m - 1] + 1)
                    if j > 0:
                        load = max(load, prev[m + 1] if m < h - 1 else collector)
                    cur[m] = load
                collector = max(collector + 1, cur[-1] + 1)
                if addrs is not None:
                    elem = addrs[3][k] + f * addrs[4] + j
                    heapq.heappush(updates, (collector + 2, (elem // k_per) % banks))
                prev = cur
            for m, pe in enumerate(members):
                drain_free[pe] = prev[m] + 1
                bank_free[pe][bank] = prev[m] + 1
    return max(last + 1, collector + 3) + 1


def exact_counters(cfg, image):
    """Counters of running :class:`gen.program.LayerImage` ``image`` that the model predicts
    exactly: ``dram_rd``, ``dram_wr``, ``glb_rd``, ``glb_wr``, ``spad_rd``, ``spad_wr``,
    ``pe_active``."""
    return {k: v for k, v in layer_model(cfg, image).counters.items() if k in _EXACT}


_EXACT = ("dram_rd", "dram_wr", "glb_rd", "glb_wr", "spad_rd", "spad_wr", "pe_active")


@dataclass
class LayerModel:
    """Model of one compiled layer: ``counters`` (the hardware counters' names: ``cycles``, the
    phase split ``t_*`` and the access counts), ``macs``, ``array_accesses``, ``energy`` (per
    level, normalised units) and ``active_pes`` (PEs the largest pass uses)."""

    counters: dict
    macs: int
    array_accesses: int
    energy: dict
    active_pes: int = 0

    @property
    def total_energy(self):
        return sum(self.energy.values())


def layer_model(cfg, image, conflicts=True):
    """The :class:`LayerModel` of running ``image`` (:class:`gen.program.LayerImage`); without
    ``conflicts`` the passes are timed without GLB bank conflicts (faster: equal pass shapes
    share one timing). With ``dynamic_precision`` the MAC cycles come from the image's input
    data (a data-less image gives the worst case, every activation at ``pa`` bits)."""
    from gen.pe_model import pass_op_cycles
    from rtl.buffers import psums_per_word
    words = image.program
    dram_rd, dram_wr = program_dram_bytes(cfg, words, image.prog_addr,
                                          [o.packed_words for o in image.outputs if o.packed])
    ins = decode(cfg, words)
    acc = {"glb_rd": 0, "glb_wr": 0, "spad_rd": 0, "spad_wr": 0, "array": 0, "pe_active": 0,
           "macs": 0}
    t_pass = 0
    dynamic = cfg.dynamic_precision and image.inputs is not None
    for k, cmd in enumerate(image.executed):
        ap = cmd.array_pass
        for name, v in pass_accesses(cfg, ap).items():
            acc[name] += v
        tables = pass_op_cycles(cfg, ap, image.inputs[k]) if dynamic else None
        if tables is not None:                       # MAC cycles follow the data
            acc["pe_active"] += sum(int(t.sum()) for t in tables.values()) - \
                pass_accesses(cfg, ap)["pe_active"]
        t_pass += pass_cycles(cfg, ap, cmd if conflicts else None, tables)
    t_program = (FETCH_BYTES // cfg.dram_bytes + FETCH_LATENCY) * _fetch_blocks(
        words, image.prog_addr) + len(words)
    t_load = t_store = t_sync = 0
    k = psums_per_word(cfg)
    for i in ins:
        if i.op == "WRITE":
            t_program += len(i.fields["values"])
        elif i.op == "LOAD":
            n = i.fields["row_words"] * i.fields["rows"]
            acc["glb_wr"] += n
            t_load += n + PER_LOAD
        elif i.op == "LOADP":
            f = i.fields
            acc["glb_wr"] += f["glb_words"]
            segment = _dram_words(cfg, image.data, f["dram_addr"], f["dma_words"])
            t_load += unpack_cycles(cfg, segment, f["glb_words"]) + PER_LOAD + UNPACK_LATENCY
        elif i.op in ("SYNC", "END"):
            t_sync += PER_SYNC
    for o in image.outputs:
        count = o.rnd.eb * image.layer.F * o.rnd.mg
        acc["glb_rd"] += -(-count // k)              # store reads: whole psum words
        t_store += store_cycles(count)
        if o.packed:                                 # the packer's flush, the last DMA write
            t_store += PACK_LATENCY
    t_sync += 1                                      # END's final state
    counters = {"dram_rd": dram_rd, "dram_wr": dram_wr,
                **{k: acc[k] for k in ("glb_rd", "glb_wr", "spad_rd", "spad_wr", "pe_active")},
                "t_program": t_program, "t_load": t_load, "t_pass": t_pass, "t_store": t_store,
                "t_sync": t_sync}
    counters["cycles"] = sum(counters[k] for k in ("t_program", "t_load", "t_pass", "t_store",
                                                    "t_sync"))
    elem = 1 if cfg.act_bits <= 8 else 2
    energy = {"dram": ENERGY["dram"] * (dram_rd + dram_wr) / elem,
              "glb": ENERGY["glb"] * (acc["glb_rd"] + acc["glb_wr"]),
              "array": ENERGY["array"] * acc["array"],
              "spad": ENERGY["spad"] * (acc["spad_rd"] + acc["spad_wr"]),
              "mac": ENERGY["mac"] * acc["macs"]}
    return LayerModel(counters=counters, macs=acc["macs"], array_accesses=acc["array"],
                      energy=energy, active_pes=max(sum(b.height * b.width for b in ap.blocks)
                                                    for ap in image.passes))
