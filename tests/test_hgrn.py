"""The HGRN-bit golden's interface: state, batching, decoding, both paths, float16, bad input.

The numbers themselves are checked against an independent reference in
test_reference_hgrn.py, whose checkpoint writer (unit scale here) this file reuses, so the
tolerances below do not depend on write_checkpoint's initialisation.
"""

import json

import pytest
import torch

from test_reference_bitnet import write_bitnet
from test_reference_hgrn import write_hgrn
from tritium.errors import ShapeError
from tritium.golden.hgrn import HGRNBitForCausalLM
from tritium.golden.checkpoint import UnknownArchitectureError, write_checkpoint


@pytest.fixture(scope="module")
def hgrn_dir(tmp_path_factory):
    return write_hgrn(tmp_path_factory.mktemp("hgrn") / "ck", 32, 1, "unit", seed=4, vocab=64,
                      layers=3)


@pytest.fixture(scope="module")
def model(hgrn_dir):
    return HGRNBitForCausalLM.from_pretrained(hgrn_dir)


IDS = [5, 17, 63, 0, 2, 2, 40, 11, 9, 30, 31, 7]


def test_the_recurrence_carries_state(model):
    full = model.logits(IDS)
    # a prefix sees the same history: causal, state carried token by token
    assert torch.equal(model.logits(IDS[:5]), full[:5])
    # a different earlier token changes later logits only through the state
    other = model.logits([6] + IDS[1:])
    assert not torch.allclose(other[-1], full[-1], atol=1e-3)


@pytest.fixture(scope="module", params=["hgrn-bit", "bitnet"])
def any_model(request, model, tmp_path_factory):
    """Both float goldens, for the sequence API they share (vocab 64 each)."""
    if request.param == "hgrn-bit":
        return model
    from tritium.golden.bitnet import BitNetForCausalLM
    return BitNetForCausalLM.from_pretrained(write_bitnet(
        tmp_path_factory.mktemp("bitnet") / "ck", 64, 4, 2, "unit", "latent", seed=3, vocab=64))


def test_batch_equals_single_sequences(any_model):
    a, b = IDS[:6], IDS[6:]
    batch = any_model.logits([a, b])
    assert batch.shape == (2, 6, 64)
    assert torch.allclose(batch[0], any_model.logits(a), atol=1e-5)
    assert torch.allclose(batch[1], any_model.logits(b), atol=1e-5)


def test_greedy_generation_follows_the_argmax(any_model):
    out = any_model.generate(IDS[:3], 6)
    assert out.shape == (9,) and out[:3].tolist() == IDS[:3]
    logits = any_model.logits(out)
    assert out[3:].tolist() == logits[2:-1].argmax(-1).tolist()


def test_integer_path_is_the_float_path_up_to_rounding(model):
    report = model.compare(IDS)
    assert report.tokens == len(IDS)
    assert report.max_abs_dlogit < 1e-4
    assert report.top1_agreement == 1.0
    exact = model.logits(IDS, integer=True)
    assert not torch.equal(exact, model.logits(IDS))  # a different computation, not a copy
    assert model.generate(IDS[:3], 4, integer=True).tolist() == \
        model.generate(IDS[:3], 4).tolist()


def test_bad_token_ids(model):
    with pytest.raises(ShapeError):
        model.logits([64])
    with pytest.raises(ShapeError):
        model.logits([])


def test_refuses_other_architectures(tmp_path):
    write_checkpoint(tmp_path / "b", "bitnet", hidden=16, layers=1, vocab=16)
    with pytest.raises(UnknownArchitectureError, match="HGRN"):
        HGRNBitForCausalLM.from_pretrained(tmp_path / "b")


def test_float16_runs_the_whole_model_in_half_precision(hgrn_dir, model):
    half = HGRNBitForCausalLM.from_pretrained(hgrn_dir, dtype=torch.float16)
    assert half.embeddings.dtype == torch.float16
    assert half.lm_head.w_float.dtype == torch.float16
    full, low = model.logits(IDS), half.logits(IDS)
    assert low.dtype == torch.float32 and low.shape == full.shape
    rel = float((low - full).abs().max() / full.abs().max())
    # half precision moves the logits, but stays the same model
    assert 0 < rel < 0.2
    assert (low.argmax(-1) == full.argmax(-1)).float().mean() >= 0.75
    # the default is float32 and unchanged by the option's existence
    assert model.dtype == torch.float32
    assert torch.equal(HGRNBitForCausalLM.from_pretrained(hgrn_dir).logits(IDS), full)


def test_float16_refuses_the_integer_path_and_other_dtypes(hgrn_dir, model):
    from tritium.errors import ConfigError
    half = HGRNBitForCausalLM.from_pretrained(hgrn_dir, dtype=torch.float16)
    with pytest.raises(ConfigError, match="float32"):
        half.logits(IDS, integer=True)
    with pytest.raises(ConfigError, match="not supported"):
        HGRNBitForCausalLM.from_pretrained(hgrn_dir, dtype=torch.float64)
    with pytest.raises(ConfigError, match="latent"):
        HGRNBitForCausalLM(model.desc, dtype=torch.float16)


def _with_config(src, dst, **fields):
    import shutil
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg.update(fields)
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


@pytest.mark.parametrize("field, value", [("use_short_conv", True), ("expand_ratio", 2),
                                          ("tie_word_embeddings", True)])
def test_variants_the_released_code_cannot_run_are_refused_by_name(hgrn_dir, tmp_path,
                                                                     field, value):
    from tritium.golden.checkpoint import UnsupportedConfigError
    bad = _with_config(hgrn_dir, tmp_path / "bad", **{field: value})
    with pytest.raises(UnsupportedConfigError, match=field):
        HGRNBitForCausalLM.from_pretrained(bad)


def test_num_heads_has_no_numerical_effect_and_must_divide_hidden(hgrn_dir, model, tmp_path):
    from tritium.golden.checkpoint import CheckpointShapeError
    four = _with_config(hgrn_dir, tmp_path / "four", num_heads=4)
    assert torch.equal(HGRNBitForCausalLM.from_pretrained(four).logits(IDS), model.logits(IDS))
    with pytest.raises(CheckpointShapeError, match="num_heads=3"):
        HGRNBitForCausalLM.from_pretrained(_with_config(hgrn_dir, tmp_path / "three",
                                                        num_heads=3))
