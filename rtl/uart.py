"""UART transmitter and receiver (8 data bits, no parity, 1 stop bit) for the board's host link."""

from amaranth.hdl import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["UartTx", "UartRx", "uart_divisor"]


def uart_divisor(clk_hz, baud):
    """Clock cycles per bit for ``baud`` at ``clk_hz``; ``ValueError`` when the rounding error
    exceeds 2% (a receiver samples mid-bit, so about 5% in all is tolerable) or the divisor is
    below 4."""
    if clk_hz <= 0 or baud <= 0:
        raise ValueError(f"baud: clock and baud rate must be > 0 (got {clk_hz} Hz, {baud} Bd)")
    divisor = round(clk_hz / baud)
    if divisor < 4:
        raise ValueError(f"baud: {baud} Bd needs at least 4 clock cycles per bit "
                         f"(got {clk_hz / baud:.2f} at {clk_hz} Hz)")
    if abs(clk_hz / divisor - baud) > 0.02 * baud:
        raise ValueError(f"baud: {baud} Bd is off by more than 2% at {clk_hz} Hz "
                         f"(nearest: {clk_hz / divisor:.0f} Bd)")
    return divisor


def _check_divisor(divisor):
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 4:
        raise ValueError(f"divisor: must be an integer >= 4 clock cycles per bit (got {divisor!r})")


class UartTx(wiring.Component):
    """8N1 transmitter: each byte taken on ``i_data`` leaves on ``tx`` as a start bit (0), 8
    data bits LSB first and a stop bit (1), each ``divisor`` clock cycles long; ``tx`` idles high.
    ``i_data.ready`` is high while idle; the next byte is taken in the stop bit's last cycle, so
    bytes follow each other without a gap."""

    def __init__(self, divisor):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__({"i_data": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        shift = Signal(10)                        # stop, data[7:0], start; LSB leaves first
        bits = Signal(range(11))                  # bits still to send (incl. the one on tx)
        timer = Signal(range(self.divisor))
        last_cycle = (bits == 1) & (timer == 0)   # the stop bit's last cycle
        m.d.comb += [self.tx.eq(Mux(bits != 0, shift[0], 1)),
                     self.i_data.ready.eq((bits == 0) | last_cycle)]
        with m.If(self.i_data.valid & self.i_data.ready):
            m.d.sync += [shift.eq(Cat(C(0, 1), self.i_data.payload, C(1, 1))), bits.eq(10),
                         timer.eq(self.divisor - 1)]
        with m.Elif(bits != 0):
            with m.If(timer == 0):
                m.d.sync += [shift.eq(shift >> 1), bits.eq(bits - 1),
                             timer.eq(self.divisor - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m


class UartRx(wiring.Component):
    """8N1 receiver: ``rx`` (asynchronous, synchronised by two flip-flops) is sampled in the
    middle of every bit, ``divisor`` clock cycles per bit; each byte with a valid stop bit is
    offered on ``o_data`` until taken.

    A start bit shorter than half a bit is a glitch and ignored. A byte whose stop bit is 0 is
    dropped and ``framing_error`` pulses (the receiver then waits for the line to go high before
    looking for the next start bit). A byte that arrives while the previous one has not been
    taken replaces nothing: it is dropped and ``overrun`` pulses."""

    def __init__(self, divisor):
        _check_divisor(divisor)
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "o_data": Out(stream.Signature(8)),
                          "framing_error": Out(1), "overrun": Out(1)})

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        sync1 = Signal(init=1)
        line = Signal(init=1)
        m.d.sync += [sync1.eq(self.rx), line.eq(sync1)]

        timer = Signal(range(d))
        shift = Signal(8)
        bit = Signal(range(9))
        out = self.o_data
        with m.If(out.ready):
            m.d.sync += out.valid.eq(0)

        with m.FSM(name="fsm"):
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(d // 2 - 1)
                    m.next = "START"
            with m.State("START"):               # to the middle of the start bit
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):               # high again: a glitch
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [timer.eq(d - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):                # middle of data bit ``bit``, then the stop bit
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(bit != 8):
                    m.d.sync += [shift.eq(Cat(shift[1:], line)), bit.eq(bit + 1),
                                 timer.eq(d - 1)]
                with m.Elif(~line):              # stop bit 0: framing error
                    m.d.comb += self.framing_error.eq(1)
                    m.next = "BREAK"
                with m.Else():
                    with m.If(out.valid & ~out.ready):
                        m.d.comb += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [out.valid.eq(1), out.payload.eq(shift)]
                    m.next = "IDLE"
            with m.State("BREAK"):               # wait for the line to return high
                with m.If(line):
                    m.next = "IDLE"
        return m
