"""``python -m bench`` / ``make bench``: run every benchmark, results under build/bench/."""

import sys
import time

from bench import array, boards, mapper, pe_area, pe_cycles, precision, top

BENCHES = [("pe_cycles", pe_cycles.main), ("pe_area", pe_area.main), ("array", array.main),
           ("top", top.main), ("mapper", mapper.main), ("precision", precision.main),
           ("boards", boards.main)]


def main(argv):
    only = set(argv)
    unknown = only - {name for name, _ in BENCHES}
    if unknown:
        print(f"unknown bench {sorted(unknown)[0]!r} (known: {', '.join(n for n, _ in BENCHES)})",
              file=sys.stderr)
        return 2
    for name, run in BENCHES:
        if only and name not in only:
            continue
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        run()
        print(f"== {name} done in {time.perf_counter() - t0:.0f} s\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
