"""cocotb helpers shared by the benches: parameters, clock/reset, stream driving, watchdog."""

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge, with_timeout

__all__ = ["load_params", "start_clock", "StreamSource", "StreamSink", "watchdog"]

CLOCK_NS = 10


def load_params():
    """The JSON dict the pytest side wrote for this run (env ``ACCEL_PARAMS``)."""
    path = os.environ.get("ACCEL_PARAMS")
    if not path:
        return {}
    with open(path) as f:
        return json.load(f)


async def start_clock(dut, reset_cycles=2):
    """Start ``clk`` and hold ``rst`` for a few cycles."""
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    for _ in range(reset_cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


def watchdog(coro, cycles):
    """Run ``coro`` but fail the test if it takes more than ``cycles`` clock periods."""
    return with_timeout(coro, cycles * CLOCK_NS, "ns")


class _StreamPort:
    def __init__(self, dut, prefix, rng, idle_prob):
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.clk = dut.clk
        self.rng = rng or random.Random(0)
        self.idle_prob = idle_prob

    async def _idle(self):
        while self.rng.random() < self.idle_prob:
            await RisingEdge(self.clk)


class StreamSource(_StreamPort):
    """Drives the Amaranth stream input ``<prefix>__{valid,ready,payload}``, idling at random."""

    def __init__(self, dut, prefix, rng=None, idle_prob=0.0):
        super().__init__(dut, prefix, rng, idle_prob)
        self.valid.value = 0

    async def send(self, value):
        """Offer ``value`` (an int) and return after the clock edge that transfers it."""
        await self._idle()
        self.payload.value = value
        self.valid.value = 1
        while True:
            await ReadOnly()
            taken = bool(self.ready.value)
            await RisingEdge(self.clk)
            if taken:
                break
        self.valid.value = 0


class StreamSink(_StreamPort):
    """Consumes the Amaranth stream output ``<prefix>__{valid,ready,payload}``, stalling at random."""

    def __init__(self, dut, prefix, rng=None, idle_prob=0.0):
        super().__init__(dut, prefix, rng, idle_prob)
        self.ready.value = 0

    async def recv(self):
        """Return the next payload (a ``LogicArray``) after the edge that transfers it."""
        await self._idle()
        self.ready.value = 1
        while True:
            await ReadOnly()
            value = self.payload.value if self.valid.value else None
            await RisingEdge(self.clk)
            if value is not None:
                break
        self.ready.value = 0
        return value
