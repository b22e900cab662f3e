"""`tritium serve` and `tritium build` take the engines' config options (``--tmv-simd 8``),
generated from the engine configs as ``verilog``/``sim`` options are."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tritium.boards import get_board
from tritium.cli import build_parser
from tritium.cliargs import engine_options_applied
from tritium.config import served_soc
from tritium.engines.tmv.config import TernaryConfig
from tritium.errors import ConfigError
from tritium.host import Device


def cli(*args):
    return subprocess.run([sys.executable, "-m", "tritium.cli", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.verilator
def test_serve_builds_the_engine_the_options_describe():
    p = subprocess.Popen([sys.executable, "-m", "tritium.cli", "serve", "--engine", "tmv",
                          "--tmv-simd", "8", "--tmv-pe", "2"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True,
                         env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        url = p.stdout.readline().strip()
        assert url.startswith("socket://"), url
        with Device(url, timeout=5.0) as dev:
            # the device's own INFO, built into the hardware from its config
            assert (dev.cfg.tmv.simd, dev.cfg.tmv.pe) == (8, 2)
            default = served_soc("tmv").tmv
            assert dev.cfg.tmv.max_in == default.max_in and default.simd != 8
    finally:
        p.terminate()
        p.wait(30)


def test_build_options_change_the_boards_engine_and_keep_the_rest():
    args = build_parser().parse_args(["build", "--board", "ulx3s-85f", "--engine", "spgemm",
                                      "--spgemm-hash-bits", "5", "--spgemm-max-nnz", "2048"])
    board = get_board("ulx3s-85f")
    base = board.default_config("spgemm")
    cfg = engine_options_applied(args, base)
    spg = cfg.engines[0]
    assert (spg.hash_bits, spg.max_nnz) == (5, 2048)
    assert spg.pes == base.engines[0].pes and cfg.clock_hz == base.clock_hz
    assert cfg.max_payload == base.max_payload


def test_nested_fields_of_the_token_core_have_options():
    args = build_parser().parse_args(["serve", "--engine", "mfc", "--mfc-tmv-simd", "8",
                                      "--mfc-frac-bits", "14"])
    cfg = engine_options_applied(args, served_soc("mfc"))
    core = cfg.engines[0]
    assert (core.tmv.simd, core.frac_bits) == (8, 14)
    assert isinstance(core.tmv, TernaryConfig)


def test_no_option_leaves_the_soc_as_it_is():
    args = build_parser().parse_args(["serve", "--engine", "spgemm"])
    soc = served_soc("spgemm")
    assert engine_options_applied(args, soc) is soc


def test_an_option_for_an_engine_the_soc_lacks_is_refused():
    args = build_parser().parse_args(["serve", "--engine", "spgemm", "--tmv-simd", "8"])
    with pytest.raises(ConfigError, match="--tmv-... options change the tmv engine.*holds "
                                          "spgemm"):
        engine_options_applied(args, served_soc("spgemm"))


@pytest.mark.parametrize("args,msg", [
    (["serve", "--engine", "spgemm", "--tmv-simd", "8"], "choose --engine tmv"),
    (["serve", "--engine", "tmv", "--tmv-simd", "0"], "simd=0 is out of range"),
    (["build", "--board", "ulx3s-85f", "--engine", "spgemm", "--spgemm-pes", "99",
      "--verilog-only", "-o", "/tmp/unused-build"], "pes=99 is out of range"),
])
def test_bad_options_are_one_line_errors(args, msg):
    r = cli(*args)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
