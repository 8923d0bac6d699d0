"""gen/boards.py without building: presets, report parsing, errors. (The bitstream builds
themselves are in tests/test_boards_slow.py.)"""

import pytest

from gen.boards import (BOARDS, Board, board, ecp5_pll_dividers, parse_nextpnr_log,
                        timing_failures)
from gen.layer import Layer
from gen.mapper import map_layer

NEXTPNR_LOG = """
Info: Device utilisation:
Info: 	          TRELLIS_IO:    12/  365     3%
Info: 	        TRELLIS_COMB: 51234/83640    61%
Info: 	          TRELLIS_FF: 38000/83640    45%
Info: 	              DP16KD:    93/  208    44%
Info: 	          MULT18X18D:     4/  156     2%
Info: Max frequency for clock '$glbnet$clk': 41.02 MHz (FAIL at 25.00 MHz)
Info: Max frequency for clock '$glbnet$clk': 52.37 MHz (PASS at 25.00 MHz)
"""


def test_nextpnr_log_is_parsed():
    cells, fmax = parse_nextpnr_log(NEXTPNR_LOG)
    assert cells["TRELLIS_COMB"] == (51234, 83640) and cells["DP16KD"] == (93, 208)
    assert cells["MULT18X18D"] == (4, 156) and cells["TRELLIS_IO"] == (12, 365)
    assert fmax == {"$glbnet$clk": (52.37, 25.0)}        # the last (post-route) report wins


def test_timing_failures_are_the_clocks_below_target():
    assert timing_failures({"clk": (52.4, 50.0)}) == {}
    assert timing_failures({"clk": (49.9, 50.0), "uart": (90.0, 12.0)}) == {"clk": 49.9}
    assert timing_failures({}) == {}


@pytest.mark.parametrize("name", list(BOARDS))
def test_board_presets_map_a_layer(name):
    """Each board's accelerator runs layers: a small conv maps on its config, and its DRAM
    image fits the board's on-chip RAM."""
    from gen.program import layer_image
    b = board(name)
    layer = Layer(N=1, C=2, H=6, W=6, M=2, R=3, S=3, act_bits=4)
    map_layer(b.cfg, layer)
    assert len(layer_image(b.cfg, layer).data) <= b.mem_bytes


def test_board_overrides_change_only_the_config():
    b = board("orangecrab-25f", ["cols=3", "mac=parallel"])
    assert b.cfg == BOARDS["orangecrab-25f"].cfg.replace(cols=3, mac="parallel")
    assert (b.mem_bytes, b.platform, b.uart_pins) == (BOARDS["orangecrab-25f"].mem_bytes,
                                                      BOARDS["orangecrab-25f"].platform,
                                                      BOARDS["orangecrab-25f"].uart_pins)
    assert board("orangecrab-25f", []) is BOARDS["orangecrab-25f"]
    with pytest.raises(ValueError, match="lanes: must be"):
        board("ulx3s-85f", ["lanes=0"])


def test_builds_with_overrides_get_their_own_folder():
    from gen.boards import REPO, build_dir
    assert build_dir("ulx3s-85f") == REPO / "build" / "bitstream" / "ulx3s-85f"
    assert build_dir("orangecrab-25f", ["cols=3", "mac=parallel"]).name == \
        "orangecrab-25f-cols3-macparallel"
    assert build_dir("icebreaker", ["name=../x"]).parent == REPO / "build" / "bitstream"


def test_unknown_board_is_named():
    with pytest.raises(ValueError, match=r"board: unknown board 'de10' \(known: ulx3s-85f, "
                                         r"orangecrab-25f, icebreaker\)"):
        board("de10")


@pytest.mark.parametrize("f_in,f_out", [(25, 50), (25, 60), (25, 62.5), (25, 75), (12, 48),
                                        (25, 40), (25, 100)])
def test_ecp5_pll_dividers_are_exact_and_legal(f_in, f_out):
    clki, clkfb, clkop = ecp5_pll_dividers(f_in, f_out)
    assert f_in * clkfb / clki == pytest.approx(f_out, rel=1e-12)
    assert 400 <= f_out * clkop <= 800 and f_in / clki >= 3.125
    assert 1 <= clki <= 128 and 1 <= clkfb <= 80 and 1 <= clkop <= 128


def test_pll_errors_are_named():
    with pytest.raises(ValueError, match="clk_mhz: the ECP5 PLL cannot make 48 MHz"):
        ecp5_pll_dividers(25, 48)
    ice = BOARDS["icebreaker"]
    with pytest.raises(ValueError, match="clk_mhz: a PLL clock is supported on ECP5"):
        Board("x", ice.platform, "ice40", ice.cfg, ice.mem_bytes, clk_mhz=24.0)


def test_pll_top_elaborates_with_the_dividers_and_uart_rate():
    """The board top with a PLL elaborates with an EHXPLLL carrying the computed dividers (a tiny
    array keeps elaboration fast)."""
    from gen.boards import _top
    from rtl.config import preset
    ulx = BOARDS["ulx3s-85f"]
    b = Board("pll-test", ulx.platform, "ecp5", preset("tiny"), 4096, clk_mhz=50.0)
    plan = b.make_platform().prepare(_top(b, 50_000_000), name="soc")
    il = plan.files["soc.il"]
    assert "cell \\EHXPLLL \\pll" in il
    for field, value in zip(("CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV"), ecp5_pll_dividers(25, 50)):
        assert f"parameter \\{field} {value}\n" in il


def test_orangecrab_top_has_the_header_uart_and_rgb_led():
    """The OrangeCrab's platform has no UART: the board adds one on the Feather header (pins 0 and
    1 = N17 and M18) and shows busy/done/error on the RGB LED, from the 48 MHz oscillator (a tiny
    array keeps elaboration fast)."""
    from gen.boards import _top
    from rtl.config import preset
    crab = BOARDS["orangecrab-25f"]
    b = Board("crab-test", crab.platform, "ecp5", preset("tiny"), 4096,
              uart_pins=crab.uart_pins)
    plan = b.make_platform().prepare(_top(b, 48_000_000), name="soc")
    lpf = plan.files["soc.lpf"]
    for port, site in (("uart_0__rx", "N17"), ("uart_0__tx", "M18"), ("rgb_led_0__r", "K4"),
                       ("rgb_led_0__g", "M3"), ("rgb_led_0__b", "J3")):
        assert f'LOCATE COMP "{port}__io" SITE "{site}";' in lpf, port
    assert "EHXPLLL" not in plan.files["soc.il"]
