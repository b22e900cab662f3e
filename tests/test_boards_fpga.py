"""Place and route through the YoWASP yosys/nextpnr: one iCE40, one ECP5, one too large.

Small SoCs (4 MAC lanes, 64-byte frames) keep each run near a minute on 2 cores; the
board defaults are built by bench/fpga.py. Everything here runs the real tools.
"""

import dataclasses
import re
import json
import subprocess
import sys

import pytest

from tritium.boards import DoesNotFitError, get_board
from tritium.boards import report as R
from tritium.boards.flow import build, design_name
from tritium.engines.tmv.config import TernaryConfig

pytestmark = pytest.mark.fpga


def small(board_name):
    board = get_board(board_name)
    tmv = TernaryConfig(simd=4, pe=1, max_in=64, max_out=64, weight_depth=64, has_t3=0)
    return board, dataclasses.replace(board.default_config().replace_engine(tmv), max_payload=64)


def check_report(board, root, rep):
    assert rep["bitstream"] and (root / rep["bitstream"]).stat().st_size > 10_000
    assert json.loads((root / "report.json").read_text()) == rep
    for name in ("lut", "ff", "bram"):
        r = rep["resources"][name]
        assert 0 < r["used"] <= r["available"], name
    (clk,) = rep["fmax"].values()
    assert clk["target_mhz"] == pytest.approx(board.clock_hz / 1e6, abs=0.01)
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
    big = cfg.replace_engine(dataclasses.replace(cfg.tmv, weight_depth=16384))
    with pytest.raises(DoesNotFitError, match=r"does not fit the iCE40UP5K-SG48: "
                       r"(ICESTORM_LC \d+/5280 \(\d+%\), )?ICESTORM_RAM \d+/30 \(\d+%\); shrink tmv") as e:
        build(board, big, tmp_path)
    # 16384 lines of 16 bits need at least 64 of the 30 4-kbit RAMs; the exact count
    # (the link's buffers add some) follows yosys, the percentage follows the count
    used, pct = map(int, re.search(r"ICESTORM_RAM (\d+)/30 \((\d+)%\)", str(e.value)).groups())
    assert used >= 64 and pct == round(100 * used / 30)


def test_sweep_fpga_cli(tmp_path):
    _, cfg = small("icebreaker")
    (tmp_path / "soc.json").write_text(cfg.to_json())
    out = tmp_path / "sweep"
    r = subprocess.run([sys.executable, "-m", "tritium.cli", "sweep-fpga", "--board",
                        "icebreaker", "--simd", "2,4", "--config", str(tmp_path / "soc.json"),
                        "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    pts = json.loads((out / "sweep.json").read_text())["points"]
    assert [p["simd"] for p in pts] == [2, 4]
    assert pts[0]["lut"] < pts[1]["lut"] and pts[1]["lut_per_lane_marginal"] > 0
    assert all(p["fmax_mhz"] >= 12.0 for p in pts)
    assert (out / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "lut/lane" in r.stdout and r.stdout.count("\n") == 4


def test_build_json_is_the_report(tmp_path):
    _, cfg = small("icebreaker")
    (tmp_path / "soc.json").write_text(cfg.to_json())
    r = subprocess.run([sys.executable, "-m", "tritium.cli", "build", "--board", "icebreaker",
                        "--no-pnr", "--config", str(tmp_path / "soc.json"), "-o", str(tmp_path),
                        "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep.pop("report") == str(tmp_path / "report.json")
    assert rep == json.loads((tmp_path / "report.json").read_text())
    assert rep["config"] == cfg.to_dict() and rep["pnr"] is False


def test_no_pnr_stops_after_synthesis(tmp_path):
    _, cfg = small("ulx3s-12f")
    (tmp_path / "soc.json").write_text(cfg.to_json())
    r = subprocess.run([sys.executable, "-m", "tritium.cli", "build", "--board", "ulx3s-12f",
                        "--no-pnr", "--config", str(tmp_path / "soc.json"), "-o", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["pnr"] is False and "fmax" not in rep and "bitstream" not in rep
    assert rep["yosys_cells"]["LUT4"] > 100 and rep["yosys_cells"]["TRELLIS_FF"] > 100
    assert not (tmp_path / "tritium_ulx3s_12f.tim").exists()
    assert "synthesis only: " in r.stdout


def test_missed_timing_is_a_typed_error_after_the_report(tmp_path):
    from amaranth.build import Clock, Resource
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    from tritium.boards import TimingError

    # the iCEBreaker with its 12 MHz oscillator declared as 300 MHz: no UP5K design meets it
    fast = [Resource("clk12", 0, *r.ios, Clock(300e6), r.attrs) if r.name == "clk12" else r
            for r in ICEBreakerPlatform.resources]
    platform = type("FastICEBreaker", (ICEBreakerPlatform,), {"resources": fast})
    ice, cfg = small("icebreaker")
    board = dataclasses.replace(ice, name="icebreaker-300mhz", platform=platform)
    with pytest.raises(TimingError, match=r"timing not met: .* MHz < target 300\.0 MHz"):
        build(board, cfg, tmp_path)
    rep = json.loads((tmp_path / "report.json").read_text())
    (clk,) = rep["fmax"].values()
    # nextpnr states the target as a whole-picosecond period: 3333 ps = 300.03 MHz
    assert clk["target_mhz"] == pytest.approx(300, abs=0.1) and clk["achieved_mhz"] < 300


def test_ulx3s_85f_with_its_sdram_synthesises(tmp_path):
    # yosys only (the whole flow takes a quarter of an hour): the SoC's DRAM port on the
    # LiteDRAM core, one PLL for the memory and UART clocks, the link at 3 Mbaud
    board, cfg = small("ulx3s-85f")
    assert cfg.dram is not None and cfg.dram.part == "mt48lc16m16"
    rep = build(board, cfg, tmp_path, pnr=False)
    cells = rep["yosys_cells"]
    assert cells["EHXPLLL"] == 1 and cells["ODDRX1F"] == 1  # the SDRAM's forwarded clock
    # pins: SDRAM 39 (13 address, 2 bank, 16 DQ, 2 DQM, CS, WE, RAS, CAS, CKE, clock),
    # UART 2, the 25 MHz clock, the reset button, LED 0
    assert cells["TRELLIS_IO"] == 39 + 2 + 1 + 1 + 1
    assert (rep["baud"], rep["uart_clock_hz"], rep["uart_divisor"]) == (3_000_000, 60e6, 20)
    assert rep["dram"]["driver"] == "soc" and rep["dram"]["part"] == "mt48lc16m16"
    # the controller's own share, from its separate synthesis, lies inside the whole
    lut = cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0)
    assert 300 < rep["dram"]["controller_lut"] < lut
    v = (tmp_path / "tritium_ulx3s_85f.il").read_text()
    assert "litedram_board_mt48lc16m16" in v and "dram_arbiter" in v
