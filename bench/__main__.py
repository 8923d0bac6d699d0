"""``python -m bench [NAME ...|all|report]`` / ``make bench [BENCH=...]``: run benchmarks, write
``build/bench/<name>.json``, then the report (``build/bench/summary.md``, PNG plots and the
generated tables of docs/results.md).

Without names it runs the default set (about 25 minutes on a 2-core machine); ``all`` adds the
slow ones (cold builds and whole-top synthesis, FPGA bitstreams: over an hour); ``report`` only
regenerates the report from the JSON files present."""

import importlib
import os
import sys
import time
from pathlib import Path

from bench.report import SECTIONS, write_report

#: Benches left out of the default run, with the reason.
SLOW = {"build": "cold Verilator builds and whole-top synthesis, ~15 min",
        "boards": "FPGA place and route, over an hour"}


def main(argv):
    known = [name for name, _ in SECTIONS]
    names = set(argv)
    unknown = names - set(known) - {"all", "report"}
    if unknown:
        print(f"unknown bench {sorted(unknown)[0]!r} (known: {', '.join(known)}, all, report)",
              file=sys.stderr)
        return 2
    if names == {"report"}:
        run = []
    elif "all" in names:
        run = known
    elif names:
        run = [n for n in known if n in names]
    else:
        run = [n for n in known if n not in SLOW]
        print("default benches; not run: " + "; ".join(f"{n} ({why})" for n, why in SLOW.items())
              + " (make bench BENCH=all)", flush=True)
    # the YoWASP tools and Verilator live beside the venv's Python
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    t_start = time.perf_counter()
    for k, name in enumerate(run, 1):
        print(f"== [{k}/{len(run)}] {name}", flush=True)
        t0 = time.perf_counter()
        importlib.import_module(f"bench.{name}").main()
        print(f"== {name} done in {time.perf_counter() - t0:.0f} s "
              f"(total {time.perf_counter() - t_start:.0f} s)\n", flush=True)
    write_report()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
