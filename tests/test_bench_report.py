"""The bench report: generated blocks of docs/results.md are rewritten only where a result exists,
the text around them is kept, and every bench in the report has its block."""

import pytest

from bench import report
from bench.common import markdown_table

PAGE = """# Results
intro
<!-- bench:alpha -->
old alpha
<!-- /bench:alpha -->
between
<!-- bench:beta -->
old beta
<!-- /bench:beta -->
end
"""


def test_only_blocks_with_results_are_rewritten(tmp_path):
    page = tmp_path / "results.md"
    page.write_text(PAGE)
    done = report.update_results({"alpha": (None, None, "| a |\n|---|\n| 1 |")}, page)
    assert done == ["alpha"]
    text = page.read_text()
    assert "old alpha" not in text and "| 1 |" in text
    assert "old beta" in text                                   # no result: kept as it was
    assert text.replace("| a |\n|---|\n| 1 |", "old alpha") == PAGE   # nothing else changed


def test_rewriting_twice_is_stable(tmp_path):
    page = tmp_path / "results.md"
    page.write_text(PAGE)
    rendered = {"beta": (None, None, "new beta")}
    report.update_results(rendered, page)
    once = page.read_text()
    report.update_results(rendered, page)
    assert page.read_text() == once and "new beta\n<!-- /bench:beta -->" in once


def test_results_page_has_a_block_per_bench():
    text = report.RESULTS_MD.read_text()
    for name, _ in report.SECTIONS:
        assert f"<!-- bench:{name} -->\n" in text and f"<!-- /bench:{name} -->" in text, name


def test_summary_lists_present_results_with_plots(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="plots need the bench extra (matplotlib)")
    import matplotlib
    matplotlib.use("Agg")
    from bench import mapper
    rows = [{"layer": f"alexnet.conv{i}", "mapping": "q1", "PEs": 100, "chip_PEs": 150,
             "ms": 10.0 * i, "chip_ms": 5.0, "MAC_util": 0.2, "chip_MAC_util": 0.8,
             "DRAM_MB": 3.0, "chip_DRAM_MB": 1.0, "DRAM_acc_per_MAC": 0.01, "search_s": 0.1,
             "map_and_model_s": 1.0} for i in (1, 2)]
    result = {"meta": {"batch": 4, "clock_mhz": 200, "commit": "abc1234", "date": "2026-01-02"},
              "rows": rows}
    monkeypatch.setattr(report, "load_result",
                        lambda name: result if name == "mapper" else None)
    rendered = report._rendered()
    assert list(rendered) == ["mapper"]
    summary = report.write_summary(rendered, tmp_path)
    text = summary.read_text()
    assert "30.0 ms (chip 10.0 ms, 3.00x)" in text                 # computed from the rows
    assert "DRAM 6.0 MB (chip 2.0 MB, 3.00x)" in text
    assert "(Measured at commit `abc1234` on 2026-01-02.)" in text
    assert "![eyeriss_alexnet](eyeriss_alexnet.png)" in text
    assert (tmp_path / "eyeriss_alexnet.png").stat().st_size > 1000


def test_markdown_table_formats_cells():
    table = markdown_table([{"a": 1234567, "b": 0.123456, "c": True, "d": "x", "f": 1121.2}],
                           ["a", "b", "c", "d", "e", "f"])
    assert table.splitlines()[2] == "| 1,234,567 | 0.123 | True | x | - | 1,121 |"
