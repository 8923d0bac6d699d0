"""Tests of the command line (gen/__main__.py): verilog, lint, config and its error reporting."""

import json

import pytest

from gen.__main__ import main
from rtl.config import preset


def test_verilog_writes_top_and_config(tmp_path, capsys):
    out = tmp_path / "tiny"
    assert main(["verilog", "--config", "tiny", "--set", "lanes=3", "--out", str(out)]) == 0
    text = (out / "accel.v").read_text()
    assert "module accel(" in text
    cfg = json.loads((out / "config.json").read_text())
    assert cfg == preset("tiny").replace(lanes=3).to_dict()
    assert "wrote" in capsys.readouterr().out


def test_lint_is_clean(tmp_path):
    assert main(["lint", "--config", "tiny", "--out", str(tmp_path)]) == 0


def test_bad_config_is_one_line_error(tmp_path, capsys):
    assert main(["verilog", "--set", "rows=0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == "error: rows: must be in 1..64 (got 0)\n"
    assert not (tmp_path / "accel.v").exists()


def test_config_prints_json(capsys):
    assert main(["config", "--config", "eyeriss"]) == 0
    assert json.loads(capsys.readouterr().out)["cols"] == 14


def test_unknown_command_exits_with_usage():
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
