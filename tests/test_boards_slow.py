"""Bitstream builds of the board SoC with the YoWASP tools (slow tier: synthesis and place and
route of the whole accelerator take minutes to tens of minutes)."""

import json

import pytest

from gen.boards import board, build_bitstream

pytestmark = pytest.mark.slow


def test_ulx3s_85f_builds_and_reports(tmp_path):
    report = build_bitstream("ulx3s-85f", tmp_path)
    assert (tmp_path / "soc.bit").stat().st_size > 100_000
    res = report["resources"]
    assert 0 < res["lut"]["used"] <= res["lut"]["available"]
    assert 0 < res["bram"]["used"] <= res["bram"]["available"]
    assert report["fmax_mhz"] and min(report["fmax_mhz"].values()) > 0
    assert json.loads((tmp_path / "report.json").read_text()) == report
    assert report["mac_lanes"] == board("ulx3s-85f").cfg.pes * board("ulx3s-85f").cfg.lanes


def test_orangecrab_25f_builds_and_meets_timing(tmp_path):
    """The peer's device: the build raises if the 48 MHz oscillator's clock is not met."""
    report = build_bitstream("orangecrab-25f", tmp_path)
    assert report["timing_met"] and (tmp_path / "soc.bit").stat().st_size > 100_000
    assert report["resources"]["lut"]["available"] == 24_288
    assert report["mac_lanes"] == 32


def test_icebreaker_does_not_fit_and_says_so(tmp_path):
    """The UP5K's 5,280 logic cells cannot hold even a 1x2 array with the controller, DMA, CSRs
    and GLB: the build ends with the cell type and its use, and the report is still written."""
    with pytest.raises(ValueError, match=r"bitstream: icebreaker build failed \(does not fit: "
                                         r"ICESTORM_LC \d+/5280\)"):
        build_bitstream("icebreaker", tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["resources"]["lut"]["used"] > report["resources"]["lut"]["available"]
