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


def _layer_files(tmp_path, layer, x, w, bias=None):
    import numpy as np
    layer.save(tmp_path / "layer.json")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "w.npy", w)
    args = ["--layer", str(tmp_path / "layer.json"), "--ifmap", str(tmp_path / "x.npy"),
            "--weights", str(tmp_path / "w.npy"), "--out", str(tmp_path / "y.npy")]
    if bias is not None:
        np.save(tmp_path / "b.npy", bias)
        args += ["--bias", str(tmp_path / "b.npy")]
    return args


def test_run_layer_writes_output_and_stats(tmp_path, capsys):
    import numpy as np

    from gen.golden import OutputStage
    from gen.layer import Layer
    layer = Layer(N=1, C=2, H=5, W=4, M=3, R=3, S=2, pad=1, act_bits=5, act_signed=True,
                  output=OutputStage(mult=7, shift=5, out_bits=8))
    x, w, bias = layer.random_arrays(4, with_bias=True)
    args = _layer_files(tmp_path, layer, x, w, bias)
    assert main(["run-layer", "--config", "tiny", "--sim", "icarus", *args,
                 "--stats", str(tmp_path / "stats.json")]) == 0
    out = capsys.readouterr().out
    assert "PASS vs the golden model" in out and "MAC utilisation" in out
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), layer.golden(x, w, bias))
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["passed"] and stats["cycles"] > 0 and stats["macs"] == layer.macs


def test_run_layer_dumps_waveforms(tmp_path, capsys):
    import re
    from pathlib import Path

    from gen.layer import Layer
    layer = Layer(N=1, C=1, H=4, W=4, M=2, R=2, S=2, act_bits=3)
    x, w, _ = layer.random_arrays(8)
    args = _layer_files(tmp_path, layer, x, w)
    assert main(["run-layer", "--config", "tiny", "--sim", "icarus", "--waves", *args]) == 0
    dump = re.search(r"waveforms: (\S+)", capsys.readouterr().out).group(1)
    assert Path(dump).stat().st_size > 10_000


