"""Shared helpers of the benchmarks: output folder, JSON results, Markdown tables."""

import json
from pathlib import Path

__all__ = ["OUT_DIR", "source_version", "write_result", "load_result", "markdown_table", "grouped_bars",
           "save_figure"]

OUT_DIR = Path("build/bench")


def source_version():
    """The commit the benchmarks measure: ``git describe`` of HEAD, ``-dirty`` with local
    changes, or ``unknown`` outside a git checkout."""
    import subprocess
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                              text=True, check=True, cwd=Path(__file__).resolve().parent
                              ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_result(name, rows, meta=None):
    """Write ``{"meta": meta, "rows": rows}`` to ``build/bench/<name>.json`` (``meta`` gains
    ``commit`` and ``date``); return the path."""
    import time
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}.json"
    meta = {**(meta or {}), "commit": source_version(), "date": time.strftime("%Y-%m-%d")}
    path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    return path


def load_result(name):
    """The ``{"meta", "rows"}`` dict of ``build/bench/<name>.json``, or ``None`` if not run."""
    path = OUT_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def markdown_table(rows, columns):
    """A Markdown table of ``rows`` (dicts) with the given ``columns`` (keys) as header; floats
    get 3 significant digits (whole numbers with thousands separators from 1,000 on), ints
    thousands separators."""
    def cell(v):
        if isinstance(v, bool):
            return str(v)
        if isinstance(v, float):
            return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(cell(row.get(c, "-")) for c in columns) + " |")
    return "\n".join(lines)


def grouped_bars(ax, labels, series, **tick_kw):
    """Bars of several ``series`` (``{legend label: values per x label}``) side by side at each
    of ``labels`` on ``ax``, with the x ticks and the legend."""
    width = 0.8 / len(series)
    for k, (name, values) in enumerate(series.items()):
        offset = (k - (len(series) - 1) / 2) * width
        ax.bar([i + offset for i in range(len(labels))], values, width=width, label=name)
    ax.set_xticks(range(len(labels)), labels, **tick_kw)
    ax.legend(fontsize=7)


def save_figure(fig, out_dir, name):
    """Lay out ``fig``, write it as ``out_dir/name.png`` and close it; returns the path."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    path = out_dir / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
