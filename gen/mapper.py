"""Row-stationary mapper: chooses how a layer runs on a config, by a cost model.

A :class:`Mapping` fixes every choice the compiler (:func:`gen.program.layer_image`) makes:

* the PE pass shape: ``chans`` (q) input channels and ``filters`` (p) filters per PE; the
  logical PE set (R filter rows x E output rows) is then folded into segments of at most
  ``rows`` rows, strip-mined into strips of at most ``cols`` output rows, and the resulting
  blocks are replicated over the array (:func:`gen.rowstationary.plan_conv`);
* the GLB rounds: groups of ``mg`` filters x bands of ``eb`` output rows, each a GLB image of
  its filters, input rows and psum tile that must fit ``glb_bytes``;
* the loop order of images and rounds: ``images`` (each image runs all rounds) or ``rounds``
  (each round runs all images, so its filters are loaded from DRAM once);
* psum chaining: blocks of the same outputs stacked in an array column (channel groups, folded
  filter rows) add their psums up the column, or each sends them to the GLB to be added there.

:func:`map_layer` enumerates the candidates, estimates each (:func:`estimate`: cycles from the
pass timing model of :mod:`gen.model`, accesses per memory level, normalised energy) and keeps
the best for the objective (``cycles``, ``energy`` or ``edp``). It is deterministic: equal costs
go to the smaller mapping tuple.
"""

from dataclasses import asdict, dataclass, field
from functools import lru_cache

from gen.model import (ENERGY, FETCH_LATENCY, PER_LOAD, pass_accesses, pass_cycles,
                       pass_cycles_quick, store_cycles)

__all__ = ["Mapping", "Estimate", "MapResult", "OBJECTIVES", "rounds_of", "estimate",
           "map_layer", "candidates"]

#: Candidates :func:`map_layer` times in detail (the best by the closed-form estimate).
DETAILED = 1
#: Objectives :func:`map_layer` can minimise.
OBJECTIVES = ("cycles", "energy", "edp")
ORDERS = ("images", "rounds")


@dataclass(frozen=True, order=True)
class Mapping:
    """How a layer runs: ``chans`` / ``filters`` per PE, GLB rounds of ``mg`` filters x ``eb``
    output rows, loop ``order`` (``images`` or ``rounds`` outermost), ``chain``: blocks stacked
    in an array column for the same outputs (channel groups, folded filter rows) add their psums
    up the column instead of each sending them to the GLB."""

    chans: int
    filters: int
    mg: int
    eb: int
    order: str = "images"
    chain: bool = False

    def describe(self):
        return (f"q={self.chans} channel(s) and p={self.filters} filter(s) per PE; GLB rounds of "
                f"{self.mg} filter(s) x {self.eb} output row(s); {self.order} outermost; psums of "
                f"stacked blocks {'chained in the array' if self.chain else 'added in the GLB'}")


def rounds_of(layer, mapping):
    """The :class:`gen.program.Round` list of one image under ``mapping``."""
    from gen.program import Round
    return [Round(m0, min(mapping.mg, layer.M - m0), e0, min(mapping.eb, layer.E - e0))
            for m0 in range(0, layer.M, mapping.mg) for e0 in range(0, layer.E, mapping.eb)]


def _band_passes(cfg, layer, mapping, mg, eb):
    return _plan_band(cfg, layer, min(mapping.chans, layer.C), min(mapping.filters, mg),
                      mapping.chain, mg, eb)


@lru_cache(maxsize=1024)
def _plan_band(cfg, layer, chans, filters, chain, mg, eb):
    from gen.program import _band_shape
    from gen.rowstationary import plan_conv
    shape = _band_shape(layer, mg, eb)
    return shape, tuple(plan_conv(cfg, shape, pa=layer.act_bits, act_signed=layer.act_signed,
                                  chans=chans, filters=filters, chain=chain))


