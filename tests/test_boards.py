"""Board registry, board tops and the report parsers (fast: no place and route).

Every board's top elaborates and emits Verilog with its constraints; the parsers are
checked on real yosys/nextpnr output of an iCEBreaker build kept in tests/data/boards.
"""

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tritium.boards import BOARDS, BoardError, UnknownBoardError, get_board
from tritium.boards import report as R
from tritium.boards.flow import board_top, build, design_name, write_verilog
from tritium.engines.tmv.config import TernaryConfig

DATA = Path(__file__).parent / "data" / "boards"

#: UART pins of each board (rx, tx) as the amaranth-boards resources place them
UART_PINS = {"ulx3s-85f": ("M1", "L4"), "ulx3s-12f": ("M1", "L4"),
             "icebreaker": ("6", "9"), "arty-a7-35": ("A9", "D10")}


def cli(*args):
    return subprocess.run([sys.executable, "-m", "tritium.cli", *args], capture_output=True,
                          text=True)


@pytest.mark.parametrize("name", list(BOARDS))
def test_board_emits_verilog_and_constraints(name, tmp_path):
    board = get_board(name)
    cfg = board.default_config()
    top = board_top(board, cfg)
    top._MustUse__silence = True  # only its UART divisor is looked at
    assert cfg.clock_hz == board.clock_hz and top.uart_divisor >= 4
    files = {p.suffix: p for p in write_verilog(board, None, tmp_path)}
    top = design_name(board)
    v = files[".v"].read_text()
    assert f"module {top}(" in v
    for sub in ("soc", "soc.tmv", "soc.deframer", "uart_rx", "uart_tx"):
        assert f"module \\{top}.{sub} " in v, sub
    if board.dram is not None:
        # the SoC's DRAM port on LiteDRAM's controller; the UART on its own PLL clock
        for sub in ("soc.dram_arbiter", "soc.dram_link", "dram", "pll", "rx_cdc", "tx_cdc"):
            assert f"module \\{top}.{sub} " in v, sub
        assert "litedram_board_mt48lc16m16 litedram" in v and "EHXPLLL" in v
        assert f"module \\{top}.dram_tester " not in v
    (cons,) = [p for s, p in files.items() if s != ".v"]
    lines = cons.read_text().splitlines()
    for port, pin in zip(("rx", "tx"), UART_PINS[name]):
        assert any(f"uart_0__{port}__io" in ln and re.search(rf"\b{pin}\b", ln)
                   for ln in lines), (port, pin, cons.name)


def test_uart_divisor_follows_the_board_clock():
    ice, ulx = get_board("icebreaker"), get_board("ulx3s-85f")
    assert (ice.clock_hz, ulx.clock_hz) == (12_000_000, 25_000_000)
    # a generic soc.json at another clock is moved onto the board's clock
    cfg = ice.config_for(dataclasses.replace(ulx.default_config(), dram=None))
    assert cfg.clock_hz == 12_000_000
    # the iCEBreaker's UART runs on the SoC clock: the divisor the built top uses
    assert board_top(ice, cfg).uart_divisor == round(12e6 / cfg.baud)


@pytest.mark.parametrize("mode, present, absent", [
    ("tester", ("dram_tester", "dram", "pll", "rx_cdc"), ("soc.dram_arbiter",)),
    ("none", ("pll", "rx_cdc"), ("dram", "dram_tester", "soc.dram_arbiter"))])
def test_ulx3s_85f_builds_without_the_socs_dram(mode, present, absent, tmp_path):
    board = get_board("ulx3s-85f")
    small = board.default_config().replace_engine(TernaryConfig(
        simd=4, pe=1, max_in=64, max_out=64, weight_depth=64, has_t3=0))
    (tmp_path / "soc.json").write_text(small.to_json())
    r = cli("build", "--board", "ulx3s-85f", "--config", str(tmp_path / "soc.json"),
            "--dram", mode, "--verilog-only", "-o", str(tmp_path))
    assert r.returncode == 0, r.stderr
    v = (tmp_path / "tritium_ulx3s_85f.v").read_text()
    top = design_name(board)
    for sub in present:
        assert f"module \\{top}.{sub} " in v, sub
    for sub in absent:
        assert f"module \\{top}.{sub} " not in v, sub
    assert ("litedram_board_mt48lc16m16 litedram" in v) == (mode == "tester")


def test_dram_option_on_a_board_without_sdram_is_one_line(tmp_path):
    r = cli("build", "--board", "icebreaker", "--dram", "soc", "--verilog-only",
            "-o", str(tmp_path))
    assert r.returncode != 0 and r.stderr.count("\n") == 1, r.stderr
    assert "icebreaker has no SDRAM; drop --dram" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_unknown_board_is_a_typed_error():
    with pytest.raises(UnknownBoardError, match="known boards: ulx3s-85f"):
        get_board("de10-nano")
    r = cli("build", "--board", "de10-nano", "--verilog-only")
    assert r.returncode != 0 and r.stderr.count("\n") == 1
    assert "unknown board 'de10-nano'" in r.stderr and "Traceback" not in r.stderr


