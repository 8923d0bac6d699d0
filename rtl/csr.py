"""AXI4-Lite slave register bank for the accelerator's control and status registers."""

import keyword
from dataclasses import dataclass
from typing import NamedTuple

from amaranth.hdl import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.axi import AXI_RESP_OKAY, AXI_RESP_SLVERR, axi4lite_signature

__all__ = ["Reg", "RegInfo", "CsrBank", "CSR_KINDS", "reg_offsets"]

#: Register kinds, see :class:`CsrBank`.
CSR_KINDS = ("ro", "rw", "pulse", "counter")
#: Bytes each kind occupies in the address map.
_SIZES = {"ro": 4, "rw": 4, "pulse": 4, "counter": 8}


@dataclass(frozen=True)
class Reg:
    """One entry of a :class:`CsrBank`: ``name``, ``kind`` (one of :data:`CSR_KINDS`), ``width``
    in bits (default 32; a counter is always 64), ``reset`` (rw only) and a one-line ``doc``.

    The entry is only a record; :class:`CsrBank` validates it.
    """

    name: str
    kind: str
    width: int = None
    reset: int = 0
    doc: str = ""

    def __post_init__(self):
        if self.width is None:
            object.__setattr__(self, "width", 64 if self.kind == "counter" else 32)


class RegInfo(NamedTuple):
    """One row of :meth:`CsrBank.layout`: byte ``offset`` of the register's first word."""
    name: str
    offset: int
    kind: str
    doc: str


def reg_offsets(regs):
    """Byte offset of each register of ``regs`` in a :class:`CsrBank`'s map, by name (the map
    without building the bank, e.g. for host software)."""
    offsets, offset = {}, 0
    for reg in regs:
        offsets[reg.name] = offset
        offset += _SIZES[reg.kind]
    return offsets


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