def glb_words(cfg, layer, mapping, mg, eb):
    """GLB words of a round of ``mg`` filters x ``eb`` rows: (filters, input, psum tile)."""
    return _glb_words(cfg, layer, min(mapping.chans, layer.C), min(mapping.filters, mg),
                      mapping.chain, mg, eb)


@lru_cache(maxsize=4096)
def _glb_words(cfg, layer, chans, filters, chain, mg, eb):
    from gen.glbplan import glb_words_needed
    shape, passes = _plan_band(cfg, layer, chans, filters, chain, mg, eb)
    return glb_words_needed(cfg, shape, passes)


@dataclass
class Estimate:
    """Modelled run of a layer under a mapping (all images): ``cycles`` and the phase split,
    DRAM bytes, GLB and spad accesses, array (network) accesses, ``macs``, ``pe_active`` (MAC
    cycles summed over PEs), ``active_pes`` (PEs the largest pass uses), ``passes``,
    ``rounds`` per image and ``energy`` per level (normalised units)."""

    cycles: int
    phases: dict
    dram_rd: int
    dram_wr: int
    glb: int
    spad: int
    array: int
    macs: int
    pe_active: int
    active_pes: int
    passes: int
    rounds: int
    energy: dict = field(default_factory=dict)

    @property
    def total_energy(self):
        return sum(self.energy.values())

    def cost(self, objective):
        if objective == "cycles":
            return self.cycles
        if objective == "energy":
            return self.total_energy
        return self.cycles * self.total_energy

    def mac_utilisation(self, cfg, layer):
        """Layer MACs over cycles x peak MACs per cycle (PEs x lanes, / pa when serial)."""
        peak = cfg.pes * cfg.lanes / (layer.act_bits if cfg.mac == "serial" else 1)
        return layer.macs / (max(self.cycles, 1) * peak)


