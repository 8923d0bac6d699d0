"""System test of the board SoC (rtl/soc.py) on its generated Verilog under Icarus and
Verilator: a layer runs with nothing but the UART pins — the bench loads the DRAM image into the
on-chip RAM over the host link, starts the program through the CSRs, polls, reads the outputs
and counters back — bit-exact against the golden model, access counters equal to the model."""

import json

import numpy as np
import pytest

from gen.golden import OutputStage
from gen.layer import Layer
from gen.model import exact_counters
from gen.program import layer_image
from gen.runlayer import REPO
from gen.verilog import SOC_NAME, soc_verilog
from rtl.config import preset
from sim_tb.runner import SIMULATORS, run_cocotb

#: UART clock cycles per bit in simulation (the fastest the receiver allows).
DIVISOR = 4
MEM_BYTES = 8 * 1024


@pytest.mark.parametrize("sim", SIMULATORS)
def test_layer_over_the_uart_host_link(sim, tmp_path):
    cfg = preset("tiny")
    layer = Layer(N=1, C=2, H=5, W=5, M=3, R=3, S=3, pad=1, act_bits=6, act_signed=True,
                  name="soc 3x3", output=OutputStage(mult=3, shift=5, relu=True, out_bits=8))
    x, w, bias = layer.random_arrays(4, with_bias=True)
    image = layer_image(cfg, layer, x, w, bias)
    assert len(image.data) <= MEM_BYTES
    out = REPO / "build" / "sim" / f"soc-{cfg.name}-{sim}"
    out.mkdir(parents=True, exist_ok=True)
    vpath = out / f"{SOC_NAME}.v"
    text = soc_verilog(cfg, MEM_BYTES, DIVISOR)
    if not vpath.exists() or vpath.read_text() != text:
        vpath.write_text(text)
    (tmp_path / "image.bin").write_bytes(image.data)
    params = {"divisor": DIVISOR, "config": cfg.to_dict(), "image": str(tmp_path / "image.bin"),
              "prog_addr": image.prog_addr, "read": [list(r) for r in image.read_ranges()],
              "result": str(tmp_path / "result.json"), "max_cycles": 3_000_000}
    run_cocotb(vpath, SOC_NAME, "sim_tb.tb_soc", sim, out / "sim", params=params)
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["status"] == 0b010, result
    regions = dict(zip((a for a, _ in image.read_ranges()),
                       (bytes.fromhex(h) for h in result["read"])))
    y = image.output(lambda addr, n: regions[addr][:n])
    np.testing.assert_array_equal(y, layer.golden(x, w, bias))
    model = exact_counters(cfg, image)
    assert {k: result["counters"][k] for k in model} == model


def test_run_layer_on_a_board_over_its_serial_port(tmp_path, capsys):
    """``python -m gen run-layer --board PORT`` end to end: ``python -m gen serve-board`` runs
    the simulated SoC (the icebreaker preset's, its GLB doubled by ``--set`` on both commands) with
    a TCP socket as its serial port, the CLI connects with pyserial's ``socket://`` URL, checks
    the chip's configuration (so the override must have reached both sides), runs the layer,
    checks it against the golden model and writes the output."""
    import queue
    import socket
    import subprocess
    import sys
    import threading

    from gen.__main__ import main
    with socket.socket() as probe:                    # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "gen", "serve-board", "--board-name",
                               "icebreaker", "--set", "glb_bytes=2048", "--port", str(port)],
                              cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = queue.Queue()

    def read():
        for line in server.stdout:
            lines.put(line)
        lines.put(None)                               # the server's output ended

    threading.Thread(target=read, daemon=True).start()
    seen = []
    try:
        while not any("listening on" in line for line in seen):
            line = lines.get(timeout=600)             # the first build takes a minute or two
            assert line is not None, "serve-board ended early:\n" + "".join(seen)
            seen.append(line)
        layer = Layer(N=1, C=2, H=4, W=5, M=2, R=3, S=2, act_bits=5, name="board layer",
                      output=OutputStage(mult=3, shift=4, relu=True, out_bits=8))
        x, w, bias = layer.random_arrays(9, with_bias=True)
        (tmp_path / "l.json").write_text(json.dumps(layer.to_dict()))
        for name, arr in (("x", x), ("w", w), ("b", bias)):
            np.save(tmp_path / f"{name}.npy", arr)
        status = main(["run-layer", "--board", f"socket://127.0.0.1:{port}", "--board-name",
                       "icebreaker", "--set", "glb_bytes=2048", "--timeout", "300",
                       "--layer", str(tmp_path / "l.json"),
                       "--ifmap", str(tmp_path / "x.npy"), "--weights", str(tmp_path / "w.npy"),
                       "--bias", str(tmp_path / "b.npy"), "--out", str(tmp_path / "y.npy")])
        text = capsys.readouterr().out
        assert status == 0, text
        assert "PASS vs the golden model" in text and "board icebreaker at socket://" in text
        assert "--board-name icebreaker --set glb_bytes=2048 --timeout" in "".join(seen)
        np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), layer.golden(x, w, bias))
        assert server.wait(timeout=120) == 0, "".join(seen)
    finally:
        if server.poll() is None:
            server.kill()