class CsrBank(wiring.Component):
    """AXI4-Lite slave (32-bit data) exposing a list of :class:`Reg` entries as registers.

    Address map: registers are laid out in list order from byte offset 0, 4 bytes each, except a
    counter, which takes 8 (LO word at its offset, HI word at offset + 4). :meth:`address_of` and
    :meth:`layout` give the map to the host side and the docs. Only word-aligned addresses inside
    the map are mapped; bits of ``awaddr``/``araddr`` are all decoded (no aliasing), ``*prot`` is
    ignored.

    Kinds:

    * ``ro``: the In port ``<name>`` (``width`` bits) is read, zero-extended; writes are ignored.
    * ``rw``: the Out port ``<name>`` holds the register. A write updates the byte lanes whose
      ``wstrb`` bit is set (bits at or above ``width`` are dropped); reads return the value,
      zero-extended.
    * ``pulse``: a write to it drives ``<name>`` (Out, ``width`` bits) with the written data
      (byte lanes without a ``wstrb`` bit read as 0) and ``<name>_stb`` (Out(1)) high for exactly
      one cycle; both are 0 otherwise. A write with ``wstrb == 0`` does not pulse. Reads return 0.
    * ``counter``: the 64-bit In port ``<name>`` read as two words. Reading LO returns bits
      31..0 and, in the same cycle, copies bits 63..32 into a HI snapshot register; reading HI
      returns the snapshot. So a LO-then-HI read pair returns one consistent 64-bit value even
      when LO carries over between the two reads (each counter has its own snapshot; a HI read
      without a preceding LO read returns the snapshot of the last LO read, 0 after reset).
      Writes are ignored.

    Bus contract:

    * Responses: OKAY for every mapped address (including ignored writes to ro/counter words),
      SLVERR for an address past the map or not a multiple of 4 (such a write changes nothing
      and does not pulse; such a read returns 0).
    * Writes: AW and W are accepted independently, in either order or in the same cycle, each
      into a one-entry holding register (``awready``/``wready`` low while theirs is full or a B
      response is pending). If the later of the two handshakes is on clock edge N, the write
      takes effect on edge N+1: rw ports and pulse outputs change and ``bvalid`` rises on that
      same edge. One write is outstanding at a time: the next AW/W is accepted after the B
      handshake. Byte writes use a word-aligned address and ``wstrb``; an unaligned address
      (as some masters emit for sub-word accesses) is SLVERR.
    * Reads: ``arready`` is high while no R response is pending. The value is taken on the AR
      handshake edge (ro ports and counters as they are in that cycle) and ``rvalid`` rises on
      that same edge, i.e. R is offered in the cycle after the AR handshake. One read is outstanding at a time; reads and writes proceed independently.
    * ``bvalid``/``bresp`` and ``rvalid``/``rdata``/``rresp`` are registers held until
      ``bready``/``rready``. No AXI output depends combinationally on any input.
    * Reset: rw registers hold their ``reset`` value; pulse outputs and strobes, counter
      snapshots, ``rdata`` 0; no response pending, so ``awready``/``wready``/``arready`` are 1.

    Parameters
    ----------
    regs : list of Reg
        Names must be Python identifiers, unique together with the derived ``<name>_stb`` ports,
        and not clash with ``s_axil`` or an attribute of this class. ``width`` is 1..32 (64 for a
        counter); only ``rw`` entries may have a nonzero ``reset``, which must fit in ``width``.
    addr_bits : int
        Width of ``awaddr``/``araddr``, 2..32; the map must fit in ``2**addr_bits`` bytes.

    Members
    -------
    s_axil : In(axi4lite_signature(addr_bits, 32))
    <name> : In(width) for ro, Out(width) for rw and pulse, In(64) for counter
    <name>_stb : Out(1), for each pulse register
    """

    def __init__(self, regs, addr_bits=12):
        if not _is_int(addr_bits) or not 2 <= addr_bits <= 32:
            raise ValueError(f"addr_bits: must be an integer in 2..32 (got {addr_bits!r})")
        if isinstance(regs, (str, bytes)) or not hasattr(regs, "__iter__"):
            raise TypeError(f"regs: must be a list of Reg (got {regs!r})")
        regs = tuple(regs)
        if not regs:
            raise ValueError("regs: must hold at least one register (got an empty list)")
        reserved = {"s_axil"} | {a for a in dir(type(self)) if not a.startswith("_")} | \
            {"regs", "addr_bits"}
        members = {"s_axil": In(axi4lite_signature(addr_bits, 32))}
        owner = {}   # member name -> index of the entry that made it
        offset = 0
        for i, reg in enumerate(regs):
            if not isinstance(reg, Reg):
                raise TypeError(f"regs[{i}]: must be a Reg (got {reg!r})")
            where = f"regs[{i}] {reg.name!r}"
            if not isinstance(reg.name, str) or not reg.name.isidentifier() or \
                    reg.name.startswith("_") or keyword.iskeyword(reg.name):
                raise ValueError(f"{where}: name must be a Python identifier not starting with '_'")
            if reg.name in reserved:
                raise ValueError(f"{where}: name clashes with the bus member or a CsrBank attribute")
            if reg.kind not in CSR_KINDS:
                raise ValueError(f"{where}: kind must be one of {', '.join(map(repr, CSR_KINDS))} "
                                 f"(got {reg.kind!r})")
            if reg.kind == "counter":
                if reg.width != 64:
                    raise ValueError(f"{where}: width of a counter must be 64 (got {reg.width!r})")
            elif not _is_int(reg.width) or not 1 <= reg.width <= 32:
                raise ValueError(f"{where}: width must be an integer in 1..32 for kind "
                                 f"{reg.kind!r} (got {reg.width!r})")
            if not _is_int(reg.reset):
                raise ValueError(f"{where}: reset must be an integer (got {reg.reset!r})")
            if reg.kind == "rw":
                if not 0 <= reg.reset < 1 << reg.width:
                    raise ValueError(f"{where}: reset must be in 0..{(1 << reg.width) - 1} "
                                     f"(fit in width {reg.width}) (got {reg.reset!r})")
            elif reg.reset != 0:
                raise ValueError(f"{where}: only rw registers have a reset value "
                                 f"(got reset={reg.reset!r} for kind {reg.kind!r})")
            if not isinstance(reg.doc, str):
                raise ValueError(f"{where}: doc must be a string (got {reg.doc!r})")

            if reg.kind == "ro":
                ports = {reg.name: In(reg.width)}
            elif reg.kind == "rw":
                ports = {reg.name: Out(reg.width, init=reg.reset)}
            elif reg.kind == "pulse":
                ports = {reg.name: Out(reg.width), f"{reg.name}_stb": Out(1)}
            else:
                ports = {reg.name: In(64)}
            for port in ports:
                if port in owner:
                    j = owner[port]
                    raise ValueError(f"{where}: duplicate name: port {port!r} is already used by "
                                     f"regs[{j}] {regs[j].name!r}")
                if port in reserved:
                    raise ValueError(f"{where}: port {port!r} clashes with the bus member or a "
                                     f"CsrBank attribute")
                owner[port] = i
            members.update(ports)

            size = _SIZES[reg.kind]
            if offset + size > 1 << addr_bits:
                raise ValueError(f"{where}: does not fit in addr_bits={addr_bits}: needs bytes "
                                 f"{offset:#x}..{offset + size - 1:#x} of a {1 << addr_bits}-byte "
                                 f"address space (too many registers)")
            offset += size

        self.regs = regs
        self.addr_bits = addr_bits
        self._offsets = reg_offsets(regs)
        super().__init__(members)

    def address_of(self, name):
        """Byte offset of register ``name`` (of the LO word for a counter; HI is at +4)."""
        try:
            return self._offsets[name]
        except KeyError:
            raise ValueError(f"{name!r}: no such register (known: "
                             f"{', '.join(self._offsets)})") from None

    def layout(self):
        """The address map: one :class:`RegInfo` ``(name, offset, kind, doc)`` per register."""
        return [RegInfo(r.name, self._offsets[r.name], r.kind, r.doc) for r in self.regs]

    def elaborate(self, platform):
        m = Module()
        bus = self.s_axil

        # Write side: AW and W each land in a holding register; the write happens once both are.
        aw_full = Signal()
        aw_addr = Signal(self.addr_bits)
        w_full = Signal()
        w_data = Signal(32)
        w_strb = Signal(4)
        bvalid = Signal()
        bresp = Signal(2)
        m.d.comb += [
            bus.awready.eq(~aw_full & ~bvalid),
            bus.wready.eq(~w_full & ~bvalid),
            bus.bvalid.eq(bvalid),
            bus.bresp.eq(bresp),
        ]
        with m.If(bus.awvalid & bus.awready):
            m.d.sync += [aw_addr.eq(bus.awaddr), aw_full.eq(1)]
        with m.If(bus.wvalid & bus.wready):
            m.d.sync += [w_data.eq(bus.wdata), w_strb.eq(bus.wstrb), w_full.eq(1)]
        with m.If(bvalid & bus.bready):
            m.d.sync += bvalid.eq(0)

        for reg in self.regs:   # pulses last one cycle unless a write below sets them
            if reg.kind == "pulse":
                m.d.sync += [getattr(self, reg.name).eq(0), getattr(self, f"{reg.name}_stb").eq(0)]

        def lanes(width):
            for lane in range((width + 7) // 8):
                yield lane, slice(8 * lane, min(width, 8 * lane + 8))

        with m.If(aw_full & w_full):
            m.d.sync += [aw_full.eq(0), w_full.eq(0), bvalid.eq(1)]
            with m.Switch(aw_addr):
                for reg in self.regs:
                    offset = self._offsets[reg.name]
                    cases = (offset, offset + 4) if reg.kind == "counter" else (offset,)
                    with m.Case(*cases):
                        m.d.sync += bresp.eq(AXI_RESP_OKAY)
                        port = getattr(self, reg.name)
                        if reg.kind == "rw":
                            for lane, bits in lanes(reg.width):
                                with m.If(w_strb[lane]):
                                    m.d.sync += port[bits].eq(w_data[bits])
                        elif reg.kind == "pulse":
                            m.d.sync += [
                                port.eq(Cat(Mux(w_strb[lane], w_data[bits], 0)
                                            for lane, bits in lanes(reg.width))),
                                getattr(self, f"{reg.name}_stb").eq(w_strb.any()),
                            ]
                with m.Default():
                    m.d.sync += bresp.eq(AXI_RESP_SLVERR)

        # Read side: the value is taken at the AR handshake into the R holding register.
        rvalid = Signal()
        rdata = Signal(32)
        rresp = Signal(2)
        m.d.comb += [
            bus.arready.eq(~rvalid),
            bus.rvalid.eq(rvalid),
            bus.rdata.eq(rdata),
            bus.rresp.eq(rresp),
        ]
        with m.If(rvalid & bus.rready):
            m.d.sync += rvalid.eq(0)
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += [rvalid.eq(1), rresp.eq(AXI_RESP_OKAY), rdata.eq(0)]
            with m.Switch(bus.araddr):
                for reg in self.regs:
                    offset = self._offsets[reg.name]
                    port = getattr(self, reg.name)
                    if reg.kind in ("ro", "rw"):
                        with m.Case(offset):
                            m.d.sync += rdata.eq(port)
                    elif reg.kind == "pulse":
                        with m.Case(offset):
                            pass   # reads as 0
                    else:
                        snap_hi = Signal(32, name=f"{reg.name}_hi_snap")
                        with m.Case(offset):
                            m.d.sync += [rdata.eq(port[:32]), snap_hi.eq(port[32:])]
                        with m.Case(offset + 4):
                            m.d.sync += rdata.eq(snap_hi)
                with m.Default():
                    m.d.sync += rresp.eq(AXI_RESP_SLVERR)
        return m
