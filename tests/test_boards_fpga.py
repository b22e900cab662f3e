"""Place and route through the YoWASP yosys/nextpnr: one iCE40, one ECP5, one too large.

Small SoCs (4 MAC lanes, 64-byte frames) keep each run near a minute on 2 cores; the
board defaults are built by bench/fpga.py. Everything here runs the real tools.
"""

import dataclasses
import json
import subprocess
import sys

import pytest

from tritium.boards import DoesNotFitError, get_board
from tritium.boards import report as R
from tritium.boards.flow import build, design_name
from tritium.config import TernaryConfig

pytestmark = pytest.mark.fpga


def small(board_name):
    board = get_board(board_name)
    tmv = TernaryConfig(simd=4, pe=1, max_in=64, max_out=64, weight_depth=64, has_t3=0)
    return board, dataclasses.replace(board.default_config(), tmv=tmv, max_payload=64)


def check_report(board, root, rep):
    assert rep["bitstream"] and (root / rep["bitstream"]).stat().st_size > 10_000
    assert json.loads((root / "report.json").read_text()) == rep
    for name in ("lut", "ff", "bram"):
        r = rep["resources"][name]
        assert 0 < r["used"] <= r["available"], name
    (clk,) = rep["fmax"].values()
    assert clk["target_mhz"] == board.clock_hz / 1e6
    assert clk["achieved_mhz"] >= clk["target_mhz"]
    # the JSON report and the log's utilisation table agree
    util = R.nextpnr_utilisation((root / f"{design_name(board)}.tim").read_text())
    assert R.resources(util, rep["yosys_cells"]) == rep["resources"]


def test_icebreaker_bitstream_through_the_cli(tmp_path):
    board, cfg = small("icebreaker")
    (tmp_path / "soc.json").write_text(cfg.to_json())
    out = tmp_path / "build"
    r = subprocess.run([sys.executable, "-m", "tritium.cli", "build", "--board", "icebreaker",
                        "--config", str(tmp_path / "soc.json"), "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "icebreaker (iCE40UP5K-SG48)" in r.stdout and "MHz vs target 12.0 MHz (met" in r.stdout
    rep = json.loads((out / "report.json").read_text())
    assert rep["config"] == cfg.to_dict() and rep["bitstream"] == "tritium_icebreaker.bin"
    check_report(board, out, rep)


def test_ulx3s_12f_bitstream(tmp_path):
    board, cfg = small("ulx3s-12f")
    rep = build(board, cfg, tmp_path)
    assert rep["bitstream"] == "tritium_ulx3s_12f.bit"
    assert rep["resources"]["lut"]["available"] > 20_000  # LUT4 sites of the 12F die
    check_report(board, tmp_path, rep)


def test_too_large_for_the_icebreaker(tmp_path):
    board = get_board("icebreaker")
    cfg = board.default_config()
    big = dataclasses.replace(cfg, tmv=dataclasses.replace(cfg.tmv, weight_depth=16384))
    with pytest.raises(DoesNotFitError, match=r"does not fit the iCE40UP5K-SG48: "
                       r"ICESTORM_RAM 81/30 \(270%\); shrink tmv"):
        build(board, big, tmp_path)
