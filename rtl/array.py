"""PE array: rows x cols PEs, tag-matched multicast input buses, vertical psum chains, output collector."""

from amaranth.hdl import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .buffers import StreamSlice
from .passcfg import array_pe_cfg_layout, pe_pass_layout, tag_bits
from .pe import ProcessingElement

__all__ = ["PeArray", "array_stats_layout"]


def array_stats_layout(cfg):
    """Per-cycle event counts of the whole array: PEs with an active MAC, spad reads and writes."""
    n = cfg.pes
    return data.StructLayout({
        "mac_active": range(n + 1),
        "spad_reads": range(2 * n + 1),
        "spad_writes": range(2 * n + 1),
    })


class PeArray(wiring.Component):
    """``rows x cols`` processing elements with Eyeriss-style multicast networks.

    PE ``(row, col)`` has index ``col * rows + row``; row 0 is the bottom of each column.

    Configuration: while idle, ``i_pe_cfg`` words (:func:`array_pe_cfg_layout`) set each PE's role:
    ``enable``, ``filter_tag``, ``ifmap_tag``, ``accumulate`` (add the psums of the PE below) and
    ``top`` (psums leave through the output collector, not to the PE above). Roles persist across
    passes until rewritten; after reset every PE is disabled. ``pass_cfg`` is the PE pass shared by
    all enabled PEs; it and the roles are sampled at ``start``.

    Input networks: ``i_filter`` and ``i_ifmap`` carry ``{tag, word}``. A word is delivered to every
    enabled PE whose tag matches, in one cycle, once all of them are ready; PEs that do not match
    never hold it up. A word that matches no enabled PE is dropped and sets ``error`` (a program
    bug would otherwise lose data silently).

    Psums: a PE's ``o_psum`` goes to the PE above when that PE accumulates, otherwise (``top``) to
    the output collector, which emits on ``o_psum`` for each output column ``f``, for each top PE in
    index order, the pass's ``filters`` psums; ``last`` marks the pass's final word.

    Every PE's filter, ifmap and psum streams pass through a :class:`StreamSlice` (one cycle of
    latency each, full throughput), and each input bus enters through one that also holds the
    word's set of matching PEs (computed as it enters), so no combinational path runs from one
    PE through the networks into another PE or out of the array: a delivery is decided by an OR
    over registers, the collector's selection and the psum chains see only registers at the
    PEs' side.

    ``make_pe(cfg)`` builds each PE (default :class:`ProcessingElement`; the Verilog back end
    passes a black-box instance of one shared PE module, see :mod:`gen.verilog`).

    ``start`` starts every enabled PE. ``done`` pulses when all of them are done and the last psum
    has left; ``busy`` is high from ``start`` to ``done``. Inconsistent roles (a non-top PE whose
    upper neighbour does not accumulate, an accumulating PE without an enabled non-top PE below,
    or no PE enabled) or a PE error end the pass at once with ``error`` set; ``error`` stays set
    until the next ``start``. ``stats`` sums the PE event strobes every cycle.
    """

    def __init__(self, cfg, make_pe=ProcessingElement):
        self.cfg = cfg
        self._make_pe = make_pe
        tb = tag_bits(cfg)
        super().__init__({
            "i_pe_cfg": In(stream.Signature(array_pe_cfg_layout(cfg))),
            "pass_cfg": In(pe_pass_layout(cfg)),
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "error": Out(1),
            "i_filter": In(stream.Signature(data.StructLayout({
                "tag": unsigned(tb),
                "word": data.ArrayLayout(signed(cfg.weight_bits), cfg.lanes)}))),
            "i_ifmap": In(stream.Signature(data.StructLayout({
                "tag": unsigned(tb), "act": unsigned(cfg.act_bits)}))),
            "o_psum": Out(stream.Signature(data.StructLayout({
                "data": signed(cfg.psum_bits), "last": 1}))),
            "stats": Out(array_stats_layout(cfg)),
        })

    def elaborate(self, platform):
        cfg = self.cfg
        rows, n = cfg.rows, cfg.pes
        m = Module()

        pes = []
        f_in, i_in, p_out = [], [], []            # the PEs' register slices
        for c in range(cfg.cols):
            for r in range(rows):
                pe = self._make_pe(cfg)
                m.submodules[f"pe_r{r}_c{c}"] = pe
                pes.append(pe)
                slices = {}
                for name, port in (("filter", pe.i_filter), ("ifmap", pe.i_ifmap),
                                   ("psum", pe.o_psum)):
                    slices[name] = StreamSlice(port.payload.shape())
                    m.submodules[f"{name}_slice_r{r}_c{c}"] = slices[name]
                wiring.connect(m, slices["filter"].o, pe.i_filter)
                wiring.connect(m, slices["ifmap"].o, pe.i_ifmap)
                wiring.connect(m, pe.o_psum, slices["psum"].i)
                f_in.append(slices["filter"].i)
                i_in.append(slices["ifmap"].i)
                p_out.append(slices["psum"].o)

        # ---- per-PE roles --------------------------------------------------------------------
        role = [Signal(array_pe_cfg_layout(cfg), name=f"role{k}") for k in range(n)]
        running = Signal(n)
        idle = Signal()
        m.d.comb += self.i_pe_cfg.ready.eq(idle)
        with m.If(self.i_pe_cfg.valid & idle):
            with m.Switch(self.i_pe_cfg.payload.index):
                for k in range(n):
                    with m.Case(k):
                        m.d.sync += role[k].eq(self.i_pe_cfg.payload)

        def above(k):
            return k + 1 if (k % rows) != rows - 1 else None

        def below(k):
            return k - 1 if (k % rows) != 0 else None

        bad_roles = []
        for k in range(n):
            r = role[k]
            up, dn = above(k), below(k)
            up_takes = (role[up].enable & role[up].accumulate) if up is not None else C(0)
            dn_gives = (role[dn].enable & ~role[dn].top) if dn is not None else C(0)
            bad_roles.append(r.enable & ((~r.top & ~up_takes) | (r.accumulate & ~dn_gives)))
        any_enabled = Cat(role[k].enable for k in range(n)).any()
        roles_bad = Cat(bad_roles).any() | ~any_enabled
        tops = Signal(n)

        # ---- input multicast networks ------------------------------------------------------
        # (intermediate results live in named signals: this keeps the expression trees, and the
        # simulator's compile time, linear in the number of PEs)
        def multicast(name, bus, ports, tag_of, words):
            # input stage: the word with the set of PEs it goes to (its tag matched against the
            # roles as it enters, during a pass) in a register slice, so the delivery decision
            # below is an OR over registers and the slices' registered readies
            stage = StreamSlice(data.StructLayout({"word": ports[0].payload.shape(),
                                                   "match": n}))
            m.submodules[f"{name}_stage"] = stage
            match = stage.o.payload.match
            blocked = Signal(name=f"{name}_blocked")
            m.d.comb += [
                stage.i.valid.eq(bus.valid & ~idle),
                bus.ready.eq(stage.i.ready & ~idle),
                stage.i.payload.word.eq(words(bus.payload)),
                stage.i.payload.match.eq(Cat((role[k].enable & (tag_of(role[k]) ==
                                                                 bus.payload.tag))
                                             for k in range(n))),
                blocked.eq((match & ~Cat(port.ready for port in ports)).any() | idle),
                stage.o.ready.eq(~blocked),
            ]
            for k, port in enumerate(ports):
                m.d.comb += [port.valid.eq(stage.o.valid & match[k] & ~blocked),
                             port.payload.eq(stage.o.payload.word)]
            return stage.o.valid & ~idle & ~match.any()

        unmatched_f = multicast("filter", self.i_filter, f_in, lambda r: r.filter_tag,
                                lambda p: p.word)
        unmatched_i = multicast("ifmap", self.i_ifmap, i_in, lambda r: r.ifmap_tag,
                                lambda p: p.act)

        # ---- output collector --------------------------------------------------------------
        job = Signal(pe_pass_layout(cfg))
        k_cur = Signal(range(n))
        p_cnt = Signal.like(job.filters)
        f_cnt = Signal(cfg.dim_bits)
        collecting = Signal()
        o_valid = Signal()
        m.d.comb += self.o_psum.valid.eq(o_valid)
        with m.If(self.o_psum.ready):
            m.d.sync += o_valid.eq(0)
        can_load = ~o_valid | self.o_psum.ready

        later_tops = Signal(n)
        m.d.comb += later_tops.eq(tops & (Const((1 << n) - 1, n) << (k_cur + 1))[:n])
        first_any, first_idx = _lowest_set(m, tops, "first_top")
        next_any, next_idx = _lowest_set(m, later_tops, "next_top")

        sel_valid = Signal()
        sel_data = Signal(signed(cfg.psum_bits))
        m.d.comb += [sel_valid.eq(Array(out.valid for out in p_out)[k_cur]),
                     sel_data.eq(Array(out.payload for out in p_out)[k_cur])]
        take = collecting & can_load & sel_valid
        final = (p_cnt + 1 == job.filters) & ~next_any & (f_cnt + 1 == job.cols)
        with m.If(take):
            m.d.sync += [o_valid.eq(1), self.o_psum.payload.data.eq(sel_data),
                         self.o_psum.payload.last.eq(final), p_cnt.eq(p_cnt + 1)]
            with m.If(p_cnt + 1 == job.filters):
                m.d.sync += p_cnt.eq(0)
                with m.If(next_any):
                    m.d.sync += k_cur.eq(next_idx)
                with m.Else():
                    m.d.sync += [k_cur.eq(first_idx), f_cnt.eq(f_cnt + 1)]
                    with m.If(f_cnt + 1 == job.cols):
                        m.d.sync += collecting.eq(0)

        # ---- psum chains -------------------------------------------------------------------
        for k in range(n):
            out, up = p_out[k], above(k)
            to_collector = take & (k_cur == k)
            if up is None:
                m.d.comb += out.ready.eq(tops[k] & to_collector)
            else:
                m.d.comb += [
                    out.ready.eq(Mux(tops[k], to_collector, pes[up].i_psum.ready)),
                    pes[up].i_psum.valid.eq(out.valid & ~tops[k]),
                    pes[up].i_psum.payload.eq(out.payload),
                ]

        # ---- control -----------------------------------------------------------------------
        pe_done = Cat(pe.done for pe in pes)
        pe_error = Cat(pe.error for pe in pes).any()
        err = Signal()
        m.d.comb += self.error.eq(err)
        for k, pe in enumerate(pes):
            m.d.comb += [pe.pass_cfg.eq(self.pass_cfg), pe.accumulate.eq(role[k].accumulate)]
        # PEs finish (or fail) at their own pace; the FSM's start assignment below takes priority.
        m.d.sync += running.eq(running & ~pe_done)
        with m.If(~idle & pe_error):
            m.d.sync += [err.eq(1), collecting.eq(0)]

        with m.FSM(name="fsm"):
            with m.State("IDLE"):
                m.d.comb += idle.eq(1)
                with m.If(self.start):
                    m.d.sync += [err.eq(roles_bad), job.eq(self.pass_cfg)]
                    with m.If(roles_bad):
                        m.next = "ABORT"
                    with m.Else():
                        enables = Cat(role[k].enable for k in range(n))
                        for k, pe in enumerate(pes):
                            m.d.comb += pe.start.eq(role[k].enable)
                        m.d.sync += [
                            running.eq(enables),
                            tops.eq(Cat(role[k].enable & role[k].top for k in range(n))),
                            p_cnt.eq(0), f_cnt.eq(0), collecting.eq(1),
                        ]
                        m.next = "SET_FIRST"
            with m.State("SET_FIRST"):
                m.d.sync += k_cur.eq(first_idx)
                m.next = "RUN"
            with m.State("RUN"):
                with m.If((running & ~pe_done) == 0):
                    m.next = "FLUSH"
            with m.State("FLUSH"):
                # the last psum has been collected (it may wait in a slice after its PE is done)
                # and taken
                with m.If(~collecting & ~o_valid):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
            with m.State("ABORT"):
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"

        with m.If(unmatched_f | unmatched_i):
            m.d.sync += err.eq(1)
        m.d.comb += self.busy.eq(~idle)

        # ---- statistics --------------------------------------------------------------------
        for field in ("mac_active", "spad_reads", "spad_writes"):
            m.d.comb += self.stats[field].eq(_tree_sum(m, [pe.stats[field] for pe in pes], field))
        return m


