"""The BitNet golden against a reference written here from transformers' BitNet formulas.

The reference uses nothing from tritium: it reads the safetensors file itself and runs
BitNetForCausalLM's computation one token per step with a key/value cache, as cached
generation does (one token per step for the reason given in test_reference_hgrn.py: the
ternary rounding turns sub-ulp differences of another operand shape into visible ones).
The checkpoints are written here in the Hugging Face key layout, in the three weight
layouts transformers loads: latent (quantised online), offline packed uint8 (4 codes per
byte along out_features, row r + i*out/4 in bits 2i..2i+1 of packed row r, code =
value + 1) and offline unpacked ternary floats [out, in], both with weight_scale = 1/s_w.

Formulas (transformers BitNetForCausalLM, AutoBitLinear, BitNetRMSNorm):

* RMSNorm(x) = w * (x * rsqrt(mean(x^2) + rms_norm_eps)) for all four block norms and
  the final norm;
* ActQuant(x) = clamp(round_even(x * s), -128, 127) / s, s = 127 / max(max|x|, 1e-5);
  online: y = ActQuant(x) @ WQ(W).T with WQ(W) = clamp(round_even(W t), -1, 1) / t,
  t = 1 / max(mean|W|, 1e-5); offline: y = (ActQuant(x) @ W_ternary.T) * weight_scale;
  linear_class "bitlinear": y = (x_q @ W_ternary.T) / (weight_scale * s), weight_scale = t;
* attention: q, k, v projections, RoPE on q and k (inv_freq = 1 / theta^(2i/d), angles
  pos * inv_freq repeated twice, x cos + rotate_half(x) sin), keys/values repeated to the
  query heads (repeat_kv), softmax(q k^T * d^-0.5) v, attn_sub_norm, o_proj;
* MLP: down_proj(ffn_sub_norm(relu(gate_proj(x))^2 * up_proj(x)));
* logits = RMSNorm(x) @ lm_head.T (full precision; tied: embed_tokens).
"""

import json
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from tritium.golden.bitnet import BitNetForCausalLM
from tritium.golden.checkpoint import (CheckpointShapeError, CorruptCheckpointError,
                                     UnsupportedConfigError)

LAYERS, VOCAB, TOKENS = 2, 256, 10
RTOL = 1e-5
PROJ = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def _intermediate(h):
    return 256 * math.ceil(int(h * 4 * 2 / 3) / 256)


def _pack(values):
    """Ternary [out, in] -> uint8 [out/4, in] in the transformers layout (module docstring)."""
    out = values.shape[0]
    q = out // 4
    codes = (values + 1).to(torch.uint8)
    packed = torch.zeros(q, values.shape[1], dtype=torch.uint8)
    for i in range(4):
        packed |= codes[i * q:(i + 1) * q] << (2 * i)
    return packed


def write_bitnet(directory, hidden, heads, kv_heads, init, layout, seed, vocab=VOCAB):
    """``layout``: "latent", "latent-tied" (tied config, lm_head.weight still stored),
    "packed" or "unpacked" (offline, linear_class "autobitlinear": weight_scale = 1/s_w),
    or "bitlinear" (offline packed, linear_class "bitlinear": weight_scale = s_w)."""
    g = torch.Generator().manual_seed(seed)
    inter, head_dim = _intermediate(hidden), hidden // heads
    kv = kv_heads * head_dim

    def weight(out, inp):
        return torch.randn(out, inp, generator=g) * (0.02 if init == "upstream" else 1.0)

    def gain(n):
        return torch.ones(n) if init == "upstream" else 1 + 0.1 * torch.randn(n, generator=g)

    sd = {"model.embed_tokens.weight": weight(vocab, hidden), "model.norm.weight": gain(hidden)}
    shapes = dict(zip(PROJ, ((hidden, hidden), (kv, hidden), (kv, hidden), (hidden, hidden),
                             (inter, hidden), (inter, hidden), (hidden, inter))))
    for l in range(LAYERS):
        p = f"model.layers.{l}."
        for n, size in (("input_layernorm", hidden), ("post_attention_layernorm", hidden),
                        ("self_attn.attn_sub_norm", hidden), ("mlp.ffn_sub_norm", inter)):
            sd[p + n + ".weight"] = gain(size)
        for name, (out, inp) in shapes.items():
            sd[p + name + ".weight"] = weight(out, inp)
    sd = {k: v.to(torch.bfloat16) for k, v in sd.items()}
    if layout in ("packed", "unpacked", "bitlinear"):
        for l in range(LAYERS):
            for name in PROJ:
                key = f"model.layers.{l}.{name}.weight"
                w = sd[key].float()
                t = 1.0 / w.abs().mean().clamp(min=1e-5)
                values = (w * t).round().clamp(-1, 1)
                sd[key] = values.to(torch.bfloat16) if layout == "unpacked" \
                    else _pack(values.to(torch.int8))
                stored = t if layout == "bitlinear" else 1.0 / t
                sd[key + "_scale"] = stored.reshape(1).to(torch.bfloat16)
    tied = layout != "latent"
    if layout in ("latent", "latent-tied"):
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"].clone() if tied \
            else weight(vocab, hidden).to(torch.bfloat16)
    directory.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(directory / "model.safetensors"),
              metadata={"format": "pt"})
    cfg = {"architectures": ["BitNetForCausalLM"], "model_type": "bitnet",
           "hidden_size": hidden, "intermediate_size": inter, "num_hidden_layers": LAYERS,
           "num_attention_heads": heads, "num_key_value_heads": kv_heads, "vocab_size": vocab,
           "hidden_act": "relu2", "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
           "max_position_embeddings": 4096, "tie_word_embeddings": tied,
           "initializer_range": 0.02, "torch_dtype": "bfloat16",
           "quantization_config": {"quant_method": "bitnet",
                                   "linear_class": "bitlinear" if layout == "bitlinear"
                                   else "autobitlinear",
                                   "quantization_mode": "online" if "latent" in layout
                                   else "offline"}}
    (directory / "config.json").write_text(json.dumps(cfg))
    return directory


