"""Checkpoint ingest: layouts, the latent/pre-packed equivalence, and every kind of bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from tritium import cli
from tritium.golden import checkpoint as ck

SMALL = dict(hidden=16, layers=2, vocab=32)


def _make(tmp_path, arch, name=None, seed=0, **kw):
    out = tmp_path / (name or arch)
    argv = ["make-checkpoint", "--arch", arch, "--hidden", str(kw.get("hidden", 16)),
            "--layers", str(kw.get("layers", 2)), "--vocab", str(kw.get("vocab", 32)),
            "--seed", str(seed), "-o", str(out), "--quiet"]
    if kw.get("shards"):
        argv += ["--shards", str(kw["shards"])]
    assert cli.main(argv) == 0
    return out


def _run(argv, capsys):
    rc = cli.main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_host_commands_are_registered():
    assert "tritium.host.commands" in cli.COMMAND_MODULES


@pytest.mark.parametrize("cmd", ["make-checkpoint", "inspect"])
def test_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([cmd, "--help"])
    assert e.value.code == 0
    assert "usage: tritium " + cmd in capsys.readouterr().out


def test_hgrn_layout_matches_the_released_keys(tmp_path):
    out = _make(tmp_path, "hgrn-bit")
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["architectures"] == ["HGRNBitForCausalLM"] and cfg["model_type"] == "hgrn_bit"
    assert cfg["intermediate_size"] is None and cfg["hidden_ratio"] == 4
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
        dtypes = {f.get_slice(k).get_dtype() for k in keys}
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in keys}
    assert dtypes == {"BF16"}
    # the released configs: intermediate I = 256*ceil((8H/3)/256) = 256 for H = 16
    assert shapes["model.layers.1.mlp.gate_proj.weight"] == (512, 16)
    assert shapes["model.layers.1.mlp.down_proj.weight"] == (16, 256)
    assert shapes["model.layers.1.mlp.down_proj.norm.weight"] == (256,)
    assert shapes["model.lower_bounds"] == (2, 16)
    assert shapes["lm_head.weight"] == (32, 16) and "lm_head.norm.weight" in keys
    for proj in "ifgo":
        assert shapes[f"model.layers.0.attn.{proj}_proj.weight"] == (16, 16)
    assert len(keys) == 4 + 2 * (2 + 1 + 6 * 2) + 1  # model-level, per layer, lm_head.norm


def test_make_checkpoint_is_deterministic_and_atomic(tmp_path):
    a = _make(tmp_path, "hgrn-bit", "a", seed=5)
    b = _make(tmp_path, "hgrn-bit", "b", seed=5)
    c = _make(tmp_path, "hgrn-bit", "c", seed=6)
    data = lambda d: (d / "model.safetensors").read_bytes()
    assert data(a) == data(b) and data(a) != data(c)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "c"]  # no temp dirs left


def test_loaded_description(tmp_path):
    out = _make(tmp_path, "hgrn-bit")
    desc = ck.load_checkpoint(out)
    assert desc.arch == ck.ARCH_HGRN and len(desc.layers) == 2
    lin = desc.layers[1].linears["mlp.down_proj"]
    assert (lin.out_features, lin.in_features) == (16, 256)
    assert lin.codes.dtype == np.uint8 and lin.codes.shape == (16, 256)
    assert set(np.unique(lin.codes)) <= {0, 1, 2}
    # the codes and scale are the reference quantisation of the stored latent weights
    w = load_file(str(out / "model.safetensors"))["model.layers.1.mlp.down_proj.weight"].float()
    s = 1.0 / w.abs().mean().clamp(min=1e-5)
    assert lin.scale == pytest.approx(float(s), rel=1e-7)
    assert np.array_equal(lin.codes, ((w * s).round().clamp(-1, 1) + 1).to(torch.uint8).numpy())
    assert lin.norm_key == "model.layers.1.mlp.down_proj.norm.weight"
    assert lin.norm_weight.shape == (256,)
    assert desc.lm_head is not None and desc.lm_head.codes.shape == (32, 16)
    assert set(desc.layers[0].tensors) == {"attn_norm.weight", "attn.g_norm.weight",
                                           "mlp_norm.weight"}
    assert 0.2 < lin.sparsity < 0.45  # Gaussian latents: P(|w| < mean|w|/2) ~ 0.31
    # every stored tensor counted once
    stored = sum(t.numel() for t in load_file(str(out / "model.safetensors")).values())
    assert desc.parameter_count == stored


def test_sharded_bare_and_torch_files_load_the_same(tmp_path):
    ref = ck.load_checkpoint(_make(tmp_path, "hgrn-bit", "one", seed=3))
    sharded_dir = _make(tmp_path, "hgrn-bit", "sharded", seed=3, shards=3)
    assert (sharded_dir / "model.safetensors.index.json").is_file()
    assert len(list(sharded_dir.glob("model-*-of-00003.safetensors"))) == 3
    state = load_file(str(tmp_path / "one" / "model.safetensors"))
    torch.save(state, tmp_path / "weights.bin")
    variants = [ck.load_checkpoint(sharded_dir),
                ck.load_checkpoint(tmp_path / "one" / "model.safetensors"),
                ck.load_checkpoint(tmp_path / "weights.bin")]
    for desc in variants:
        assert desc.arch == ck.ARCH_HGRN and desc.intermediate_size == ref.intermediate_size
        for a, b in zip(desc.bitlinears(), ref.bitlinears()):
            assert a.name == b.name and a.scale == b.scale
            assert np.array_equal(a.codes, b.codes)


def _hf_pack_by_hand(codes: np.ndarray) -> np.ndarray:
    """transformers' pre-packed layout, element by element: bits 2i of packed row r hold
    unpacked row r + i*out/4 as value+1."""
    q = codes.shape[0] // 4
    packed = np.zeros((q, codes.shape[1]), np.uint8)
    for r in range(q):
        for i in range(4):
            for c in range(codes.shape[1]):
                packed[r, c] |= int(codes[r + i * q, c]) << (2 * i)
    return packed


def test_latent_and_prepacked_bitnet_give_identical_codes(tmp_path):
    latent = ck.load_checkpoint(_make(tmp_path, "bitnet", seed=9))
    packed = ck.load_checkpoint(_make(tmp_path, "bitnet-packed", seed=9))
    assert latent.arch == ck.ARCH_BITNET and packed.arch == ck.ARCH_BITNET_PACKED
    pairs = list(zip(latent.bitlinears(), packed.bitlinears()))
    assert len(pairs) == 2 * 7
    for a, b in pairs:
        assert a.name == b.name and a.codes.shape == b.codes.shape
        assert np.array_equal(a.codes, b.codes)
        # weight_scale is stored as bf16 (8 significant bits)
        assert b.scale == pytest.approx(a.scale, rel=2 ** -8)
        assert np.array_equal(a.norm_weight, b.norm_weight)


def test_prepacked_bitnet_written_independently(tmp_path):
    src = _make(tmp_path, "bitnet", seed=2)
    state = load_file(str(src / "model.safetensors"))
    cfg = json.loads((src / "config.json").read_text())
    cfg["quantization_config"]["quantization_mode"] = "offline"
    expected_codes = {}
    for key in [k for k in state if k.endswith("_proj.weight")]:
        w = state[key].float()
        mean = w.abs().mean().clamp(min=1e-5)
        codes = ((w / mean).round().clamp(-1, 1) + 1).to(torch.uint8).numpy()
        if not np.array_equal(codes, ((w * (1 / mean)).round().clamp(-1, 1) + 1)
                              .to(torch.uint8).numpy()):
            continue  # w/mean and w*(1/mean) may round apart; then the comparison is moot
        expected_codes[key[:-len(".weight")]] = codes
        state[key] = torch.from_numpy(_hf_pack_by_hand(codes))
        state[key + "_scale"] = mean.reshape(1).to(torch.bfloat16)
    assert len(expected_codes) >= 10
    out = tmp_path / "packed_by_hand"
    out.mkdir()
    (out / "config.json").write_text(json.dumps(cfg))
    save_file(state, str(out / "model.safetensors"))
    desc = ck.load_checkpoint(out)
    for lin in desc.bitlinears():
        if lin.name in expected_codes:
            assert np.array_equal(lin.codes, expected_codes[lin.name]), lin.name


def test_inspect_output(tmp_path, capsys):
    out = _make(tmp_path, "bitnet-packed", hidden=32)
    rc, text, err = _run(["inspect", str(out), "--quiet"], capsys)
    assert rc == 0 and err == ""
    assert "bitnet-packed" in text
    # q_proj is 32x32 = 1024 weights: 256 bytes in t2, 32 rows * ceil(32/5) = 224 in t3
    line = next(l for l in text.splitlines() if l.startswith("model.layers.0.self_attn.q_proj"))
    assert line.split()[1] == "32x32" and line.split()[-2:] == ["256", "224"]
    assert "parameters" in text and "%" in line


def test_inspect_json(tmp_path, capsys):
    out = _make(tmp_path, "bitnet-packed", hidden=32)
    rc, text, err = _run(["inspect", str(out), "--quiet", "--json", "--device-mem", "1M"],
                         capsys)
    assert rc == 0 and err == ""
    rep = json.loads(text)
    assert (rep["arch"], rep["hidden_size"], rep["num_layers"]) == ("bitnet-packed", 32, 2)
    q = next(r for r in rep["bitlinears"] if r["bitlinear"] == "model.layers.0.self_attn.q_proj")
    # as in the table: 32x32 = 1024 weights, 256 bytes in t2, 32 rows * ceil(32/5) = 224 in t3
    assert (q["out_features"], q["in_features"], q["t2_bytes"], q["t3_bytes"]) == (32, 32, 256, 224)
    assert rep["t2_bytes"] == sum(r["t2_bytes"] for r in rep["bitlinears"])
    assert rep["device_mem"] == 1 << 20 and 0 < rep["device_bytes"] <= 1 << 20


# --- bad input ---------------------------------------------------------------------------------

def _rewrite(path: Path, edit):
    state = load_file(str(path))
    edit(state)
    save_file(state, str(path))


def _corrupt(tmp_path, how: str) -> tuple[Path, type]:
    base = _make(tmp_path, "hgrn-bit", "ck")
    weights = base / "model.safetensors"
    key = "model.layers.0.attn.i_proj.weight"
    if how == "missing-file":
        return tmp_path / "no-such-checkpoint", ck.CheckpointNotFoundError
    if how == "missing-weights":
        weights.unlink()
        return base, ck.CheckpointNotFoundError
    if how == "missing-shard":
        sharded = _make(tmp_path, "hgrn-bit", "sh", shards=2)
        next(sharded.glob("model-00002-*")).unlink()
        return sharded, ck.CheckpointNotFoundError
    if how == "truncated":
        data = weights.read_bytes()
        weights.write_bytes(data[:len(data) * 2 // 3])
        return base, ck.CorruptCheckpointError
    if how == "wrong-dtype":
        _rewrite(weights, lambda s: s.__setitem__(key, s[key].to(torch.int32)))
        return base, ck.CheckpointDtypeError
    if how in ("nan", "inf"):
        def poison(s):
            t = s[key].clone()
            t[3, 5] = float("nan") if how == "nan" else float("inf")
            s[key] = t
        _rewrite(weights, poison)
        return base, ck.NonFiniteWeightError
    if how == "missing-key":
        _rewrite(weights, lambda s: s.pop("model.layers.1.attn.g_norm.weight"))
        return base, ck.CheckpointKeyError
    if how == "extra-key":
        _rewrite(weights, lambda s: s.__setitem__("model.layers.0.attn.k_proj.weight",
                                                  torch.zeros(16, 16, dtype=torch.bfloat16)))
        return base, ck.CheckpointKeyError
    if how == "shape-mismatch":
        cfg = json.loads((base / "config.json").read_text())
        cfg["vocab_size"] = 40
        (base / "config.json").write_text(json.dumps(cfg))
        return base, ck.CheckpointShapeError
    if how == "unknown-architecture":
        cfg = json.loads((base / "config.json").read_text())
        cfg["architectures"], cfg["model_type"] = ["LlamaForCausalLM"], "llama"
        (base / "config.json").write_text(json.dumps(cfg))
        return base, ck.UnknownArchitectureError
    if how == "unknown-keys":
        save_file({"encoder.weight": torch.zeros(4, 4)}, str(tmp_path / "other.safetensors"))
        return tmp_path / "other.safetensors", ck.UnknownArchitectureError
    raise AssertionError(how)


BAD = ["missing-file", "missing-weights", "missing-shard", "truncated", "wrong-dtype", "nan",
       "inf", "missing-key", "extra-key", "shape-mismatch", "unknown-architecture",
       "unknown-keys"]


@pytest.mark.parametrize("how", BAD)
def test_bad_checkpoint_raises_typed_error(tmp_path, how):
    path, exc = _corrupt(tmp_path, how)
    with pytest.raises(exc) as e:
        ck.load_checkpoint(path)
    assert isinstance(e.value, ck.CheckpointError)
    assert "\n" not in str(e.value) and len(str(e.value)) > 30


@pytest.mark.parametrize("how", BAD)
def test_bad_checkpoint_through_cli(tmp_path, how, capsys):
    path, exc = _corrupt(tmp_path, how)
    rc, out, err = _run(["inspect", str(path), "--quiet"], capsys)
    assert rc != 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tritium inspect: error: ")
    assert "Traceback" not in err


class _Payload:
    """Unpickling this calls open(marker, 'w'): code execution a safe loader must refuse."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil_pickle(tmp_path) -> tuple[Path, Path]:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.bin"
    torch.save({"model.embeddings.weight": torch.zeros(2, 2), "x": _Payload(marker)}, path)
    assert not marker.exists()
    return path, marker