def test_arty_has_no_open_bitstream_flow(tmp_path):
    with pytest.raises(BoardError, match="needs Vivado.*--verilog-only"):
        build(get_board("arty-a7-35"), out=tmp_path)


def test_cli_verilog_only(tmp_path):
    r = cli("build", "--board", "icebreaker", "--verilog-only", "-o", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "tritium_icebreaker.v").is_file()
    assert (tmp_path / "tritium_icebreaker.pcf").is_file()


def test_cli_verilog_only_json(tmp_path):
    r = cli("build", "--board", "icebreaker", "--verilog-only", "-o", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["board"] == "icebreaker"
    names = {Path(f).name for f in rep["files"]}
    assert {"tritium_icebreaker.v", "tritium_icebreaker.pcf"} <= names
    assert all(Path(f).is_file() and Path(f).parent == tmp_path for f in rep["files"])


def test_cli_build_rejects_a_non_soc_config(tmp_path):
    cfg = tmp_path / "tmv.json"
    cfg.write_text(get_board("icebreaker").default_config().tmv.to_json())
    r = cli("build", "--board", "icebreaker", "--config", str(cfg), "--verilog-only")
    assert r.returncode != 0 and "needs a 'soc' config" in r.stderr
    assert r.stderr.count("\n") == 1


def test_program_errors_are_one_line(tmp_path):
    r = cli("program", "--board", "icebreaker", str(tmp_path / "missing.bin"))
    assert r.returncode != 0 and "does not exist" in r.stderr and r.stderr.count("\n") == 1
    bit = tmp_path / "top.bin"
    bit.write_bytes(b"\xff" * 64)
    # no board is attached to the test machine: openFPGALoader fails, one line, no traceback
    r = cli("program", "--board", "icebreaker", str(bit))
    assert r.returncode != 0 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("tritium program: error: ")


# ---- report parsing on real tool output -------------------------------------------------

def test_nextpnr_log_utilisation_matches_its_json_report():
    util = R.nextpnr_utilisation((DATA / "icebreaker_nextpnr.log").read_text())
    rep = json.loads((DATA / "icebreaker_report.json").read_text())
    assert util["ICESTORM_LC"] == {"used": 4335, "available": 5280}
    for cell in ("ICESTORM_LC", "ICESTORM_RAM", "ICESTORM_DSP", "SB_IO"):
        assert util[cell] == rep["utilization"][cell], cell
    assert R.over_capacity(util) == {}


def test_yosys_stat_and_summary():
    cells = R.yosys_cells((DATA / "icebreaker_yosys_stat.txt").read_text())
    assert cells["SB_LUT4"] == 3108 and cells["SB_RAM40_4K"] == 19 and cells["SB_CARRY"] == 1000
    s = R.summarize(json.loads((DATA / "icebreaker_report.json").read_text()), cells)
    assert s["resources"]["lut"] == {"used": 4335, "available": 5280}
    assert s["resources"]["bram"] == {"used": 19, "available": 30}
    assert s["resources"]["ff"] == {"used": 278 + 185 + 1152 + 2 + 350, "available": 5280}
    (clk,) = s["fmax"].values()
    assert clk["target_mhz"] == 12.0 and clk["achieved_mhz"] > 12.0


def test_older_yosys_stat_layout():
    text = "   Number of cells:                 12\n     LUT4                    10\n" \
           "     TRELLIS_FF               2\n"
    assert R.yosys_cells(text) == {"LUT4": 10, "TRELLIS_FF": 2}


def test_point_config_changes_only_the_engine_width():
    from tritium.boards.sweep import point_config

    b = get_board("ulx3s-85f")
    cfg = point_config(b, 64, 1)
    base = b.default_config()
    assert (cfg.tmv.simd, cfg.tmv.pe) == (64, 1)
    assert cfg.replace_engine(base.tmv) == base


def test_does_not_fit_numbers_from_a_failed_nextpnr_log():
    # a real nextpnr-ice40 log: the iCEBreaker SoC with weight_depth=16384 (81 block RAMs)
    util = R.nextpnr_utilisation((DATA / "icebreaker_too_big_nextpnr.log").read_text())
    assert R.over_capacity(util) == {"ICESTORM_RAM": {"used": 81, "available": 30}}
    assert util["ICESTORM_LC"]["used"] <= util["ICESTORM_LC"]["available"]


@pytest.mark.parametrize("simd, message", [("16,x", "comma-separated integers"),
                                           ("12", "tmv.simd=12 must be a power of two")])
def test_sweep_rejects_bad_widths_in_one_line(simd, message, tmp_path):
    r = cli("sweep-fpga", "--board", "icebreaker", "--simd", simd, "-o", str(tmp_path))
    assert r.returncode != 0 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