def _lowest_set(m, bits, name):
    """``(any, index)`` of the lowest set bit of ``bits``, as a balanced tree of named signals."""
    nodes = [(bits[i], Const(i, range(len(bits)))) for i in range(len(bits))]
    level = 0
    while len(nodes) > 1:
        nxt = []
        for i in range(0, len(nodes) - 1, 2):
            (a_any, a_idx), (b_any, b_idx) = nodes[i], nodes[i + 1]
            node_any = Signal(name=f"{name}_any{level}_{i // 2}")
            node_idx = Signal(range(len(bits)), name=f"{name}_idx{level}_{i // 2}")
            m.d.comb += [node_any.eq(a_any | b_any), node_idx.eq(Mux(a_any, a_idx, b_idx))]
            nxt.append((node_any, node_idx))
        if len(nodes) % 2:
            nxt.append(nodes[-1])
        nodes, level = nxt, level + 1
    return nodes[0]


def _tree_sum(m, values, name):
    """Sum of ``values`` as a balanced adder tree with a named signal per node."""
    level = 0
    while len(values) > 1:
        nxt = []
        for i in range(0, len(values) - 1, 2):
            a, b = values[i], values[i + 1]
            node = Signal(range(2 ** (max(len(a), len(b)) + 1)), name=f"{name}_sum{level}_{i // 2}")
            m.d.comb += node.eq(a + b)
            nxt.append(node)
        if len(values) % 2:
            nxt.append(values[-1])
        values, level = nxt, level + 1
    return values[0]
