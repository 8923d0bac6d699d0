"""cocotb bench of the board SoC (rtl/soc.py): runs a layer through the UART host link only.

Parameters (``ACCEL_PARAMS``): ``divisor`` (clock cycles per UART bit), ``config``, ``image``
(path of the DRAM image), ``prog_addr``, ``read`` ([[addr, nbytes], ...]), ``result`` (path to
write), ``max_cycles``; or ``socket_port`` instead of the run's fields.

The bench is the host: it runs gen/hostlink.py's ``layer_session`` (check the chip's
configuration, load the image, start, poll, read counters and outputs) over a UART line model
that drives ``rx`` and decodes ``tx`` bit by bit, and writes the result. With ``socket_port``
it is the board's serial port instead: a host connects with pyserial's ``socket://`` URL (the
path of ``python -m gen run-layer --board``).
"""

import json
import socket
from pathlib import Path

import cocotb
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

from gen import hostlink
from rtl.config import AccelConfig
from sim_tb.common import load_params, start_clock, watchdog


class UartLine:
    """8N1 at ``divisor`` clock cycles per bit: ``send`` drives ``rx``, ``recv`` decodes ``tx``."""

    def __init__(self, dut, divisor):
        self.dut, self.divisor = dut, divisor
        dut.rx.value = 1

    async def send(self, data):
        for byte in data:
            for level in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                self.dut.rx.value = level
                await ClockCycles(self.dut.clk, self.divisor)

    async def recv(self, n):
        out = bytearray()
        for _ in range(n):
            while self.dut.tx.value != 0:
                await FallingEdge(self.dut.tx)
            await ClockCycles(self.dut.clk, self.divisor // 2)   # middle of the start bit
            assert self.dut.tx.value == 0, "UART: start bit too short"
            byte = 0
            for i in range(8):
                await ClockCycles(self.dut.clk, self.divisor)
                byte |= int(self.dut.tx.value) << i
            await ClockCycles(self.dut.clk, self.divisor)
            assert self.dut.tx.value == 1, "UART: stop bit is 0"
            out.append(byte)
        return bytes(out)

    async def run(self, cmd):
        await self.send(cmd.data)
        return cmd.decode(await self.recv(cmd.reply_len))


@cocotb.test()
async def run_layer_over_uart(dut):
    p = load_params()
    await start_clock(dut)
    await RisingEdge(dut.clk)
    line = UartLine(dut, p["divisor"])
    if "socket_port" in p:
        await watchdog(serve_socket(dut, line, p["socket_port"]), p["max_cycles"])
        return
    cfg = AccelConfig.from_dict(p["config"])
    session = hostlink.layer_session(cfg, Path(p["image"]).read_bytes(), p["prog_addr"],
                                     [tuple(r) for r in p["read"]], max_polls=100_000)

    async def host():
        try:
            cmd = next(session)
            while True:
                cmd = session.send(await line.run(cmd))
        except StopIteration as stop:
            result = stop.value
        result["read"] = [data.hex() for data in result["read"]]
        Path(p["result"]).write_text(json.dumps(result))

    await watchdog(host(), p["max_cycles"])


async def serve_socket(dut, line, port):
    """Be the board's serial port on TCP ``port`` (pyserial ``socket://``): bytes from the one
    client go to ``rx``, bytes from ``tx`` go back, until the client closes."""
    server = socket.create_server(("127.0.0.1", port))
    server.settimeout(600)
    ready = load_params().get("ready_file")
    if ready:
        Path(ready).write_text("listening")
    conn, _ = server.accept()
    conn.setblocking(False)
    done = {"closed": False}

    async def uplink():
        while not done["closed"]:
            sent = await line.recv(1)
            conn.sendall(sent)

    task = cocotb.start_soon(uplink())
    while True:
        try:
            data = conn.recv(4096)
        except BlockingIOError:
            await ClockCycles(dut.clk, 64)
            continue
        if not data:
            break
        await line.send(data)
    done["closed"] = True
    task.cancel()
    conn.close()
    server.close()
