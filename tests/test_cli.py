"""The `tritium` command: help everywhere, Verilog output, one-line errors."""

import json
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


# ---- what the CLI imports --------------------------------------------------------------------

def _imported(stderr: str) -> set[str]:
    """Module names from a ``python -X importtime`` report."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def test_estimate_imports_neither_torch_nor_cocotb_nor_numpy():
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "tritium.cli", "estimate",
                        "--model", "mmfreelm-370m", "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(r.stdout)
    # the 370M shape (24 layers of 6 BitLinears + lm_head) reached the model
    assert rep["model"] == "mmfreelm-370m" and rep["tokens_per_s"] > 0
    mods = _imported(r.stderr)
    assert {"tritium.sim.model", "tritium.golden.shapes"} <= mods   # the report is real
    heavy = sorted(m for m in mods if m.split(".")[0] in (
        "torch", "cocotb", "cocotb_tools", "safetensors", "amaranth", "numpy"))
    assert not heavy, heavy


# ---- --json on the commands that print tables -------------------------------------------------

@pytest.mark.verilator
def test_sim_ternary_dot_json():
    # the lanes16 config of tests/test_ternary_dot_verilator.py: its build is reused
    r = run("sim", "ternary-dot", "--lanes", "16", "--max-length", "256", "--vectors", "5",
            "--show", "2", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)     # nothing but the JSON document on stdout
    assert rep["ok"] is True and rep["config"]["lanes"] == 16
    assert len(rep["rows"]) == 5   # every row, not only the --show ones
    assert all(row["match"] and row["rtl"] == row["golden"] for row in rep["rows"])
    assert [row["index"] for row in rep["rows"]] == list(range(5))


@pytest.mark.verilator
def test_sim_tmv_json():
    r = run("sim", "tmv", "--simd", "8", "--pe", "3", "--max-in", "64", "--max-out", "32",
            "--weight-depth", "256", "--jobs", "3", "--max-shape", "40", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["ok"] is True and len(rep["rows"]) == 3
    assert {row["fmt"] for row in rep["rows"]} == {"t2", "t3"}
    assert all(row["busy_cycles"] == row["formula_cycles"] for row in rep["rows"])


def test_estimate_json_and_table_say_the_same():
    r = run("estimate", "--model", "mmfreelm-370m", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    table = run("estimate", "--model", "mmfreelm-370m")
    assert table.returncode == 0 and "tokens_per_s" in table.stdout
    assert f"{rep['tokens_per_s']:.4g}" in table.stdout


# ---- sim mfc ----------------------------------------------------------------------------------

@pytest.mark.verilator
def test_sim_mfc_runs_tokens_equal_to_the_golden_core(tmp_path):
    from tritium.engines.mfc.config import MfcConfig
    from tritium.golden.checkpoint import write_checkpoint
    from tritium.engines.mfc.compile import GoldenCore, compile_model

    r = run("sim", "mfc", "--tokens", "2", "--seed", "3", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["ok"] is True and rep["config"] == MfcConfig().to_dict()
    # the same model through the compiler's own golden, token for token
    ck = write_checkpoint(tmp_path / "m", "hgrn-bit", hidden=64, layers=1, vocab=256, seed=3)
    compiled = compile_model(ck, MfcConfig())
    core = GoldenCore(compiled)
    for row in rep["rows"]:
        assert row["argmax"] == core.step(row["token"])[0], row
        assert row["cycles"] == compiled.estimate()["cycles"] == row["model_cycles"]
        assert row["error"] == 0
    assert rep["rows"][1]["token"] == rep["rows"][0]["argmax"]


@pytest.mark.verilator
def test_sim_mfc_at_16_lanes_runs_the_golden_cores_token_in_fewer_cycles(tmp_path):
    """The same model on the core with a 16-lane vector unit (one token: the 16-lane core
    elaborates for ~20 s): the token of the compiler's fixed-point golden at 16 lanes,
    the RTL's cycles equal to the cycle model's, and fewer of them than at one lane (the
    same program but for the lanes)."""
    import dataclasses

    from tritium.engines.mfc.config import MfcConfig
    from tritium.golden.checkpoint import write_checkpoint
    from tritium.engines.mfc.compile import GoldenCore, compile_model

    r = run("sim", "mfc", "--tokens", "1", "--seed", "3", "--vpu-lanes", "16", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    cfg = dataclasses.replace(MfcConfig(), vpu_lanes=16)
    assert rep["ok"] is True and rep["config"] == cfg.to_dict()
    ck = write_checkpoint(tmp_path / "m", "hgrn-bit", hidden=64, layers=1, vocab=256, seed=3)
    compiled = compile_model(ck, cfg)
    core = GoldenCore(compiled)
    one_lane = compile_model(ck, MfcConfig()).estimate()["cycles"]
    for row in rep["rows"]:
        assert row["argmax"] == core.step(row["token"])[0], row
        assert row["cycles"] == compiled.estimate()["cycles"] == row["model_cycles"]
        assert row["cycles"] < one_lane and row["error"] == 0


@pytest.mark.parametrize("args,msg", [
    (["--hidden", "6"], "hidden must be a multiple of 4"),
    (["--vmem-depth", "64"], "raise mfc.vmem_depth"),
    (["--tokens", "0"], "give an integer from 1 to"),
])
def test_sim_mfc_refuses_what_cannot_run_in_one_line(args, msg):
    r = run("sim", "mfc", *args)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and msg in lines[0], r.stderr


def test_engine_verbs_come_from_the_engines_commands_hooks():
    # the generic verbs ask the registry: the demo is each engine's part in registry order,
    # `run matvec` and `inspect --format` are the TMV's, `generate` the token core's
    from tritium.cli import parse
    from tritium.engines.mfc.commands import cmd_generate, demo_generation
    from tritium.engines.tmv.commands import cmd_run_matvec, demo_matvecs

    _, args = parse(["demo", "--min-agreement", "0.25"])
    assert args.demo_parts == [demo_matvecs, demo_generation] and args.min_agreement == 0.25
    assert parse(["run", "matvec", "ckpt", "--device", "x"])[1].func is cmd_run_matvec
    assert parse(["generate", "ckpt", "--device", "x"])[1].func is cmd_generate
    assert parse(["inspect", "ckpt", "--format", "t3"])[1].format == "t3"


def test_a_reader_that_goes_away_ends_the_command_quietly():
    """`tritium ... --json | head`: the pipe's reader closes; the command stops with the
    shell's 128 + SIGPIPE, no traceback (the subprocess's stderr is the evidence)."""
    code = ("import os, sys\n"
            "r, w = os.pipe(); os.close(r)\n"
            "os.dup2(w, 1); sys.stdout = open(1, 'w', buffering=1, closefd=False)\n"
            "from tritium import cli\n"
            "sys.exit(cli.main(['estimate', '--model', 'mmfreelm-370m', '--json']))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 141, r.stderr
    assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr


def test_a_broken_pipe_other_than_stdout_is_not_hidden(monkeypatch):
    """Only stdout's reader going away ends a command quietly: a BrokenPipeError from
    anything else (a subprocess's stdin, a socket) is a real failure and propagates."""
    import argparse

    from tritium import cli

    def fails(args):
        raise BrokenPipeError("a subprocess's stdin")

    monkeypatch.setattr(cli, "parse", lambda argv: (None, argparse.Namespace(
        func=fails, command="estimate")))
    with pytest.raises(BrokenPipeError):
        cli.main([])
