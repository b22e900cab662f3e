"""The token core end to end: a generated HGRN-bit checkpoint compiled, loaded over the
link into the served (Verilator) SoC, tokens generated on it and checked against the
fixed-point golden token for token and against the cycle model cycle for cycle."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tritium.config import SocConfig
from tritium.engines.mfc.config import MfcConfig
from tritium.golden.hgrn import HGRNBitForCausalLM
from tritium.engines.mfc.golden import ProgramError, estimate_cycles
from tritium.golden.checkpoint import load_checkpoint, write_checkpoint
from tritium.engines.mfc.compile import (CompileError, GoldenCore, agreement, compile_model,
                                  shape_program)
from tritium.host.device import Device, DeviceConfigError, DeviceError

CFG = SocConfig(engines=(MfcConfig(),))   # `tritium serve --engine mfc`: one build for all tests
PROMPT = [1, 2, 3]


@pytest.fixture(scope="module")
def ckpt(h64_checkpoint):
    return h64_checkpoint(0)


@pytest.fixture(scope="module")
def compiled(ckpt):
    return compile_model(ckpt, CFG.engines[0])


# ---- the compiler and the fixed-point golden (no simulator) ------------------------------

def test_golden_core_agrees_with_the_float_reference(ckpt, compiled):
    # an upstream-initialised model (std 0.02): the float16 noise floor, the acceptance
    # against it and the margins are in tests/test_mfc_fidelity.py and bench/results/mfc.json
    ids = np.random.default_rng(0).integers(0, 256, 128)
    ag = agreement(compiled, HGRNBitForCausalLM.from_pretrained(ckpt), ids)
    assert ag.top1_agreement >= 0.9, ag
    assert ag.rel_max_dlogit < 0.1 and ag.zero_projections == 0, ag


def test_program_is_race_free_and_its_estimate_matches_the_shape_program(compiled):
    # the golden raises ProgramError on any act/result-bank race; a token runs clean
    GoldenCore(compiled).step(5)
    assert compiled.estimate() == estimate_cycles(CFG.engines[0], shape_program(CFG.engines[0], 64, 256, 256, 2))
    est = compiled.estimate()
    assert est["cycles"] == est["issue"] + est["vpu_busy"] + est["scalar_busy"] + est["wait_tmv"]


def test_compile_refuses_what_the_core_cannot_run(tmp_path, ckpt):
    bitnet = write_checkpoint(tmp_path / "bn", "bitnet", hidden=64, layers=1, vocab=64)
    with pytest.raises(CompileError, match="HGRN-bit"):
        compile_model(bitnet)
    with pytest.raises(CompileError, match="vmem_depth"):
        compile_model(ckpt, MfcConfig(vmem_depth=1024))
    with pytest.raises(CompileError, match="imem_depth"):
        compile_model(ckpt, MfcConfig(imem_depth=64))
    desc = load_checkpoint(ckpt)
    desc.config["expand_ratio"] = 2
    with pytest.raises(CompileError, match="expand_ratio"):
        compile_model(desc)


def test_a_racing_program_is_caught_by_the_golden(compiled):
    from tritium.engines.mfc.golden import Machine, Op, encode
    m = Machine(CFG.engines[0])
    m.load_program([encode(Op.SETVL, a=16), encode(Op.TMV, d=4, a=16, b=0, c=0),
                    encode(Op.VQUANT, d=0, a=0, c=0), encode(Op.HALT)])
    with pytest.raises(ProgramError, match="act bank 0"):
        m.run()


# ---- on the simulated device ---------------------------------------------------------------

@pytest.fixture(scope="module")
def device(ckpt, compiled):
    from tritium.sim.serve import SimulatedDevice
    with SimulatedDevice(CFG) as sim:
        with Device(sim.url) as dev:
            dev.load_core(compiled)
            yield dev


@pytest.mark.verilator
def test_16_tokens_identical_to_the_golden_and_cycles_equal_the_model(device, compiled):
    tokens, runs = device.generate(PROMPT, 16)
    assert tokens == GoldenCore(compiled).generate(PROMPT, 16)
    assert len(tokens) == len(PROMPT) + 16
    est = compiled.estimate()
    for run in runs:   # the program is straight-line: every token takes the same cycles
        assert {k: run.counters[k] for k in est} == est
    # the state stays on the device: a second sequence from a fresh state repeats the first
    again, _ = device.generate(PROMPT, 4)
    assert again == tokens[:len(PROMPT) + 4]


@pytest.mark.verilator
def test_device_logits_are_the_golden_logits(device, compiled):
    golden = GoldenCore(compiled)
    device.reset_state()
    for t in (7, 9):
        got = device.step(t)
        tok, logits = golden.step(t)
        assert got.token == tok
        assert np.array_equal(device.logits(), logits)


@pytest.mark.verilator
def test_wrong_program_or_engine_is_refused(device, ckpt):
    with pytest.raises(DeviceConfigError, match="another core configuration"):
        device.load_core(compile_model(ckpt, MfcConfig(vmem_depth=8192)))
    with pytest.raises(DeviceError, match="prompt ids"):
        device.generate([999], 1)
    with pytest.raises(DeviceError, match="prompt ids"):
        device.generate([], 1)


@pytest.mark.verilator
def test_cli_serve_and_generate(ckpt, compiled):
    env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200")  # rich wraps at 80 otherwise
    serve = subprocess.Popen([sys.executable, "-m", "tritium.cli", "serve", "--engine", "mfc"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                             env=env)
    try:
        url = serve.stdout.readline().strip()
        assert url.startswith("socket://"), url
        r = subprocess.run([sys.executable, "-m", "tritium.cli", "generate", str(ckpt),
                            "--device", url, "--prompt-ids", "1,2,3", "-n", "16", "--quiet"],
                           capture_output=True, text=True, timeout=600, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        golden = GoldenCore(compiled).generate(PROMPT, 16)
        assert "tokens: " + ",".join(map(str, golden[3:])) in r.stdout
        assert "identical to the fixed-point golden" in r.stdout
        cycles = compiled.estimate()["cycles"]
        assert re.search(rf"{cycles:,} cycles/token; model {cycles:,}, \+0\.00%", r.stdout), \
            r.stdout
        assert "top-1 agreement" in r.stdout
        r = subprocess.run([sys.executable, "-m", "tritium.cli", "generate", str(ckpt),
                            "--device", url, "--prompt-ids", "1,2,3", "-n", "4", "--json"],
                           capture_output=True, text=True, timeout=600, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        rep = json.loads(r.stdout)   # stdout holds the JSON document only
        assert rep["tokens"] == golden[3:7] and rep["identical"] is True
        assert rep["cycles"]["cycles"] == {"device": cycles, "model": cycles}
        assert 0 <= rep["agreement"]["top1_agreement"] <= 1
    finally:
        serve.terminate()
        serve.wait(timeout=30)


@pytest.mark.verilator
def test_cli_generate_fails_in_one_line_when_the_core_collapses(ckpt, tmp_path):
    """A deliberately bad format (quant_shift=8: every projection all zero) served for
    real: the device equals its fixed-point golden, and generate still exits 1 with one
    line, because the teacher-forced agreement with the float reference collapses."""
    from tritium.sim.serve import SimulatedDevice
    bad = SocConfig(engines=(MfcConfig(quant_shift=8),))
    with SimulatedDevice(bad) as sim:
        r = subprocess.run([sys.executable, "-m", "tritium.cli", "generate", str(ckpt),
                            "--device", sim.url, "-n", "16", "--quiet"],
                           capture_output=True, text=True, timeout=600)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "identical to the fixed-point golden" in r.stdout
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "min-agreement" in err[0] and "Traceback" not in r.stderr, err


@pytest.mark.verilator
def test_cli_generate_on_a_bare_tmv_device_is_one_line(ckpt):
    from tritium.sim.serve import SimulatedDevice
    with SimulatedDevice(SocConfig()) as sim:
        r = subprocess.run([sys.executable, "-m", "tritium.cli", "generate", str(ckpt),
                            "--device", sim.url], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert "has no mfc engine" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