@pytest.mark.parametrize("change,message", [
    ({"x_shape": (1, 3, 5, 4)}, r"x: shape must be \(N, C, H, W\) = \(1, 2, 5, 4\)"),
    ({"act_bits": 9}, "act_bits: the layer's activations have 9 bits but the config's act_bits=8"),
    ({"C": 64, "W": 60}, "glb_bytes: one output row of one filter needs"),
    ({"act_bits": 20}, "act_bits: must be in 1..16"),
])
def test_run_layer_errors_name_the_problem(tmp_path, capsys, change, message):
    import re

    import numpy as np

    fields = {"N": 1, "C": 2, "H": 5, "W": 4, "M": 3, "R": 3, "S": 3, "act_bits": 4}
    fields.update({k: v for k, v in change.items() if k != "x_shape"})
    layer_json = tmp_path / "layer.json"
    layer_json.write_text(json.dumps(fields))
    shape = change.get("x_shape", (1, fields["C"], fields["H"], fields["W"]))
    np.save(tmp_path / "x.npy", np.zeros(shape, dtype=np.int64))
    np.save(tmp_path / "w.npy", np.zeros((3, fields["C"], 3, 3), dtype=np.int64))
    assert main(["run-layer", "--config", "tiny", "--layer", str(layer_json),
                 "--ifmap", str(tmp_path / "x.npy"), "--weights", str(tmp_path / "w.npy"),
                 "--out", str(tmp_path / "y.npy")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and re.search(message, err), err
    assert not (tmp_path / "y.npy").exists()


def test_compile_explains_the_mapping(tmp_path, capsys):
    import re
    (tmp_path / "l.json").write_text(json.dumps({"N": 1, "C": 3, "H": 20, "W": 20, "M": 6,
                                                 "R": 3, "S": 3, "act_bits": 2}))
    assert main(["compile", "--config", "tiny", "--layer", str(tmp_path / "l.json"),
                 "--dump"]) == 0
    out = capsys.readouterr().out
    assert "2 GLB round(s) per image" in out          # 8 KiB GLB: two bands of output rows
    bands = [(int(a), int(b)) for a, b in re.findall(r"output rows (\d+)\.\.(\d+)", out)]
    assert bands[0][0] == 0 and bands[-1][1] == 17 and bands[0][1] + 1 == bands[1][0]
    assert "mapping: q=3 channel(s) and p=6 filter(s) per PE" in out
    passes = int(re.search(r"(\d+) array pass\(es\)", out).group(1))
    assert out.count("PASS") == passes and out.rstrip().endswith("END")   # N=1: one image
    assert "PE-active cycles 52,488" in out           # pa=2: 52,488 MACs / 2 lanes * 2 bit-steps


def test_map_network_prints_a_table_and_json(capsys):
    """``map --network``: one row per layer with the model's figures; ``--json`` the same data,
    consistent with the mapper called directly."""
    from gen.mapper import map_layer
    from gen.networks import network
    assert main(["map", "--config", "tiny", "--network", "lenet5", "--clock", "100"]) == 0
    out = capsys.readouterr().out
    for name in ("lenet5.c1", "lenet5.c3", "lenet5.c5", "lenet5.f6", "lenet5.output", "total"):
        assert name in out
    assert main(["map", "--config", "tiny", "--network", "lenet5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = data["layers"]
    cfg = preset("tiny")
    direct = map_layer(cfg, network("lenet5", act_bits=8, weight_bits=8)[1])
    assert rows[1]["cycles"] == direct.estimate.cycles
    assert rows[1]["mapping"]["chans"] == direct.mapping.chans
    assert rows[1]["latency_ms"] == pytest.approx(direct.estimate.cycles / 200e3)
    assert all(r["macs"] > 0 and 0 < r["mac_utilisation"] <= 1 for r in rows)


def test_map_layer_explains_the_choice(tmp_path, capsys):
    (tmp_path / "l.json").write_text(json.dumps({"name": "mine", "N": 2, "C": 8, "H": 12,
                                                 "W": 12, "M": 8, "R": 3, "S": 3, "pad": 1}))
    assert main(["map", "--config", "default", "--layer", str(tmp_path / "l.json"),
                 "--objective", "energy"]) == 0
    out = capsys.readouterr().out
    assert "mine: q=" in out and "chosen for the lowest energy of" in out
    assert "largest pass:" in out and "per output column" in out


@pytest.mark.parametrize("args,message", [
    (["--network", "alexnet", "--layer", "x.json"], "give exactly one of --layer and --network"),
    ([], "give exactly one of --layer and --network"),
    (["--network", "googlenet"], "network: unknown network 'googlenet'"),
    (["--network", "lenet5", "--clock", "0"], "clock: must be > 0 MHz"),
    (["--network", "lenet5", "--act-bits", "12"], "act_bits: the layer's activations have 12 bits"),
])
def test_map_errors_name_the_problem(capsys, args, message):
    assert main(["map", "--config", "tiny", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err, err


def test_mismatch_names_the_first_differing_output(capsys):
    import numpy as np

    from gen.__main__ import report_run
    from gen.layer import Layer
    from gen.runlayer import LayerRun
    layer = Layer(N=1, C=1, H=4, W=4, M=2, R=2, S=2, act_bits=3)
    expected = np.arange(18).reshape(1, 2, 3, 3)
    output = expected.copy()
    output[0, 1, 2, 0] = 99
    output[0, 1, 2, 2] = -1
    stats = dict.fromkeys(("cycles", "pe_active", "dram_rd", "dram_wr", "glb_rd", "glb_wr",
                           "spad_rd", "spad_wr", "t_pass"), 10)
    stats.update(mac_utilisation=0.5, pe_utilisation=0.5)
    run = LayerRun(layer, output, expected, 0b010, "", stats, 1.0, 0.0)
    assert report_run(preset("tiny").replace(lanes=1), run, "icarus") == 1
    out = capsys.readouterr().out
    assert "FAIL vs the golden model: 2 of 18 outputs" in out
    assert "first at (n, m, e, f) = (0, 1, 2, 0): 99 instead of 15" in out
    assert "x 1 lane, serial MAC" in out


def test_board_config_overrides_are_checked_at_once(tmp_path, capsys):
    """``--set`` on the board commands: a bad field fails before any tool or port is touched
    (port 1 would refuse a connection), naming the field."""
    from gen.layer import Layer
    layer = Layer(N=1, C=1, H=4, W=4, M=2, R=2, S=2, act_bits=3)
    x, w, _ = layer.random_arrays(8)
    args = _layer_files(tmp_path, layer, x, w)
    out = tmp_path / "never"
    for argv in (["bitstream", "--board", "orangecrab-25f", "--set", "colz=3", "--out", str(out)],
                 ["serve-board", "--board-name", "icebreaker", "--set", "colz=3"],
                 ["run-layer", "--board", "socket://127.0.0.1:1", "--board-name", "icebreaker",
                  "--set", "colz=3", *args]):
        assert main(argv) == 2, argv
        assert capsys.readouterr().err.startswith("error: colz: unknown config field"), argv
    assert main(["bitstream", "--board", "orangecrab-25f", "--set", "rows=0", "--out",
                 str(out)]) == 2
    assert capsys.readouterr().err.startswith("error: rows: must be")
    assert not out.exists()
    # --board-name without --board would be ignored: refused instead
    assert main(["run-layer", "--board-name", "icebreaker", *args]) == 2
    assert capsys.readouterr().err.startswith("error: --board-name: only used with --board")


def test_board_run_rejects_simulation_options(tmp_path, capsys):
    from gen.layer import Layer
    layer = Layer(N=1, C=1, H=4, W=4, M=2, R=2, S=2, act_bits=3)
    x, w, _ = layer.random_arrays(8)
    args = _layer_files(tmp_path, layer, x, w)
    assert main(["run-layer", "--board", "socket://127.0.0.1:1", "--sim", "icarus",
                 "--config", "tiny", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --config, --sim: simulation options, not used with --board")


def test_board_run_checks_the_image_fits_the_board_memory(tmp_path, capsys):
    from gen.boards import board
    from gen.layer import Layer
    layer = Layer(N=1, C=4, H=24, W=24, M=4, R=3, S=3, pad=1, act_bits=8)
    x, w, _ = layer.random_arrays(3)
    args = _layer_files(tmp_path, layer, x, w)
    # port 1 would refuse a connection: the check must come first
    assert main(["run-layer", "--board", "socket://127.0.0.1:1", "--board-name", "icebreaker",
                 *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: layer: its DRAM image (") and \
        f"exceeds the board's on-chip memory ({board('icebreaker').mem_bytes:,} B)" in err
