"""Shared helpers of the benchmarks: output folder, JSON results, Markdown tables."""

import json
from pathlib import Path

__all__ = ["OUT_DIR", "write_result", "markdown_table"]

OUT_DIR = Path("build/bench")


def write_result(name, rows, meta=None):
    """Write ``{"meta": meta, "rows": rows}`` to ``build/bench/<name>.json``; return the path."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}.json"
    path.write_text(json.dumps({"meta": meta or {}, "rows": rows}, indent=1) + "\n")
    return path


def markdown_table(rows, columns):
    """A Markdown table of ``rows`` (dicts) with the given ``columns`` (keys) as header."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [f"{row[c]:.3g}" if isinstance(row[c], float) else str(row[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
