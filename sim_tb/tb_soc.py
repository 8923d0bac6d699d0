"""cocotb bench of the board SoC (rtl/soc.py): runs a layer through the UART host link only.

Parameters (``ACCEL_PARAMS``): ``divisor`` (clock cycles per UART bit), ``nb`` (bus bytes),
``csr`` (register name -> offset), ``counters``, ``image`` (path of the DRAM image),
``prog_addr``, ``read`` ([[addr, nbytes], ...]), ``result`` (path to write), ``max_cycles``.

The bench is the host: it loads the image over the UART (gen/hostlink.py commands), writes the
program address and ``ctrl``, polls ``status``, reads the counters and the output regions back,
and writes them to ``result``. A UART line model drives ``rx`` and decodes ``tx`` bit by bit.
"""

import json
from pathlib import Path

import cocotb
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

from gen import hostlink
from sim_tb.common import load_params, start_clock, watchdog

STATUS_DONE = 2


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
    csr, nb = p["csr"], p["nb"]

    async def host():
        await line.run(hostlink.ping())
        for cmd in hostlink.image_commands(Path(p["image"]).read_bytes(), nb):
            await line.run(cmd)
        for addr, n in p["read"]:                   # outputs the hardware never wrote fail
            await line.run(hostlink.write_mem(addr // nb, [int("a5" * nb, 16)] * (n // nb), nb))
        await line.run(hostlink.write_csr(csr["prog_lo"], p["prog_addr"]))
        await line.run(hostlink.write_csr(csr["prog_hi"], 0))
        await line.run(hostlink.write_csr(csr["ctrl"], 1))
        while True:
            status = await line.run(hostlink.read_csr(csr["status"]))
            if status & STATUS_DONE:
                break
        result = {"status": status, "error_code": await line.run(hostlink.read_csr(
            csr["error_code"])), "counters": {}}
        for name in p["counters"]:
            lo = await line.run(hostlink.read_csr(csr[name]))
            result["counters"][name] = lo | await line.run(hostlink.read_csr(csr[name] + 4)) << 32
        result["read"] = [(await line.run(hostlink.read_mem(a // nb, n // nb, nb))).hex()
                          for a, n in p["read"]]
        Path(p["result"]).write_text(json.dumps(result))

    await watchdog(host(), p["max_cycles"])
