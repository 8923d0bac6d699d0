"""Tests of rtl/config.py: validation messages, derived widths, presets, JSON and CLI overrides."""

import dataclasses
import json

import pytest

from rtl.config import PRESETS, AccelConfig, parse_overrides, preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_json(name):
    cfg = preset(name)
    assert cfg.name == name
    assert AccelConfig.from_json(cfg.to_json()) == cfg
    assert json.loads(cfg.to_json())["rows"] == cfg.rows


def test_eyeriss_preset_matches_the_chip():
    cfg = preset("eyeriss")
    assert (cfg.rows, cfg.cols, cfg.pes) == (12, 14, 168)
    assert (cfg.ifmap_spad, cfg.filter_spad, cfg.psum_spad) == (12, 224, 24)
    assert (cfg.glb_bytes, cfg.act_bits, cfg.weight_bits, cfg.dram_data_bits) == (108 * 1024, 16, 16, 64)


def test_derived_widths():
    cfg = AccelConfig(act_bits=8, rows=6, cols=8, lanes=4, dram_data_bits=64, glb_bytes=32768)
    assert cfg.pa_bits == 4              # holds 1..8
    assert cfg.dram_bytes == 8
    assert cfg.glb_words == 4096
    assert cfg.peak_macs_per_cycle == 6 * 8 * 4
    assert AccelConfig(act_bits=16, psum_bits=40).pa_bits == 5
    assert AccelConfig(act_bits=1).pa_bits == 1


BAD = [
    ({"rows": 0}, "rows: must be in 1..64 (got 0)"),
    ({"cols": 65}, "cols: must be in 1..64 (got 65)"),
    ({"lanes": 0}, "lanes: must be in 1..64"),
    ({"mac": "booth"}, "mac: must be 'serial' or 'parallel' (got 'booth')"),
    ({"act_bits": 17}, "act_bits: must be in 1..16"),
    ({"weight_bits": 1}, "weight_bits: must be in 2..16"),
    ({"psum_bits": 16}, "psum_bits: must be in act_bits + weight_bits + 1 .. 64"),
    ({"filter_spad": 0}, "filter_spad: must be in 1..4096"),
    ({"ifmap_spad": 5000}, "ifmap_spad: must be in 1..4096"),
    ({"psum_spad": 0}, "psum_spad: must be in 1..4096"),
    ({"dram_data_bits": 48}, "dram_data_bits: must be 32, 64, 128 or 256"),
    ({"dram_addr_bits": 8}, "dram_addr_bits: must be in 16..64"),
    ({"glb_banks": 3}, "glb_banks: must be a power of two"),
    ({"glb_bytes": 1000}, "glb_bytes: must be a multiple of"),
    ({"dynamic_precision": True, "mac": "parallel"}, "dynamic_precision: requires mac='serial'"),
    ({"rows": "6"}, "rows: must be of type int"),
    ({"rows": True}, "rows: must be of type int"),
    ({"dynamic_precision": 1}, "dynamic_precision: must be of type bool"),
]


@pytest.mark.parametrize("changes,message", BAD)
def test_invalid_values_name_field_and_rule(changes, message):
    with pytest.raises(ValueError) as info:
        AccelConfig(**changes)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_boundaries_accepted():
    AccelConfig(rows=1, cols=1, lanes=1, act_bits=1, weight_bits=2, psum_bits=4)
    AccelConfig(rows=64, cols=64, lanes=64, act_bits=16, weight_bits=16, psum_bits=64)


def test_frozen():
    with pytest.raises(Exception):
        preset("default").rows = 3


def test_unknown_preset_and_field():
    with pytest.raises(ValueError, match="config: unknown preset 'huge' .known: tiny, default, eyeriss"):
        preset("huge")
    with pytest.raises(ValueError, match="^colz: unknown config field"):
        AccelConfig.from_dict({"colz": 3})


def test_overrides_parse_by_field_type():
    cfg = parse_overrides(preset("default"), ["rows=3", "mac=parallel", "dynamic_precision=false",
                                              "glb_bytes=0x4000"])
    assert (cfg.rows, cfg.mac, cfg.dynamic_precision, cfg.glb_bytes) == (3, "parallel", False, 16384)
    assert parse_overrides(preset("tiny"), []) == preset("tiny")


@pytest.mark.parametrize("text,message", [
    ("rows", "--set 'rows': expected FIELD=VALUE"),
    ("rowz=3", "rowz: unknown config field"),
    ("rows=three", "rows: must be an integer (got 'three')"),
    ("dynamic_precision=maybe", "dynamic_precision: must be true or false"),
    ("rows=100", "rows: must be in 1..64 (got 100)"),
])
def test_override_errors(text, message):
    with pytest.raises(ValueError) as info:
        parse_overrides(preset("default"), [text])
    assert str(info.value).startswith(message)


def test_parameter_reference_is_current():
    """docs/parameters.md carries the generated reference of every field (regenerate with
    ``python -m gen config --reference``)."""
    from pathlib import Path

    from rtl.config import AccelConfig, parameter_reference
    ref = parameter_reference()
    page = (Path(__file__).resolve().parent.parent / "docs" / "parameters.md").read_text()
    assert ref in page
    for f in dataclasses.fields(AccelConfig):
        if f.name != "name":
            assert f"| `{f.name}` |" in ref
    assert "must be a power of two" in ref and "requires mac='serial'" in ref
    # rules with computed values read as rules, without unfilled placeholders
    assert "{" not in ref and "(here" not in ref
    assert "must be in act_bits + weight_bits + 1 .. 64 |" in ref
