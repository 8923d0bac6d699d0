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
           "image_commands", "MAX_WORDS"]

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
