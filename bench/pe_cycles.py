"""Cycles per output column of one PE (Amaranth simulation) vs the contract formula, both MAC kinds."""

import sys

import numpy as np

from bench.common import (grouped_bars, load_result, markdown_table, save_figure,
                          write_result)
from gen.pe_model import pe_column_cycles, pe_mac_bound, pe_pass_cycles
from rtl.config import preset
from rtl.passcfg import PePass

__all__ = ["measure", "report", "plots", "main"]

#: (taps, chans, filters, stride, pa) of the measured passes; cols is fixed at COLS.
PASSES = [(3, 4, 8, 1, 8), (3, 4, 8, 1, 4), (5, 2, 4, 2, 8), (1, 8, 8, 1, 8), (11, 1, 4, 4, 8)]
COLS = 16


def simulate_pass(cfg, job, seed=0):
    """Cycles from start to done of ``job`` on the PE with no stalls, checked against golden."""
    from tests.test_pe import PeDriver, golden_row, random_data   # simulation-only imports
    rng = np.random.default_rng(seed)
    w, x, _ = random_data(cfg, job, rng)
    driver = PeDriver(cfg, stall_prob=0.0)
    out, = driver.run([(job, w, x, None)])
    if not np.array_equal(out, golden_row(job, w, x)):
        raise AssertionError(f"PE result differs from golden for {job}")
    return driver.busy_cycles[0]


def measure():
    rows = []
    for taps, chans, filters, stride, pa in PASSES:
        for mac in ("serial", "parallel"):
            cfg = preset("default").replace(mac=mac)
            job = PePass(taps=taps, chans=chans, filters=filters, cols=COLS, stride=stride, pa=pa)
            job.check(cfg)
            one = PePass(**{**job.__dict__, "cols": 1})
            rtl = simulate_pass(cfg, job)
            rtl_one = simulate_pass(cfg, one)
            per_col = (rtl - rtl_one) / (COLS - 1)       # steady state: first column excluded
            rows.append({"S": taps, "q": chans, "p": filters, "U": stride, "pa": pa, "mac": mac,
                         "rtl_cycles": rtl, "model_cycles": pe_pass_cycles(cfg, job),
                         "rtl_per_col": per_col, "model_per_col": pe_column_cycles(cfg, job),
                         "mac_bound": pe_mac_bound(cfg, job)})
            print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def report(result):
    """Markdown: the table and the serial/parallel cycle ratios per pass at pa 8."""
    rows = result["rows"]
    table = markdown_table(rows, ["S", "q", "p", "U", "pa", "mac", "rtl_cycles", "model_cycles",
                                  "rtl_per_col", "model_per_col", "mac_bound"])
    exact = sum(r["rtl_cycles"] == r["model_cycles"] for r in rows)
    ratios = [f"{s['rtl_per_col'] / p['rtl_per_col']:.1f}x"
              for s, p in zip(rows[::2], rows[1::2]) if s["pa"] == 8]
    return (f"{table}\n\nStep model equal to the RTL on {exact}/{len(rows)} rows. Serial/parallel "
            f"cycles per column at pa = 8: {' / '.join(ratios)}.")


def plots(result, out_dir):
    """Bar chart of cycles per output column, serial vs parallel, per pass."""
    import matplotlib.pyplot as plt
    rows = result["rows"]
    labels = [f"S{r['S']} q{r['q']} p{r['p']}\nU{r['U']} pa{r['pa']}" for r in rows[::2]]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    grouped_bars(ax, labels, {f"{mac} MAC": [r["rtl_per_col"] for r in rows if r["mac"] == mac]
                              for mac in ("serial", "parallel")}, fontsize=7)
    ax.set(ylabel="cycles per output column",
           title="One PE (default preset): serial vs parallel MAC")
    return [save_figure(fig, out_dir, "pe_cycles")]


def main():
    rows = measure()
    write_result("pe_cycles", rows, {"config": preset("default").to_dict(), "cols": COLS})
    print(report(load_result("pe_cycles")))
