"""The `tritium` command: help everywhere, Verilog output, one-line errors."""

import subprocess
import sys

import pytest

from tritium.cli import build_parser


def run(*args):
    return subprocess.run([sys.executable, "-m", "tritium.cli", *args], capture_output=True,
                          text=True)


def _all_commands(parser, prefix=()):
    import argparse
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + (name,)
                yield from _all_commands(sub, prefix + (name,))


def test_help_on_every_command():
    cmds = list(_all_commands(build_parser()))
    assert ("verilog", "ternary-dot") in cmds and ("demo",) in cmds
    for cmd in [()] + cmds:
        r = run(*cmd, "--help")
        assert r.returncode == 0 and "usage:" in r.stdout, (cmd, r.stderr)


def test_verilog_ternary_dot_to_file(tmp_path):
    out = tmp_path / "td.v"
    r = run("verilog", "ternary-dot", "--lanes", "16", "-o", str(out))
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "module ternary_dot(" in text
    for port in ("i__valid", "i__ready", "i__payload", "o__valid", "o__ready", "o__payload",
                 "error", "clk", "rst"):
        assert port in text


def test_verilog_config_file_and_override(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"kind": "ternary-dot", "lanes": 4, "max_length": 100}')
    r = run("verilog", "ternary-dot", "--config", str(cfg), "--lanes", "8")
    assert r.returncode == 0 and "i__payload" in r.stdout
    # 8 lanes x (2-bit code + 8-bit activation) + last
    assert "input [80:0] i__payload;" in r.stdout


@pytest.mark.parametrize("args,msg", [
    (["verilog", "ternary-dot", "--lanes", "0"], "lanes=0 is out of range"),
    (["verilog", "ternary-dot", "-o", "/nonexistent-dir/x.v"], "does not exist"),
    (["verilog", "ternary-dot", "--config", "/nonexistent.json"], "does not exist"),
    (["sim", "ternary-dot", "--stall", "1.5"], "probability"),
])
def test_user_errors_are_one_line_without_traceback(args, msg, tmp_path):
    r = run(*args)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and msg in lines[0], r.stderr


def test_bad_config_json_is_one_line(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text('{"kind": "ternary-dot", "lanes": ')
    r = run("verilog", "ternary-dot", "--config", str(cfg))
    assert r.returncode != 0 and "not valid JSON" in r.stderr and "Traceback" not in r.stderr


def test_failed_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "td.v"
    target.write_text("previous content")
    r = run("verilog", "ternary-dot", "--lanes", "0", "-o", str(target))
    assert r.returncode != 0
    assert target.read_text() == "previous content"
    assert [p.name for p in tmp_path.iterdir()] == ["td.v"]


@pytest.mark.verilator
def test_sim_tmv_regression_table():
    # the BRAM config of tests/test_ternary_matvec_verilator.py: its build is reused
    r = run("sim", "tmv", "--simd", "8", "--pe", "3", "--max-in", "64", "--max-out", "32",
            "--weight-depth", "256", "--jobs", "2", "--max-shape", "40")
    assert r.returncode == 0, r.stderr
    assert "every result equals the golden model" in r.stdout and "t3" in r.stdout


@pytest.mark.verilator
def test_sim_spgemm_reports_merges_per_cycle():
    # the config of tests/test_spgemm_verilator.py (CFG): its build is reused
    r = run("sim", "spgemm", "--pes", "2", "--hash-bits", "4", "--max-dim", "300",
            "--max-nnz", "2048", "--matrix", "random", "--semiring", "max-plus")
    assert r.returncode == 0, r.stderr
    assert "merges/cycle" in r.stdout and "equals the golden" in r.stdout


def test_verilog_tmv_alias(tmp_path):
    out = tmp_path / "tmv.v"
    r = run("verilog", "tmv", "--simd", "4", "--pe", "2", "--max-in", "16", "--max-out", "8",
            "--weight-depth", "16", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "module ternary_matvec(" in out.read_text()


def test_verilog_mfc_nested_tmv_options(tmp_path):
    out = tmp_path / "mfc.v"
    r = run("verilog", "mfc", "--help")
    assert "--tmv-simd" in r.stdout and "MISSING" not in r.stdout
    r = run("verilog", "mfc", "--tmv-simd", "4", "--tmv-pe", "2", "--tmv-max-in", "64",
            "--tmv-max-out", "64", "--tmv-weight-depth", "64", "--vmem-depth", "256",
            "-o", str(out))
    assert r.returncode == 0, r.stderr
    # the other nested fields keep MfcConfig's defaults (t2 only), not TernaryConfig's
    said = r.stdout + r.stderr
    assert "'simd': 4" in said and "'has_t3': 0" in said, said
    assert "module mfc(" in out.read_text()