def _unpack(packed):
    return torch.cat([((packed >> (2 * i)) & 3).float() - 1 for i in range(4)], dim=0)


def reference_logits(directory, ids, eps=None):
    """Teacher-forced logits [T, V] from the formulas above; ``eps`` overrides the config's
    rms_norm_eps (only to show the test can tell them apart)."""
    cfg = json.loads((directory / "config.json").read_text())
    raw = load_file(str(directory / "model.safetensors"))
    sd = {k: v if v.dtype == torch.uint8 else v.float() for k, v in raw.items()}
    eps = cfg["rms_norm_eps"] if eps is None else eps
    heads, kv_heads = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d = cfg["hidden_size"] // heads
    offline = cfg["quantization_config"]["quantization_mode"] == "offline"
    divides = cfg["quantization_config"]["linear_class"] == "bitlinear"

    def norm(x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def act_quant(x):
        s = 127 / x.abs().amax(-1, keepdim=True).clamp(min=1e-5)
        return (x * s).round().clamp(-128, 127) / s

    def linear(x, key):
        w = sd[key + ".weight"]
        if not offline:
            t = 1.0 / w.abs().mean().clamp(min=1e-5)
            return F.linear(act_quant(x), (w * t).round().clamp(-1, 1) / t)
        w = _unpack(w) if w.dtype == torch.uint8 else w
        if divides:  # BitLinear: int8 codes times ternary, over (weight_scale * s)
            s = 127 / x.abs().amax(-1, keepdim=True).clamp(min=1e-5)
            return F.linear((x * s).round().clamp(-128, 127), w) / (sd[key + ".weight_scale"] * s)
        return F.linear(act_quant(x), w) * sd[key + ".weight_scale"]

    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, d, 2).float() / d))

    def rope(x, pos):
        angle = torch.cat((pos * inv_freq, pos * inv_freq))
        rotated = torch.cat((-x[..., d // 2:], x[..., :d // 2]), dim=-1)
        return x * angle.cos() + rotated * angle.sin()

    def repeat_kv(x):
        n = heads // kv_heads
        return x[:, None].expand(kv_heads, n, *x.shape[1:]).reshape(heads, *x.shape[1:])

    lm_head = sd["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] \
        else sd["lm_head.weight"]
    cache = [([], []) for _ in range(cfg["num_hidden_layers"])]
    out = []
    for pos, token in enumerate(ids):
        x = sd["model.embed_tokens.weight"][[token]]
        for l in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{l}."
            a = norm(x, sd[p + "input_layernorm.weight"])
            q = rope(linear(a, p + "self_attn.q_proj").view(heads, 1, d), float(pos))
            cache[l][0].append(rope(linear(a, p + "self_attn.k_proj").view(kv_heads, 1, d),
                                    float(pos)))
            cache[l][1].append(linear(a, p + "self_attn.v_proj").view(kv_heads, 1, d))
            k = repeat_kv(torch.cat(cache[l][0], dim=1))
            v = repeat_kv(torch.cat(cache[l][1], dim=1))
            weights = torch.softmax(torch.matmul(q, k.transpose(1, 2)) * d ** -0.5, dim=-1)
            o = torch.matmul(weights, v).reshape(1, -1)
            x = x + linear(norm(o, sd[p + "self_attn.attn_sub_norm.weight"]),
                           p + "self_attn.o_proj")
            m = norm(x, sd[p + "post_attention_layernorm.weight"])
            h = F.relu(linear(m, p + "mlp.gate_proj")) ** 2 * linear(m, p + "mlp.up_proj")
            x = x + linear(norm(h, sd[p + "mlp.ffn_sub_norm.weight"]), p + "mlp.down_proj")
        out.append((norm(x, sd["model.norm.weight"]) @ lm_head.t())[0])
    return torch.stack(out)


GRID = [(init, h, heads, kv, "latent") for init in ("upstream", "unit") for h in (64, 128)
        for heads, kv in ((2, 1), (4, 2))]
LAYOUTS = [("upstream", h, 4, 2, layout) for h in (64, 128)
           for layout in ("latent-tied", "packed", "unpacked", "bitlinear")]
CASES = GRID + LAYOUTS


def _name(case):
    return "-".join(map(str, case))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ref-bitnet")
    return {c: write_bitnet(root / _name(c), c[1], c[2], c[3], c[0], c[4], seed=31 + i)
            for i, c in enumerate(CASES)}


def _ids(seed):
    return torch.randint(0, VOCAB, (TOKENS,), generator=torch.Generator().manual_seed(seed))


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("case", CASES, ids=[_name(c) for c in CASES])
def test_float_golden_is_transformers_bitnet(checkpoints, case):
    ids = _ids(case[1] + case[2])
    ref = reference_logits(checkpoints[case], ids.tolist())
    model = BitNetForCausalLM.from_pretrained(checkpoints[case])
    got = model.logits(ids)
    assert model.kv_heads < model.heads       # grouped-query attention
    assert ref.abs().max() > 0
    assert _rel(got, ref) <= RTOL
    assert torch.equal(got.argmax(-1), ref.argmax(-1))
    # the KV cache matters: the last position differs from the same token seen first
    alone = reference_logits(checkpoints[case], ids[-1:].tolist())
    assert _rel(ref[-1], alone[0]) > 1e-3


def test_the_reference_tells_the_config_eps_apart(checkpoints):
    """Guards the test itself: docs once said the activations were normalised with 1e-8;
    the config's 1e-5 moves an upstream-initialised model's logits far beyond RTOL."""
    case = GRID[0]
    ids = _ids(3).tolist()
    got = BitNetForCausalLM.from_pretrained(checkpoints[case]).logits(ids)
    assert _rel(got, reference_logits(checkpoints[case], ids, eps=1e-8)) > 100 * RTOL


def test_tied_lm_head_must_equal_the_embeddings(tmp_path):
    src = write_bitnet(tmp_path / "t", 64, 4, 2, "unit", "latent-tied", seed=5)
    sd = load_file(str(src / "model.safetensors"))
    sd["lm_head.weight"] = sd["lm_head.weight"] + 1
    save_file(sd, str(src / "model.safetensors"))
    with pytest.raises(CorruptCheckpointError, match="tie_word_embeddings"):
        BitNetForCausalLM.from_pretrained(src)


def test_unpacked_offline_weights_must_be_ternary(tmp_path):
    src = write_bitnet(tmp_path / "u", 64, 4, 2, "unit", "unpacked", seed=6)
    sd = load_file(str(src / "model.safetensors"))
    key = "model.layers.1.mlp.up_proj.weight"
    sd[key] = sd[key] * 0.5
    save_file(sd, str(src / "model.safetensors"))
    with pytest.raises(CorruptCheckpointError, match=key):
        BitNetForCausalLM.from_pretrained(src)


@pytest.mark.parametrize("field, value, error", [
    ("hidden_act", "silu", UnsupportedConfigError),
    ("attention_bias", True, UnsupportedConfigError),
    ("rope_scaling", {"rope_type": "linear"}, UnsupportedConfigError),
    ("head_dim", 8, UnsupportedConfigError),
    ("num_key_value_heads", 3, CheckpointShapeError)])
def test_config_fields_the_golden_does_not_implement_are_refused_by_name(tmp_path, field,
                                                                          value, error):
    src = write_bitnet(tmp_path / "c", 64, 4, 2, "unit", "latent", seed=7)
    cfg = json.loads((src / "config.json").read_text())
    cfg[field] = value
    (src / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(error, match=f"{field}={value!r}" if field != "rope_scaling" else field):
        BitNetForCausalLM.from_pretrained(src)
