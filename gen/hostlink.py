"""Host side of the board link (rtl/hostlink.py): command encoding and reply decoding.

Each command is a :class:`Command`: the bytes to send, the number of reply bytes and a decoder
that checks the reply. A transport (a serial port, or the UART model of a simulation) sends
``cmd.data``, reads ``cmd.reply_len`` bytes and calls ``cmd.decode``; :func:`image_commands`
splits a DRAM image into memory writes.
"""

import struct
from dataclasses import dataclass
from typing import Callable

from rtl.hostlink import OPS, REPLY_ERROR

__all__ = ["Command", "write_mem", "read_mem", "write_csr", "read_csr", "ping",
           "image_commands", "MAX_WORDS", "layer_session", "run_session", "SerialLink",
           "STATUS_DONE"]

#: ``status`` CSR bit of a finished run.
STATUS_DONE = 2

#: Most words one memory command moves (its count field is 16 bits).
MAX_WORDS = 0xFFFF


@dataclass(frozen=True)
class Command:
    """``data`` to send, ``reply_len`` bytes to read back, ``decode(reply)`` -> result."""

    data: bytes
    reply_len: int
    decode: Callable


def _ack(op, what):
    def check(reply):
        if reply != bytes([op]):
            raise RuntimeError(f"{what}: the board answered {reply.hex() or 'nothing'} "
                               f"instead of {op:02x}"
                               f"{' (error reply)' if reply == bytes([REPLY_ERROR]) else ''}")
        return None
    return check


def write_mem(word_addr, words, nb):
    """Write ``words`` (ints of ``nb`` bytes) from bus word ``word_addr`` on."""
    if not 0 < len(words) <= MAX_WORDS:
        raise ValueError(f"words: 1..{MAX_WORDS} per command (got {len(words)})")
    data = bytes([OPS["write_mem"]]) + struct.pack("<IH", word_addr, len(words)) + \
        b"".join(int(w).to_bytes(nb, "little") for w in words)
    return Command(data, 1, _ack(OPS["write_mem"], f"write_mem at word {word_addr}"))


def read_mem(word_addr, count, nb):
    """Read ``count`` bus words from ``word_addr``; decodes to ``bytes``."""
    if not 0 < count <= MAX_WORDS:
        raise ValueError(f"count: 1..{MAX_WORDS} per command (got {count})")
    data = bytes([OPS["read_mem"]]) + struct.pack("<IH", word_addr, count)
    return Command(data, count * nb, bytes)


def write_csr(addr, value):
    data = bytes([OPS["write_csr"]]) + struct.pack("<HI", addr, value & 0xFFFF_FFFF)
    return Command(data, 1, _ack(OPS["write_csr"], f"write_csr {addr:#x}"))


def read_csr(addr):
    data = bytes([OPS["read_csr"]]) + struct.pack("<H", addr)
    return Command(data, 4, lambda reply: struct.unpack("<I", reply)[0])


def ping():
    return Command(bytes([OPS["ping"]]), 1, _ack(OPS["ping"], "ping"))


def image_commands(image, nb, base=0):
    """Memory writes that load ``image`` (bytes, a multiple of ``nb`` long) at byte ``base``."""
    if len(image) % nb or base % nb:
        raise ValueError(f"image: length and base must be multiples of the bus width {nb}")
    words = [int.from_bytes(image[i:i + nb], "little") for i in range(0, len(image), nb)]
    return [write_mem(base // nb + k, words[k:k + MAX_WORDS], nb)
            for k in range(0, len(words), MAX_WORDS)]


def layer_session(cfg, image_bytes, prog_addr, read, max_polls):
    """The host's part of one run, as a generator of :class:`Command` s (each is sent back the
    command's decoded reply): check the chip's ID and configuration words against ``cfg``, load
    the DRAM image, fill the ``read`` regions with 0xA5 (an output the hardware never wrote
    cannot pass), start the program, poll ``status`` (at most ``max_polls`` times), then read
    ``error_code``, every counter and the ``read`` regions. Returns ``{"status", "error_code",
    "counters", "read": [bytes, ...]}``. The same session drives the board over a serial port
    (:func:`run_session` with :class:`SerialLink`) and the simulated SoC (sim_tb/tb_soc.py)."""
    from rtl.top import CHIP_ID, COUNTERS, config_words, csr_map
    csr, nb = csr_map(cfg), cfg.dram_bytes
    yield ping()
    chip = yield read_csr(csr["id"])
    if chip != CHIP_ID:
        raise RuntimeError(f"board: chip ID {chip:#010x} is not the accelerator's {CHIP_ID:#010x}")
    for name, value in config_words(cfg).items():
        got = yield read_csr(csr[name])
        if got != value:
            raise RuntimeError(f"board: its {name} word is {got:#x} but the config's is {value:#x}"
                               f" (the bitstream was built for another configuration)")
    for cmd in image_commands(image_bytes, nb):
        yield cmd
    for addr, n in read:
        for k in range(0, n // nb, MAX_WORDS):
            count = min(MAX_WORDS, n // nb - k)
            yield write_mem(addr // nb + k, [int("a5" * nb, 16)] * count, nb)
    yield write_csr(csr["prog_lo"], prog_addr & 0xFFFF_FFFF)
    yield write_csr(csr["prog_hi"], prog_addr >> 32)
    yield write_csr(csr["ctrl"], 1)
    for _ in range(max_polls):
        status = yield read_csr(csr["status"])
        if status & STATUS_DONE:
            break
    else:
        raise RuntimeError(f"board: the run did not finish within {max_polls} status polls")
    result = {"status": status, "error_code": (yield read_csr(csr["error_code"])),
              "counters": {}, "read": []}
    for name in COUNTERS:
        lo = yield read_csr(csr[name])
        result["counters"][name] = lo | (yield read_csr(csr[name] + 4)) << 32
    for addr, n in read:
        data = b""
        for k in range(0, n // nb, MAX_WORDS):
            data += yield read_mem(addr // nb + k, min(MAX_WORDS, n // nb - k), nb)
        result["read"].append(data)
    return result


def run_session(session, run):
    """Drive a session generator with ``run(cmd) -> decoded reply``; returns its result."""
    try:
        cmd = next(session)
        while True:
            cmd = session.send(run(cmd))
    except StopIteration as stop:
        return stop.value


class SerialLink:
    """The host link over a serial port (pyserial ``serial_for_url``: a device such as
    ``/dev/ttyUSB0``, or ``socket://host:port``); ``run(cmd)`` sends a command and returns its
    decoded reply, or raises ``RuntimeError`` when the reply does not come within
    ``timeout_s``."""

    def __init__(self, port, baud=115_200, timeout_s=5.0):
        import serial
        try:
            self.port = serial.serial_for_url(port, baudrate=baud, timeout=timeout_s)
        except (serial.SerialException, ValueError) as e:
            raise RuntimeError(f"board: cannot open {port}: {e}") from None
        self.name, self.timeout_s = port, timeout_s

    def run(self, cmd):
        self.port.write(cmd.data)
        reply = self.port.read(cmd.reply_len)
        if len(reply) != cmd.reply_len:
            raise RuntimeError(f"board: {self.name} answered {len(reply)} of {cmd.reply_len} "
                               f"bytes within {self.timeout_s} s (is the bitstream loaded?)")
        return cmd.decode(reply)

    def close(self):
        self.port.close()
