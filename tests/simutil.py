"""Amaranth-simulator helpers: run testbenches, drive and consume streams with random stalls."""

from amaranth.sim import Simulator

__all__ = ["run_sim", "stream_put", "stream_get", "stream_collect", "cycle_counter", "Stalls",
           "pulse_and_wait", "check_registered_outputs"]


class Stalls:
    """Random idle cycles before each stream transfer; ``prob`` is the chance of one more idle cycle."""

    def __init__(self, rng=None, prob=0.0):
        self.rng = rng
        self.prob = prob

    async def wait(self, ctx):
        while self.rng is not None and self.rng.random() < self.prob:
            await ctx.tick()


async def stream_put(ctx, stream, payload, stalls=None):
    """Offer ``payload`` on ``stream`` (after random idle cycles) and wait until it is taken."""
    if stalls is not None:
        await stalls.wait(ctx)
    ctx.set(stream.payload, payload)
    ctx.set(stream.valid, 1)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream, stalls=None):
    """Take one payload from ``stream`` (after random idle cycles) and return it."""
    if stalls is not None:
        await stalls.wait(ctx)
    ctx.set(stream.ready, 1)
    payload, = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


async def stream_collect(ctx, stream, out, rng, prob, stop):
    """Take every payload of ``stream`` into ``out`` (``ready`` low with probability ``prob``
    each cycle) until ``stop()`` is true after a cycle in which it was sampled."""
    while True:
        ready = rng.random() >= prob
        ctx.set(stream.ready, ready)
        if ctx.get(stream.valid) and ready:
            out.append(ctx.get(stream.payload))
        done = stop()
        await ctx.tick()
        if done:
            return


def cycle_counter(flags, until="error"):
    """A testbench counting clock cycles into ``flags["cycles"]`` until ``until`` is a key of
    ``flags`` (set by the bench that waits for the unit's ``done``)."""
    async def clock(ctx):
        flags["cycles"] = 0
        while until not in flags:
            await ctx.tick()
            flags["cycles"] += 1
    return clock


def run_sim(dut, *testbenches, monitors=(), deadline_cycles=100_000, vcd=None):
    """Simulate ``dut`` with a 1 ns clock until every testbench returns.

    ``deadline_cycles`` is the watchdog: the run fails with ``TimeoutError`` if the testbenches
    have not finished by then, so a hung design never hangs the test suite. ``monitors`` are
    testbenches that loop forever (samplers); they do not keep the simulation alive.
    """
    sim = Simulator(dut)
    sim.add_clock(1e-9)
    finished = []

    def tracked(tb):
        async def run(ctx):
            await tb(ctx)
            finished.append(tb)
        return run

    for tb in testbenches:
        sim.add_testbench(tracked(tb))
    for mon in monitors:
        sim.add_testbench(mon)

    def go():
        chunk = 256
        for start in range(0, deadline_cycles, chunk):
            sim.run_until((start + chunk) * 1e-9)
            if len(finished) == len(testbenches):
                return
        raise TimeoutError(f"simulation still running after {deadline_cycles} cycles")

    if vcd:
        with sim.write_vcd(vcd):
            go()
    else:
        go()


async def pulse_and_wait(ctx, start, done):
    """Pulse ``start`` for one cycle, then wait for the cycle in which ``done`` is high."""
    ctx.set(start, 1)
    await ctx.tick()
    ctx.set(start, 0)
    while not ctx.get(done):
        await ctx.tick()


async def check_registered_outputs(ctx, inputs, outputs, rng, moved, cycles=400, value=None):
    """Assert that no signal of ``outputs`` depends combinationally on ``inputs``: every cycle,
    drive two random values on each input (``value(sig)`` may choose one, else uniform; 1-bit
    inputs high 60% of the time) and compare the outputs. Returns how many cycles the ``moved``
    expression (e.g. a handshake) was true, so callers can check that the state did change."""
    count = 0
    for _ in range(cycles):
        seen = []
        for _ in range(2):
            for sig in inputs:
                v = value(sig) if value else None
                if v is None:
                    v = rng.getrandbits(len(sig)) if len(sig) > 1 else rng.random() < 0.6
                ctx.set(sig, v)
            seen.append([ctx.get(sig) for sig in outputs])
        assert seen[0] == seen[1], "an output changed with the inputs in the same cycle"
        count += ctx.get(moved)
        await ctx.tick()
    return count
