"""Cycles per output column of one PE (Amaranth simulation) vs the contract formula, both MAC kinds."""

import sys

import numpy as np

from bench.common import markdown_table, write_result
from gen.pe_model import pe_column_cycles, pe_mac_bound, pe_pass_cycles
from rtl.config import preset
from rtl.passcfg import PePass

__all__ = ["measure"]

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


def main():
    rows = measure()
    path = write_result("pe_cycles", rows, {"config": preset("default").to_dict(), "cols": COLS})
    print(markdown_table(rows, ["S", "q", "p", "U", "pa", "mac", "rtl_cycles", "model_cycles",
                                "rtl_per_col", "model_per_col", "mac_bound"]))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