def test_code_executing_pickle_is_refused(tmp_path, capsys):
    path, marker = _evil_pickle(tmp_path)
    with pytest.raises(ck.UnsafeCheckpointError):
        ck.load_checkpoint(path)
    assert not marker.exists()
    rc, out, err = _run(["inspect", str(path)], capsys)
    assert rc != 0 and "refused" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists()
    # the payload is live: an unsafe load would have run it
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_code_executing_pickle_in_a_subprocess(tmp_path):
    """The installed entry point: one error line, no traceback, exit status 2."""
    path, marker = _evil_pickle(tmp_path)
    r = subprocess.run([sys.executable, "-m", "tritium.cli", "inspect", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == ck.UnsafeCheckpointError.exit_code
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not marker.exists()


def test_too_large_for_device_memory_is_reported_before_reading_weights(tmp_path, capsys):
    path, _ = _corrupt(tmp_path, "nan")  # the data is bad, but is never read
    need = ck.scan_checkpoint(path)[0].device_bytes("t2")
    with pytest.raises(ck.DeviceMemoryError, match=f"{need:,}"):
        ck.load_checkpoint(path, device_mem=need - 1)
    rc, out, err = _run(["inspect", str(path), "--device-mem", str(need - 1)], capsys)
    assert rc != 0 and "device memory" in err and len(err.strip().splitlines()) == 1
    # t3 is denser: the same budget may fit, and the NaN is then found
    need_t3 = ck.scan_checkpoint(path)[0].device_bytes("t3")
    assert need_t3 < need
    with pytest.raises(ck.NonFiniteWeightError):
        ck.load_checkpoint(path, device_mem=need_t3, fmt="t3")


def test_device_bytes_formula(tmp_path):
    spec, _ = ck.scan_checkpoint(_make(tmp_path, "hgrn-bit"))
    # 13 BitLinears: per layer 4 of 16x16, 512x16, 16x256; lm_head 32x16
    t2 = 2 * (4 * 16 * 4 + 512 * 4 + 16 * 64) + 32 * 4
    t3 = 2 * (4 * 16 * 4 + 512 * 4 + 16 * 52) + 32 * 4
    scales = 13 * 4
    floats = 32 * 16 + 2 * 16 + 16 + 2 * (16 + 16 + 16 + 5 * 16 + 256) + 16
    assert spec.device_bytes("t2") == t2 + scales + 2 * floats
    assert spec.device_bytes("t3") == t3 + scales + 2 * floats


def test_make_checkpoint_errors_leave_nothing_behind(tmp_path, capsys):
    rc, _, err = _run(["make-checkpoint", "--arch", "bitnet", "--hidden", "6",
                       "-o", str(tmp_path / "bad")], capsys)
    assert rc != 0 and "multiple of 4" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()
    keep = tmp_path / "existing"
    keep.mkdir()
    (keep / "mine.txt").write_text("precious")
    rc, _, err = _run(["make-checkpoint", "--arch", "hgrn-bit", "-o", str(keep)], capsys)
    assert rc != 0 and "already exists" in err
    assert [p.name for p in keep.iterdir()] == ["mine.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing"]


def test_prepacked_invalid_code_is_rejected(tmp_path):
    out = _make(tmp_path, "bitnet-packed")
    key = "model.layers.0.mlp.up_proj.weight"
    _rewrite(out / "model.safetensors",
             lambda s: s.__setitem__(key, torch.full_like(s[key], 0xFF)))
    with pytest.raises(ck.CorruptCheckpointError, match="value 3"):
        ck.load_checkpoint(out)


# ---- released shapes (--preset) -------------------------------------------------------------

def test_preset_reduced_depth_at_real_width(tmp_path):
    """MMfreeLM-370M's width (H 1024, I 2816 = 256*ceil(8H/3/256), V 32000), 2 layers deep,
    in the released key layout and dtypes, initialised as upstream (std 0.02), loadable."""
    out = tmp_path / "m"
    assert cli.main(["make-checkpoint", "--preset", "mmfreelm-370m", "--layers", "2",
                     "-o", str(out), "--quiet"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]) == (1024, 2, 32000)
    assert cfg["intermediate_size"] is None and cfg["hidden_ratio"] == 4
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        w = f.get_tensor("model.layers.1.mlp.down_proj.weight").float()
    assert shapes["model.embeddings.weight"] == (32000, 1024)
    assert shapes["lm_head.weight"] == (32000, 1024)
    assert shapes["model.layers.1.mlp.gate_proj.weight"] == (2 * 2816, 1024)
    assert shapes["model.layers.1.mlp.down_proj.weight"] == (1024, 2816)
    for proj in "ifgo":
        assert shapes[f"model.layers.0.attn.{proj}_proj.weight"] == (1024, 1024)
    params = sum(np.prod(s) for s in shapes.values())
    # per layer: 4 H^2 + 3 H I of BitLinears, their input norms (4 H + H + I) and the
    # block's attn/mlp/g norms (3 H); the model: embeddings and lm_head (V H each), the
    # final and lm_head norms (2 H), the lower bounds (layers x H)
    h, i, v = 1024, 2816, 32000
    assert params == 2 * (4 * h * h + 3 * h * i + 8 * h + i) + 2 * v * h + 2 * h + 2 * h
    assert abs(w.std().item() - 0.02) < 2e-4 and abs(w.mean().item()) < 2e-4
    desc = ck.load_checkpoint(out)
    assert (desc.hidden_size, desc.num_layers, desc.vocab_size) == (1024, 2, 32000)


def test_streamed_file_reads_back_as_the_library_writes_it(tmp_path):
    """The streaming writer's file holds exactly the tensors safetensors' own save_file
    would write for the same state, read back by the library."""
    config = ck.synthetic_config("bitnet-packed", 16, 2, 32)
    state = ck.synthetic_state_dict(config, seed=4)
    save_file(state, str(tmp_path / "lib.safetensors"), metadata={"format": "pt"})
    ck.write_safetensors_streaming(tmp_path / "ours.safetensors", ck.synthetic_layout(config),
                                   ck.synthetic_tensors(config, 4), {"format": "pt"})
    a, b = load_file(str(tmp_path / "lib.safetensors")), load_file(str(tmp_path / "ours.safetensors"))
    assert a.keys() == b.keys() and any(v.dtype == torch.uint8 for v in a.values())
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


def test_bitnet_2b_preset_has_the_released_heads():
    """microsoft/bitnet-b1.58-2B-4T: 20 query heads, 5 key/value heads of 128, I 6912."""
    spec = ck._spec_for(ck.synthetic_config("bitnet", 0, 1, 0, preset="bitnet-b1.58-2b"))
    shapes = {e.key: e.shape for e in spec.tensors}
    assert shapes["model.layers.0.self_attn.q_proj.weight"] == (2560, 2560)
    assert shapes["model.layers.0.self_attn.k_proj.weight"] == (640, 2560)
    assert shapes["model.layers.0.mlp.down_proj.weight"] == (2560, 6912)
    assert shapes["model.embed_tokens.weight"] == (128256, 2560)


@pytest.mark.parametrize("argv, msg", [
    (["--preset", "mmfreelm-370m", "--hidden", "64"], "fixes --hidden"),
    (["--preset", "mmfreelm-370m", "--arch", "bitnet"], "use --arch hgrn-bit"),
    ([], "give --arch"),
])
def test_preset_misuse_is_one_line(tmp_path, capsys, argv, msg):
    rc, _, err = _run(["make-checkpoint", *argv, "-o", str(tmp_path / "x")], capsys)
    assert rc != 0 and msg in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
