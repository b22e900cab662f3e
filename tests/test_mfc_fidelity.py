"""The token core's fixed point at real activation scales, checked against formulas written
here from the published model (not against tritium's own goldens where that would be
circular): VNORM's definition by hand, one norm -> quantise -> rescale chain of the
compiler's code against the float RMSNorm/BitLinear formulas for inputs of RMS 1e-4 to
1e3 (both eps terms included), whole models against the float reference and its own
float16 run, and the compiler's refusals by field name."""

import numpy as np
import pytest
import torch

from tritium.engines.mfc.config import MfcConfig
from tritium.engines.tmv.config import TernaryConfig
from tritium.golden.hgrn import HGRNBitForCausalLM
from tritium.engines.mfc.golden import Machine, Op, encode
from tritium.golden.checkpoint import load_checkpoint
from tritium.engines.mfc.compile import CompileError, _Compiler, agreement, compile_model, to_fixed

CFG = MfcConfig()
EPS_LINEAR = 1e-6   # the released FusedBitLinear kernel's default eps
SCALES = (1e-4, 1e-2, 1.0, 1e3)


def test_vnorm_by_hand():
    """x = [3, -4, 1] (Q.16 integers), norm_frac 23 so N = 8: k = 2^31 // 4,
    q = round(x·k / 2^8) = x·2^21 (max-abs 4·2^21 = 2^23, 1.0 in Q.23), the squares
    summed exactly into S[c+1]; k = 2^8 is the identity."""
    m = Machine(MfcConfig(tmv=TernaryConfig(simd=4, pe=2, max_in=16, max_out=8,
                                            weight_depth=64), vmem_depth=64, imem_depth=16,
                          sregs=4, norm_frac=23))
    m.vmem[:3] = [3, -4, 1]
    m.sregs[:3] = [2 ** 31 // 4, 0, 1 << 8]
    m.load_program([encode(Op.SETVL, a=3), encode(Op.VNORM, d=8, a=0, c=0),
                    encode(Op.VNORM, d=0, a=0, c=2), encode(Op.HALT)])
    assert m.run()["error"] == 0
    assert list(m.vmem[8:11]) == [3 << 21, -4 << 21, 1 << 21]
    assert m.sregs[1] == (9 + 16 + 1) << 42
    assert list(m.vmem[:3]) == [3, -4, 1] and m.sregs[3] == 26


def _round_away(v):
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def _bitlinear_reference(xn, g, s_w):
    """The released BitLinear on an already block-normed input: its RMSNorm (eps 1e-6),
    absmax int8 quantisation, the rescale factor 2^R·max|x̂| / (127·s_w) of VRESCALE;
    returns (x_q, that factor, x̂·127/max|x̂| before rounding)."""
    xh = xn / np.sqrt(np.mean(xn ** 2) + EPS_LINEAR) * g
    m = max(np.abs(xh).max(), 1e-5)
    v = xh * 127 / m
    return np.clip(_round_away(v), -128, 127), 2.0 ** CFG.rescale_frac * m / (127 * s_w), v


def _shift_for(v):
    """The extra fraction bits a vector of this max-abs gets, as the compiler chooses them
    from a bound (here the vector's own max): the most that keep it below 2^30."""
    return int(np.clip(np.floor(np.log2(2.0 ** 30 / np.abs(v).max())) - CFG.frac_bits,
                       -12, 24))


def _run_chain(desc, kind, vectors, g, eps, shifts):
    """The compiler's own norm + issue for one BitLinear on the golden machine, each input
    vector held in Q.(F + its shift) (``shifts``: the norm's input, then the dynamic
    factor SiLU(h) of kind B); returns (x_q, c) as the core computes them, and the
    inputs as the floats they represent."""
    comp = _Compiler(desc, CFG, "t2")
    lin = desc.layers[0].linears["mlp.down_proj" if kind == "C" else
                                 "attn.o_proj" if kind == "B" else "attn.i_proj"]
    lin.norm_weight = g.astype(np.float32)
    n = len(g)
    comp.constants()
    frac = [CFG.frac_bits + sh for sh in shifts]
    addrs, exact = [], []
    for v, f in zip(vectors, frac):
        addrs.append(comp.e.alloc(n))
        comp.e.vmem[addrs[-1]] = to_fixed(v, f)
        exact.append(to_fixed(v, f) / 2.0 ** f)
    if kind == "C":
        comp.norm(addrs[0], n, in_shift=shifts[0])
    else:
        # as the compiler does: o_proj's t̃ (with SiLU(h)) is formed in Q.F
        comp.norm(addrs[0], n, addrs[1:], eps, frac=CFG.frac_bits if kind == "B" else None,
                  in_shift=shifts[0], t_shift=shifts[2] if kind == "B" else 0)
    bank, reg = comp.issue(lin, comp.t, n)
    comp.e(Op.TWAIT)
    comp.e(Op.HALT)
    m = Machine(CFG)
    m.load_program(comp.e.words)
    for a, v in comp.e.vmem.items():
        m.vmem[a:a + len(v)] = v
    assert m.run()["error"] == 0
    x_q = m.act[bank * CFG.act_elems:][:n]
    return x_q, m.sregs[reg], exact, lin.scale


@pytest.mark.parametrize("kind", ["A", "B", "C"])
@pytest.mark.parametrize("rms", SCALES)
@pytest.mark.parametrize("spiky", [False, True])
@pytest.mark.parametrize("shifted", [False, True], ids=["qF", "shifted"])
def test_norm_quantise_rescale_hold_from_rms_1e_4_to_1e3(h64_checkpoint, kind, rms, spiky,
                                                         shifted):
    """A: block RMSNorm(x)·w then the BitLinear (attn/mlp/final norm); B: g_norm(g)·w_g ⊙
    SiLU(h) then o_proj; C: down_proj's input, no block norm. The rescale factor is within
    the documented bound (docs/mfc.md) of the formula's and the int8 activations equal
    the formula's except next to rounding ties (|Δ| = 1 there). ``shifted``: the input
    (and kind B's SiLU(h)) in Q.(F + s) with s chosen from its range, as the compiler
    holds the residual, the g_proj output, SiLU(h) and the GLU product; both eps terms
    must then be scaled to match (at RMS 1e-4 the block eps dominates mean(x²))."""
    desc = load_checkpoint(h64_checkpoint(0))
    rng = np.random.default_rng(int(rms * 1e4) + spiky + ord(kind))
    n = desc.intermediate_size if kind == "C" else desc.hidden_size
    x = rng.standard_normal(n) * rms
    if spiky:   # one element carries most of the energy: max/rms near sqrt(n)
        x[3] = rms * np.sqrt(n) * 0.9
    g = 1 + 0.3 * rng.standard_normal(n)
    eps = desc.rms_norm_eps
    if kind == "A":
        w = 1 + 0.3 * rng.standard_normal(n)
        vectors = [x, w]
    elif kind == "B":
        w, s = 1 + 0.3 * rng.standard_normal(n), 0.05 * rng.standard_normal(n)
        vectors = [x, w, s]
    else:
        vectors = [x]
    shifts = [_shift_for(v) if shifted and k != 1 else 0 for k, v in enumerate(vectors)]
    if shifted and kind == "B":
        # the documented limit on t̃ = x̃⊙w⊙SiLU(h) (max|x̃| = 1): its sum of squares,
        # shifted by o_proj's root shift of 8 bits, stays below 2^64
        shifts[2] = _shift_for(w * s * np.sqrt(n) * 16)
    x_q, c, ex, s_w = _run_chain(desc, kind, vectors, g, eps, shifts)
    if kind == "C":
        xn = ex[0]
    else:
        xn = ex[0] / np.sqrt(np.mean(ex[0] ** 2) + eps)
        for v in ex[1:]:
            xn = xn * v
    want_q, want_c, v = _bitlinear_reference(xn, g, s_w)
    assert abs(c / want_c - 1) <= 2.0 ** -11, (c, want_c)
    # the core's ũ carries a few LSB of rounding (VNORM, the VMULs) against max|ũ| of
    # ~2^13..2^16 LSB: an int8 code may differ by one only next to a rounding tie
    off = np.nonzero(x_q != want_q)[0]
    assert np.all(np.abs(x_q - want_q)[off] == 1), off
    assert np.all(np.abs(np.abs(v[off]) % 1 - 0.5) < 0.05), v[off]


def _fp16_and_core(ckpt, tokens=128, cfg=CFG, seed=0):
    desc = load_checkpoint(ckpt)
    ids = list(np.random.default_rng(seed).integers(0, desc.vocab_size, tokens))
    ref = HGRNBitForCausalLM(desc)
    r32 = ref.logits(ids).float().numpy()
    r16 = HGRNBitForCausalLM.from_pretrained(ckpt, dtype=torch.float16).logits(ids)
    r16 = r16.float().numpy()
    fp16_rel = np.abs(r16 - r32).max() / np.abs(r32).max()
    fp16_top1 = float((r16.argmax(-1) == r32.argmax(-1)).mean())
    return agreement(compile_model(desc, cfg), ref, ids), fp16_rel, fp16_top1


@pytest.mark.parametrize("unit_scale", [False, True], ids=["upstream-init", "unit-scale"])
def test_core_within_the_float16_noise_floor(h64_checkpoint, unit_scale):
    """The issue's acceptance at default formats, per seed (0, 1, 2): max|Δlogit|/max|logit|
    no larger than the float golden's own float16 run's on the same model and tokens,
    top-1 within 3 points of it, no projection all zero (bench/results/mfc.json has the
    H = 128 and held-out cases)."""
    for seed in (0, 1, 2):
        ag, fp16_rel, fp16_top1 = _fp16_and_core(h64_checkpoint(seed, unit_scale))
        assert ag.zero_projections == 0 and ag.projections == 13 * 128
        assert ag.top1_agreement >= fp16_top1 - 0.03, (seed, ag, fp16_top1)
        assert ag.rel_max_dlogit <= fp16_rel, (seed, ag, fp16_rel)


def test_upstream_init_h128_within_the_float16_noise_floor(tmp_path):
    """The same rule on the upstream-initialised H = 128 seed-2 model (its own ids, as
    bench/mfc.py draws them), one of the cases plain Q.16 missed (0.0377 against
    float16's 0.0362), on a core with room for it."""
    from tritium.golden.checkpoint import write_checkpoint

    ck = write_checkpoint(tmp_path / "h128", "hgrn-bit", hidden=128, layers=2, vocab=256,
                          seed=2)
    cfg = MfcConfig(tmv=TernaryConfig(simd=16, pe=4, max_in=1024, max_out=1024,
                                      weight_depth=16384, has_t3=0), vmem_depth=8192)
    ag, fp16_rel, fp16_top1 = _fp16_and_core(ck, cfg=cfg, seed=2)
    assert ag.zero_projections == 0 and ag.projections == 13 * 128
    assert ag.top1_agreement >= fp16_top1 - 0.03, (ag, fp16_top1)
    assert ag.rel_max_dlogit <= fp16_rel, (ag, fp16_rel)


@pytest.mark.parametrize("what,factor", [("model.embeddings.weight", 5e-3),
                                         ("model.embeddings.weight", 5e4),
                                         ("attn.g_proj", 1e-2), ("attn.g_proj", 1e2),
                                         ("mlp.gate_proj", 1e-1), ("attn.i_proj", 1e2)])
def test_whole_model_at_scaled_activations(h64_checkpoint, what, factor):
    """Embeddings scaled to a residual RMS of 1e-4 and 1e3, projections scaled so the
    o_proj and down_proj inputs move by decades: the core never computes an all-zero
    projection and stays near the float reference. (The old core's sum of (v·v) >> 16
    gave RMS 0 and all-zero projections; with the residual in plain Q.16 the 1e-4 case
    needed a looser bound, 60 % top-1, as an element held ~6 LSB.)"""
    desc = load_checkpoint(h64_checkpoint(0))
    if what in desc.tensors:
        desc.tensors[what] = desc.tensors[what] * factor
    else:
        for lin in desc.bitlinears():
            if lin.name.endswith(what):
                lin.scale /= factor       # the same codes, factor x the latent weights
    ids = list(np.random.default_rng(0).integers(0, desc.vocab_size, 32))
    ag = agreement(compile_model(desc, CFG), HGRNBitForCausalLM(desc), ids)
    assert ag.zero_projections == 0
    assert ag.top1_agreement >= 0.85, ag
    assert ag.rel_max_dlogit <= 0.1, ag


@pytest.mark.parametrize("lam", [3e-4, 3e3])
def test_residual_from_rms_1e_4_to_1e3_keeps_its_relative_precision(h64_checkpoint, lam):
    """The residual scaled by λ (embeddings, and the o_proj / down_proj weights that add to
    it; every reader of the residual is an RMSNorm, so the model computes the same up to
    its eps terms) to an RMS of about 1e-4 and 1e3: its format follows (x_shift moves by
    -log2 λ, within a bit) and the core stays as close to the float reference at that
    scale as at λ = 1; with every vector in plain Q.16 (the formats before) the small
    end reached 1.27 of max |logit| (bench/results/mfc.json, span_*)."""
    ids = list(np.random.default_rng(0).integers(0, 256, 32))
    got = {}
    for f in (1.0, lam):
        desc = load_checkpoint(h64_checkpoint(0))
        desc.tensors["model.embeddings.weight"] = desc.tensors["model.embeddings.weight"] * f
        for lin in desc.bitlinears():
            if lin.name.endswith(("o_proj", "down_proj")):
                lin.scale /= f
        comp = compile_model(desc, CFG)
        got[f] = comp.x_shift, agreement(comp, HGRNBitForCausalLM(desc), ids)
    (s1, ag1), (sl, ag) = got[1.0], got[lam]
    assert abs((sl - s1) + np.log2(lam)) <= 1, (s1, sl)
    assert ag.zero_projections == 0
    assert ag.top1_agreement >= ag1.top1_agreement - 0.05, (ag, ag1)
    assert ag.rel_max_dlogit <= max(1.25 * ag1.rel_max_dlogit, 0.06), (ag, ag1)


def test_a_collapsed_format_is_far_below_the_default_min_agreement(h64_checkpoint):
    """quant_shift=8: the quantisation factor k = (127 << 8) // max|ũ| is 0 for any
    max|ũ| > 2^15 LSB, so every projection is all zero, as the old core's o_proj was
    (what ``--min-agreement`` catches; the device would still equal this golden)."""
    from tritium.engines.mfc.commands import DEFAULT_MIN_AGREEMENT

    desc = load_checkpoint(h64_checkpoint(0))
    ids = list(np.random.default_rng(0).integers(0, desc.vocab_size, 19))
    ag = agreement(compile_model(desc, MfcConfig(quant_shift=8)), HGRNBitForCausalLM(desc),
                   ids)
    assert ag.zero_projections == ag.projections
    assert ag.top1_agreement < DEFAULT_MIN_AGREEMENT / 4, ag
    good = agreement(compile_model(desc, CFG), HGRNBitForCausalLM(desc), ids)
    assert good.top1_agreement >= DEFAULT_MIN_AGREEMENT + 0.3, good


def test_num_heads_compiles_and_unsupported_fields_are_named(h64_checkpoint):
    desc = load_checkpoint(h64_checkpoint(0))
    ids = list(range(16))
    one = compile_model(desc, CFG)
    desc.config["num_heads"] = 4      # g_norm is over the whole width: no numerical effect
    four = compile_model(desc, CFG)
    assert four.program == one.program
    assert agreement(four, HGRNBitForCausalLM(desc), ids).top1_agreement >= 0.85
    for field, value in (("expand_ratio", 2), ("use_short_conv", True)):
        d = load_checkpoint(h64_checkpoint(0))
        d.config[field] = value
        with pytest.raises(CompileError, match=field):
            compile_model(d, CFG)