def estimate(cfg, layer, mapping, quick=False):
    """The :class:`Estimate` of running ``layer`` with ``mapping``: the model of the compiled
    program (:func:`gen.model.layer_model` of the data-less :func:`gen.program.layer_image`;
    passes timed without GLB bank conflicts), or with ``quick`` a closed form for searching
    (program sized from the passes, :func:`gen.model.pass_cycles_quick`).

    Raises ``ValueError`` naming the limit when a round does not fit the GLB or a PE."""
    if not quick:
        return _compiled_estimate(cfg, layer, mapping)
    from rtl.buffers import psums_per_word
    from gen.program import output_container
    nb, bus = cfg.dram_bytes, cfg.dram_data_bits
    k = psums_per_word(cfg)
    container = output_container(cfg, layer.output)
    N = layer.N
    rounds = rounds_of(layer, mapping)
    per_shape = {}
    for r in rounds:
        key = (r.mg, r.eb)
        if key in per_shape:
            continue
        words = glb_words(cfg, layer, mapping, r.mg, r.eb)
        if sum(words) > cfg.glb_words:
            raise ValueError(f"glb_bytes: a round of {r.mg} filter(s) x {r.eb} output row(s) "
                             f"needs {sum(words) * nb} bytes of global buffer but glb_bytes="
                             f"{cfg.glb_bytes}")
        _, passes = _band_passes(cfg, layer, mapping, r.mg, r.eb)
        acc = {"glb": 0, "spad": 0, "array": 0, "macs": 0, "pe_active": 0}
        cycles = 0
        for ap in passes:
            a = pass_accesses(cfg, ap)
            acc["glb"] += a["glb_rd"] + a["glb_wr"]
            acc["spad"] += a["spad_rd"] + a["spad_wr"]
            for name in ("array", "macs", "pe_active"):
                acc[name] += a[name]
            cycles += pass_cycles_quick(cfg, ap)
        pes = max(sum(b.height * b.width for b in ap.blocks) for ap in passes)
        prog = sum(12 + _table_entries(ap) for ap in passes)
        savings = [_filter_saving(cfg, ap) for ap in passes]
        for (prev, _), (sig, saved) in zip(savings, savings[1:]):
            if sig == prev:                          # filters reused inside the round
                cycles -= saved["cycles"]
                for name in ("glb", "spad", "array"):
                    acc[name] -= saved[name]
        per_shape[key] = (words, passes, acc, cycles, pes, prog,
                          (savings[0][0], savings[0][1], savings[-1][0]))

    # what every visit of a round adds, whatever came before it (the input and bias loads,
    # the store, the passes); filter loads and filter reuse depend on the order, below
    per_visit = {}
    for r in {(r.mg, r.eb) for r in rounds}:
        (fw, iw, pw), passes, acc, cycles, pes, prog, _ = per_shape[r]
        count = r[1] * layer.F * r[0]
        out_words = -(-count * container // bus)
        per_visit[r] = {"dram_rd": (iw + pw) * nb, "dram_wr": out_words * nb,
                        "glb": iw + pw + -(-count // k) + acc["glb"],
                        "t_load": iw + pw + 2 * PER_LOAD, "t_pass": cycles, "t_sync": 2,
                        "t_store": store_cycles(count),
                        "passes": len(passes), "prog": 6 * 2 + 2 + 5 + 4 + prog,
                        **{name: acc[name] for name in ("spad", "array", "macs", "pe_active")}}
    sums = dict.fromkeys(("dram_rd", "dram_wr", "glb", "t_load", "t_pass", "t_sync", "t_store",
                          "passes", "prog", "spad", "array", "macs", "pe_active"), 0)
    order = [(n, r) for n in range(N) for r in rounds] if mapping.order == "images" else \
        [(n, r) for r in rounds for n in range(N)]
    loaded = last_filters = None
    for n, r in order:
        shape = (r.mg, r.eb)
        for name, value in per_visit[shape].items():
            sums[name] += value
        fw = per_shape[shape][0][0]
        first, saved, last = per_shape[shape][6]
        if (first, r.m0) == last_filters:           # the round's first pass finds its filters
            sums["t_pass"] -= saved["cycles"]
            for name in ("glb", "spad", "array"):
                sums[name] -= saved[name]
        last_filters = (last, r.m0)
        if (r.m0, r.mg) != loaded and fw:           # a new filter group: load its filters
            loaded = (r.m0, r.mg)
            sums["dram_rd"] += fw * nb
            sums["glb"] += fw
            sums["t_load"] += fw + PER_LOAD
            sums["prog"] += 6
    tot = {name: sums[name] for name in ("glb", "spad", "array", "macs", "pe_active")}
    dram_rd, dram_wr = sums["dram_rd"], sums["dram_wr"]
    t = {"t_program": 0, "t_load": sums["t_load"], "t_pass": sums["t_pass"],
         "t_store": sums["t_store"], "t_sync": 1 + sums["t_sync"]}
    prog_words = 2 + sums["prog"]                    # END and slack
    n_passes = sums["passes"]
    blocks = -(-prog_words * 4 // 64)
    dram_rd += blocks * 64
    t["t_program"] = blocks * (64 // nb + FETCH_LATENCY) + 2 * prog_words
    cycles = sum(t.values())
    elem = 1 if cfg.act_bits <= 8 else 2
    energy = {"dram": ENERGY["dram"] * (dram_rd + dram_wr) / elem, "glb": ENERGY["glb"] * tot["glb"],
              "array": ENERGY["array"] * tot["array"], "spad": ENERGY["spad"] * tot["spad"],
              "mac": ENERGY["mac"] * tot["macs"]}
    return Estimate(cycles=cycles, phases=t, dram_rd=dram_rd, dram_wr=dram_wr, glb=tot["glb"],
                    spad=tot["spad"], array=tot["array"], macs=tot["macs"],
                    pe_active=tot["pe_active"],
                    active_pes=max(v[4] for v in per_shape.values()), passes=n_passes,
                    rounds=len(rounds), energy=energy)


def _compiled_estimate(cfg, layer, mapping):
    from gen.model import layer_model
    from gen.program import layer_image
    for r in rounds_of(layer, mapping):
        words = glb_words(cfg, layer, mapping, r.mg, r.eb)
        if sum(words) > cfg.glb_words:
            raise ValueError(f"glb_bytes: a round of {r.mg} filter(s) x {r.eb} output row(s) "
                             f"needs {sum(words) * cfg.dram_bytes} bytes of global buffer but "
                             f"glb_bytes={cfg.glb_bytes}")
    image = layer_image(cfg, layer, mapping=mapping)
    model = layer_model(cfg, image, conflicts=False)
    c = model.counters
    return Estimate(cycles=c["cycles"], phases={k: v for k, v in c.items() if k.startswith("t_")},
                    dram_rd=c["dram_rd"], dram_wr=c["dram_wr"], glb=c["glb_rd"] + c["glb_wr"],
                    spad=c["spad_rd"] + c["spad_wr"], array=model.array_accesses,
                    macs=model.macs, pe_active=c["pe_active"], active_pes=model.active_pes,
                    passes=len(image.passes) * layer.N, rounds=len(image.rounds),
                    energy=model.energy)


_SIGNATURES = {}          # filter signature -> small int (compared often while searching)


def _filter_saving(cfg, ap):
    """``(signature, saving)`` of pass ``ap``: what its filter spads hold (relative to its
    round's first filter, as a small int) and what its filter load costs (closed-form cycles,
    GLB reads, bus words, spad writes), saved when the previous pass leaves the same filters."""
    from gen.program import filter_signature
    job = ap.pe
    ops = job.groups(cfg) * job.chans * job.taps
    keys = len(ap.tags()[0])
    pes = sum(b.height * b.width for b in ap.blocks)
    sig = _SIGNATURES.setdefault(filter_signature(ap, 0), len(_SIGNATURES))
    return sig, {"cycles": keys * (ops + 3), "glb": keys * ops, "array": keys * ops,
                 "spad": pes * ops}


def _table_entries(ap):
    """Table entries a pass writes (filter and ifmap keys, top PEs), for sizing the program."""
    ftags, itags = ap.tags()
    continued = ap.chained_above()
    return len(ftags) + len(itags) + sum(b.width for b in ap.blocks if b not in continued)


def _spread(total, limit, keep=3):
    """Up to ``keep`` group sizes <= ``limit`` that split ``total`` into the fewest, most even
    groups: ``ceil(total / n)`` for n = ceil(total / limit), +1, ..."""
    out = []
    n = -(-total // limit)
    while len(out) < keep and n <= total:
        size = -(-total // n)
        if size not in out:
            out.append(size)
        n += 1
    return out


def candidates(cfg, layer):
    """``(mapping, reason)`` pairs: every mapping the search considers, or why none exists.

    q takes the largest values the ifmap and filter spads allow that split C evenly; p the
    largest that the filter and psum spads allow (whole multiples of ``lanes``; with the psum
    spad double-buffered or not); ``mg`` filter
    groups of whole p, the tallest band ``eb`` that fits the GLB (and the tallest that is a
    multiple of the array width), both loop orders when there is more than one round and image,
    psum chaining on and off when blocks stack.
    """
    from rtl.buffers import psum_container_bits
    if psum_container_bits(cfg) > cfg.dram_data_bits:
        raise ValueError(f"psum_bits: a {cfg.psum_bits}-bit psum needs a "
                         f"{psum_container_bits(cfg)}-bit GLB container, wider than "
                         f"dram_data_bits={cfg.dram_data_bits}")
    S = layer.S
    if S > cfg.ifmap_spad:
        raise ValueError(f"ifmap_spad: filter width S={S} exceeds ifmap_spad={cfg.ifmap_spad}")
    if S > cfg.filter_spad:
        raise ValueError(f"filter_spad: filter width S={S} exceeds filter_spad={cfg.filter_spad}")
    if layer.F >= 1 << cfg.dim_bits:
        raise ValueError(f"output width F={layer.F} exceeds the hardware limit "
                         f"{(1 << cfg.dim_bits) - 1}")
    qmax = min(layer.C, cfg.ifmap_spad // S, cfg.filter_spad // S)
    out = []
    for q in _spread(layer.C, qmax):
        double = min(max(cfg.psum_spad // 2, 1), cfg.filter_spad // (q * S))
        single = min(cfg.psum_spad, cfg.filter_spad // (q * S))
        if single < 1:
            continue
        ps = set()
        for groups in {single, double}:      # psum spad single- or double-buffered
            pmax = min(layer.M, groups * cfg.lanes)
            ps |= {min(layer.M, -(-size // cfg.lanes) * cfg.lanes)
                   for size in _spread(layer.M, pmax)} | {pmax}
        ps = sorted(ps, reverse=True)[:4]
        for p in ps:
            for mg in _mg_options(cfg, layer, q, p):
                for eb in _eb_options(cfg, layer, Mapping(q, p, mg, 1)):
                    rounds = -(-layer.M // mg) * -(-layer.E // eb)
                    orders = ORDERS if rounds > 1 and layer.N > 1 and mg < layer.M else ORDERS[:1]
                    chains = (False, True) if layer.C > q or layer.R > cfg.rows else (False,)
                    out.extend(Mapping(q, p, mg, eb, o, ch) for o in orders for ch in chains)
    return out


def _fits(cfg, layer, mapping, mg, eb):
    return sum(glb_words(cfg, layer, mapping, mg, eb)) <= cfg.glb_words


def _mg_options(cfg, layer, q, p):
    """The two largest filter groups (whole multiples of p where possible, even split of M) whose
    one-row round fits the GLB."""
    sizes = []
    for n in range(1, layer.M + 1):
        size = -(-layer.M // n)
        mg = min(layer.M, -(-size // p) * p) if size > p else size
        if mg not in sizes:
            sizes.append(mg)
    lo, hi = 0, len(sizes)                 # first size (they decrease) that fits
    while lo < hi:
        mid = (lo + hi) // 2
        if _fits(cfg, layer, Mapping(q, p, sizes[mid], 1), sizes[mid], 1):
            hi = mid
        else:
            lo = mid + 1
    return sizes[lo:lo + 2]


def _eb_options(cfg, layer, m):
    """The tallest band of output rows that fits (even split of E), and the tallest multiple of
    the array width that fits."""
    lo, hi = 1, layer.E
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if _fits(cfg, layer, m, m.mg, mid) else (lo, mid - 1)
    eb = -(-layer.E // -(-layer.E // lo))
    opts = [eb]
    strip = (lo // cfg.cols) * cfg.cols
    if strip and strip not in opts:
        opts.append(strip)
    return opts


@dataclass
class MapResult:
    """The chosen ``mapping`` and its ``estimate``, the ``objective``, how many candidates were
    considered and the best few by the closed-form estimate, the choice first
    (``alternatives``: (mapping, quick estimate))."""

    layer: object
    mapping: Mapping
    estimate: Estimate
    objective: str
    considered: int
    alternatives: list

    def why(self, cfg):
        """A few lines explaining the choice against the best alternatives."""
        e = self.estimate
        lines = [f"{self.layer.name or 'layer'}: {self.mapping.describe()}",
                 f"  {e.rounds} GLB round(s) per image, {e.passes} array pass(es) in all, "
                 f"{e.active_pes}/{cfg.pes} PEs in the largest pass",
                 f"  chosen for the lowest {self.objective} of {self.considered} candidate(s): "
                 f"{e.cycles:,} cycles, energy {e.total_energy:.4g}"]
        from gen.model import column_bounds
        _, passes = _band_passes(cfg, self.layer, self.mapping, min(self.mapping.mg,
                                                                     self.layer.M),
                                 min(self.mapping.eb, self.layer.E))
        main = max(passes, key=lambda ap: sum(b.height * b.width for b in ap.blocks))
        b = column_bounds(cfg, main)
        unit = max(b, key=b.get)
        job = main.pe
        load = len(main.tags()[0]) * (job.groups(cfg) * job.chans * job.taps + 3)
        lines.append(f"  largest pass: {pass_cycles(cfg, main):,} cycles, {load:,} of them "
                     f"sending filters; then {unit}-bound per output column: sender "
                     f"{b['sender']} (ifmap bus, 1 value/cycle), PE {b['pe']}, collector "
                     f"{b['collector']} (1 psum/cycle)")
        if self.alternatives:
            base = self.alternatives[0][1]               # the choice, by the closed form
            for m, alt in self.alternatives[1:4]:
                lines.append(f"  vs {m.describe()}: {alt.cycles / max(base.cycles, 1):.2f}x "
                             f"the cycles, {alt.total_energy / max(base.total_energy, 1e-9):.2f}x "
                             f"the energy (closed form)")
        return "\n".join(lines)

    def to_dict(self, cfg):
        e = self.estimate
        return {"layer": self.layer.name, "mapping": asdict(self.mapping),
                "objective": self.objective, "considered": self.considered,
                "cycles": e.cycles, "phases": e.phases, "mac_utilisation":
                e.mac_utilisation(cfg, self.layer), "active_pes": e.active_pes,
                "rounds": e.rounds, "passes": e.passes, "dram_rd": e.dram_rd,
                "dram_wr": e.dram_wr, "glb_accesses": e.glb, "spad_accesses": e.spad,
                "array_accesses": e.array, "macs": e.macs, "energy": e.energy}


def map_layer(cfg, layer, objective="cycles", detailed=DETAILED):
    """The best :class:`Mapping` of ``layer`` on ``cfg`` for ``objective`` (a :class:`MapResult`).

    Raises ``ValueError`` naming the limit the layer exceeds when no mapping exists (a
    precision or accumulator limit, a filter wider than the spads, an output row wider than the
    hardware counts, or not even one output row of one filter fitting the GLB). The
    ``detailed`` best candidates by the closed form are compared by the full estimate (0: the
    closed form decides)."""
    from gen.program import check_layer_fits
    if objective not in OBJECTIVES:
        raise ValueError(f"objective: must be one of {', '.join(OBJECTIVES)} (got {objective!r})")
    check_layer_fits(cfg, layer)
    cands = candidates(cfg, layer)
    if not cands:
        from gen.program import _band_shape
        need = None
        try:
            q = 1
            need = sum(glb_words(cfg, layer, Mapping(q, 1, 1, 1), 1, 1)) * cfg.dram_bytes
        except ValueError as e:
            raise ValueError(str(e)) from None
        raise ValueError(f"glb_bytes: one output row of one filter needs {need} bytes of global "
                         f"buffer (filters, {_band_shape(layer, 1, 1).H} input rows, psums) but "
                         f"glb_bytes={cfg.glb_bytes}")
    # rank every candidate by the closed-form pass time, then time the best few in detail
    quick = sorted(((estimate(cfg, layer, m, quick=True), m) for m in cands),
                   key=lambda em: (em[0].cost(objective), em[0].cycles, em[1]))
    scored = [(e.cost(objective), e.cycles, m, e) for e, m in quick[:1]] if not detailed else []
    for _, m in quick[:detailed]:
        e = estimate(cfg, layer, m)
        scored.append((e.cost(objective), e.cycles, m, e))
    scored.sort(key=lambda s: (s[0], s[1], s[2]))
    best = scored[0]
    ranked = [(m, e) for e, m in quick]
    ranked.sort(key=lambda me: me[0] != best[2])       # the choice first, then by rank
    return MapResult(layer=layer, mapping=best[2], estimate=best[3], objective=objective,
                     considered=len(cands), alternatives=ranked[:4])
