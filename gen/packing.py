"""Precision-packed DRAM format of activations (DPRed-style groups with a precision header).

A packed segment is a little-endian bit stream over bus words (stream bit ``i`` is bit
``i % bus`` of word ``i // bus``), zero-padded to a whole word. ``count`` elements of a
``container``-bit format (8 or 16) are cut into groups of ``group`` elements (the last group may be
shorter). Each group is a header of :func:`header_bits` bits holding its precision ``p``
(``0..container``) followed by its elements, ``p`` bits each, first element first. ``p`` is the
smallest width that holds every member: ``bit_length(v)`` for unsigned data, the two's complement
width (sign bit included) for signed data, and 0 for a group of zeros (no element bits at all).

:class:`rtl.packing.GroupPacker` writes this format in the store path and
:class:`rtl.packing.GroupUnpacker` reads it on the way from the DMA into the GLB; this module is the
host side and the reference both are tested against.
"""

import numpy as np

__all__ = ["header_bits", "value_width", "pack", "unpack", "packed_bits", "packed_words",
           "worst_case_words"]


def header_bits(container):
    """Width of a group header: enough for a precision of ``0..container``."""
    if container not in (8, 16):
        raise ValueError(f"container: packed elements are 8 or 16 bits (got {container!r})")
    return container.bit_length()


def value_width(values, signed):
    """Per-element width (numpy array): ``bit_length`` unsigned, two's complement width signed,
    0 for zero."""
    v = np.asarray(values, dtype=np.int64)
    mag = np.where(v < 0, ~v, v) if signed else v
    if not signed and (v < 0).any():
        raise ValueError("values: unsigned packing of a negative value")
    width = np.zeros(v.shape, dtype=np.int64)
    for k in range(63):                              # bit_length, exactly
        width += (mag >> k) != 0
    if signed:
        width = np.where(v != 0, width + 1, 0)
    return width


def _groups(count, group):
    return [(g, min(group, count - g)) for g in range(0, count, group)]


def _check(container, group, bus):
    header_bits(container)
    if not isinstance(group, int) or isinstance(group, bool) or group < 1:
        raise ValueError(f"group: must be a positive integer (got {group!r})")
    if bus not in (32, 64, 128, 256):
        raise ValueError(f"bus: must be 32, 64, 128 or 256 bits (got {bus!r})")


def packed_bits(values, container, group, signed):
    """Bits of the packed stream of ``values`` before the padding to a bus word."""
    v = np.asarray(values, dtype=np.int64).reshape(-1)
    hb = header_bits(container)
    widths = value_width(v, signed)
    total = 0
    for g, n in _groups(len(v), group):
        total += hb + n * int(widths[g:g + n].max(initial=0))
    return total


def packed_words(values, container, group, signed, bus):
    """Bus words of the packed segment of ``values``."""
    return -(-packed_bits(values, container, group, signed) // bus)


def worst_case_words(count, container, group, bus):
    """Bus words of a packed segment of ``count`` elements at full precision (the room a store
    reserves)."""
    _check(container, group, bus)
    groups = -(-count // group)
    return -(-(groups * header_bits(container) + count * container) // bus)


def pack(values, container, group, signed, bus):
    """The packed segment of ``values`` as a list of ``bus``-bit word ints.

    Raises ``ValueError`` when a value does not fit the ``container`` (signed or unsigned)."""
    _check(container, group, bus)
    v = np.asarray(values, dtype=np.int64).reshape(-1)
    lo, hi = (-(1 << (container - 1)), (1 << (container - 1)) - 1) if signed else \
        (0, (1 << container) - 1)
    if v.size and (v.min() < lo or v.max() > hi):
        raise ValueError(f"values: must be in {lo}..{hi} for {'signed' if signed else 'unsigned'} "
                         f"{container}-bit packing (got {v.min()}..{v.max()})")
    hb = header_bits(container)
    widths = value_width(v, signed)
    words, acc, fill = [], 0, 0
    mask = (1 << bus) - 1

    def put(value, nbits):
        nonlocal acc, fill
        acc |= (value & ((1 << nbits) - 1)) << fill
        fill += nbits
        while fill >= bus:
            words.append(acc & mask)
            acc >>= bus
            fill -= bus

    for g, n in _groups(len(v), group):
        p = int(widths[g:g + n].max(initial=0))
        put(p, hb)
        if p:
            for x in v[g:g + n]:
                put(int(x), p)
    if fill:
        words.append(acc & mask)
    return words


def unpack(words, count, container, group, signed, bus):
    """The ``count`` values of the packed segment ``words`` (``bus``-bit ints), as an int64
    array. Raises ``ValueError`` when the segment ends early or a header exceeds the container."""
    _check(container, group, bus)
    hb = header_bits(container)
    out = np.zeros(count, dtype=np.int64)
    it = iter(words)
    acc, fill, used = 0, 0, 0

    def take(nbits):
        nonlocal acc, fill, used
        while fill < nbits:
            try:
                acc |= int(next(it)) << fill
            except StopIteration:
                raise ValueError(f"words: the packed segment ends after {used} bits, before "
                                 f"its {count} elements") from None
            fill += bus
        value = acc & ((1 << nbits) - 1)
        acc >>= nbits
        fill -= nbits
        used += nbits
        return value

    for g, n in _groups(count, group):
        p = take(hb)
        if p > container:
            raise ValueError(f"words: group at element {g} has precision {p} > container "
                             f"{container}")
        for i in range(n):
            x = take(p) if p else 0
            if signed and p and x >> (p - 1):
                x -= 1 << p
            out[g + i] = x
    return out
