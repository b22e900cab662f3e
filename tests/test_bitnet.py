"""The BitNet golden's interface, and `tritium run matvec` tracing a BitNet on the device.

The numbers themselves are checked against an independent reference in
test_reference_bitnet.py (whose checkpoint writer, at unit scale, this file reuses); here: causality through the KV cache, batching, greedy decoding,
the two paths, bad input (batching and greedy decoding: test_hgrn.py runs them on both
goldens), and every BitLinear of a BitNet run on the simulated TMV engine.
"""

import subprocess
import sys

import numpy as np
import pytest
import torch

from test_reference_bitnet import write_bitnet
from tritium.config import SocConfig
from tritium.errors import ShapeError
from tritium.golden.bitnet import BitNetForCausalLM
from tritium.golden.checkpoint import UnknownArchitectureError, write_checkpoint

IDS = [5, 17, 63, 0, 2, 2, 40, 11]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    ckpt = tmp_path_factory.mktemp("bitnet") / "ck"
    return BitNetForCausalLM.from_pretrained(write_bitnet(ckpt, 64, 4, 2, "unit", "latent",
                                                          seed=3, vocab=64))


def test_the_kv_cache_is_causal(model):
    full = model.logits(IDS)
    assert full.shape == (len(IDS), 64) and full.dtype == torch.float32
    assert torch.equal(model.logits(IDS[:4]), full[:4])
    other = model.logits([6] + IDS[1:])
    assert torch.equal(other[0], model.logits([6])[0])
    assert not torch.allclose(other[-1], full[-1], atol=1e-3)


def test_integer_path_is_the_float_path_up_to_rounding(model):
    report = model.compare(IDS)
    assert report.tokens == len(IDS) and report.top1_agreement == 1.0
    assert 0 < report.max_abs_dlogit < 1e-3


def test_trace_holds_every_bitlinear_with_exact_accumulators(model):
    trace = model.trace_integer_matvecs(IDS[:3])
    assert [n for n, _, _ in trace] == [lin.name for lin in model.desc.bitlinears()]
    for (name, x, acc), lin in zip(trace, model.desc.bitlinears()):
        assert x.dtype == np.int8 and x.shape == (lin.in_features,)
        assert np.array_equal(acc, lin.weights.astype(np.int64) @ x.astype(np.int64))


def test_a_bare_weight_file_does_not_say_the_head_count(model):
    from tritium.golden.checkpoint import UnsupportedConfigError
    with pytest.raises(UnsupportedConfigError, match="num_attention_heads"):
        BitNetForCausalLM.from_pretrained(model.desc.source / "model.safetensors")


def test_bad_token_ids_and_other_architectures(model, tmp_path):
    with pytest.raises(ShapeError):
        model.logits([64])
    write_checkpoint(tmp_path / "h", "hgrn-bit", hidden=16, layers=1, vocab=16)
    with pytest.raises(UnknownArchitectureError, match="BitNet"):
        BitNetForCausalLM.from_pretrained(tmp_path / "h")


@pytest.mark.verilator
@pytest.mark.parametrize("arch", ["bitnet", "bitnet-packed"])
def test_cli_run_matvec_checks_every_bitnet_layer_on_the_device(tmp_path, arch):
    from tritium.sim.serve import SimulatedDevice

    ckpt = write_checkpoint(tmp_path / arch, arch, hidden=64, layers=1, vocab=64, seed=2)
    run = lambda *a: subprocess.run([sys.executable, "-m", "tritium.cli", *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=600)
    with SimulatedDevice(SocConfig()) as sim:
        r = run("load", str(ckpt), "--device", sim.url, "--quiet")
        assert r.returncode == 0 and "matches" in r.stdout, r.stderr
        r = run("run", "matvec", str(ckpt), "--device", sim.url, "--prompt-ids", "3,9,4")
        assert r.returncode == 0, r.stdout + r.stderr
        rows = [line for line in r.stdout.splitlines() if "model.layers.0." in line]
        assert len(rows) == 7 and all("yes" in line for line in rows), r.stdout
        r = run("run", "matvec", str(ckpt), "--device", sim.url, "--layer",
                "model.layers.0.mlp.down_proj")
        assert r.returncode == 0 and r.stdout.count("yes") == 1, r.stdout + r.stderr
