"""cocotb bench of the accelerator top: runs programs from DRAM images, reports status and counters.

Parameters (``ACCEL_PARAMS``): ``config``; ``csr`` (register name -> byte offset); ``jobs``, each
``{"name", "image": path of the DRAM image, "prog_addr", "read": [[addr, nbytes], ...],
"result": path to write, "faults": [[lo, hi], ...] byte ranges answering SLVERR,
"timeout": watchdog CSR value, "max_cycles": bench watchdog}``; ``pause`` (chance of a
cocotbext-axi pause per channel and cycle) and ``seed``; ``progress_s`` (seconds between
progress lines, 0: none).

The DRAM is cocotbext-axi's ``AxiRam``, the CSR master its ``AxiLiteMaster``, both with random
pauses on every channel. Jobs run one after another on the same DUT without reset (so repeated
starts are exercised); before each, the read-back regions are filled with 0xA5 so an output the
hardware never wrote cannot pass. Each job's result file holds the status, error code and pc,
every counter, the bytes of the read regions (hex) and the bench's wall time. The run fails if a
job does not reach ``done`` within ``max_cycles`` (the watchdog), never hangs.
"""

import json
import logging
import random
import time
from pathlib import Path

import cocotb
from cocotb.triggers import ClockCycles
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

from sim_tb.common import load_params, start_clock

STATUS_DONE = 2
POLL_CYCLES = 64


def pauses(rng, prob):
    """Pause generator for a cocotbext-axi channel: paused with probability ``prob`` each cycle."""
    while True:
        yield rng.random() < prob


def set_pauses(channels, rng, prob):
    if prob:
        for ch in channels:
            ch.set_pause_generator(pauses(random.Random(rng.random()), prob))


class FaultyRange:
    """Makes an ``AxiRam`` side fail (SLVERR) on accesses inside configurable byte ranges."""

    def __init__(self, side, attr):
        self.ranges = []
        inner = getattr(side, attr)

        async def access(address, *args):
            if any(lo <= address < hi for lo, hi in self.ranges):
                raise IOError(f"injected DRAM error at {address:#x}")
            return await inner(address, *args)
        setattr(side, attr, access)


@cocotb.test()
async def run_jobs(dut):
    p = load_params()
    rng = random.Random(p.get("seed", 0))
    csr = p["csr"]
    jobs = p["jobs"]
    size = max(Path(j["image"]).stat().st_size for j in jobs)
    size = max(size + max((a + n for j in jobs for a, n in j.get("read", [])), default=0), 1 << 12)
    size = 1 << (size - 1).bit_length()

    ram = AxiRam(AxiBus.from_prefix(dut, "m_axi", bus_separator="__"), dut.clk, dut.rst, size=size)
    lite = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil", bus_separator="__"), dut.clk, dut.rst)
    for side in (ram.write_if, ram.read_if, lite.write_if, lite.read_if):
        side.log.setLevel(logging.ERROR)
    prob = p.get("pause", 0.0)
    set_pauses([ram.write_if.aw_channel, ram.write_if.w_channel, ram.write_if.b_channel,
                ram.read_if.ar_channel, ram.read_if.r_channel], rng, prob)
    set_pauses([lite.write_if.aw_channel, lite.write_if.w_channel, lite.write_if.b_channel,
                lite.read_if.ar_channel, lite.read_if.r_channel], rng, prob)
    read_faults = FaultyRange(ram.read_if, "_read")
    write_faults = FaultyRange(ram.write_if, "_write")
    await start_clock(dut)

    async def rd(name, offset=0):
        return int.from_bytes((await lite.read(csr[name] + offset, 4)).data, "little")

    async def wr(name, value):
        await lite.write(csr[name], int(value & 0xFFFF_FFFF).to_bytes(4, "little"))

    progress_s = p.get("progress_s", 0)
    for job in jobs:
        image = Path(job["image"]).read_bytes()
        ram.write(0, image)
        for addr, n in job.get("read", []):
            ram.write(addr, b"\xa5" * n)
        read_faults.ranges = write_faults.ranges = [tuple(r) for r in job.get("faults", [])]
        t0 = time.perf_counter()
        await wr("prog_lo", job["prog_addr"])
        await wr("prog_hi", job["prog_addr"] >> 32)
        await wr("timeout", job.get("timeout", 0))
        await wr("ctrl", 1)
        waited, last_print = 0, t0
        while True:
            await ClockCycles(dut.clk, POLL_CYCLES)
            waited += POLL_CYCLES
            status = await rd("status")
            if status & STATUS_DONE:
                break
            assert waited < job["max_cycles"], \
                f"{job['name']}: not done after {waited} cycles (bench watchdog)"
            now = time.perf_counter()
            if progress_s and now - last_print >= progress_s:
                last_print = now
                cycles = await rd("cycles")
                print(f"PROGRESS   {job['name']}: {cycles:,} cycles so far, "
                      f"{cycles / (now - t0):,.0f} cycles/s", flush=True)
        wall = time.perf_counter() - t0
        result = {"name": job["name"], "status": status, "error_code": await rd("error_code"),
                  "error_pc": await rd("error_pc"), "wall_s": wall, "counters": {}}
        for name in p["counters"]:
            lo = await rd(name)
            result["counters"][name] = lo | await rd(name, 4) << 32
        result["read"] = [ram.read(addr, n).hex() for addr, n in job.get("read", [])]
        Path(job["result"]).write_text(json.dumps(result))
