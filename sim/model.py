"""Cycle, bandwidth, power and resource model of the TMV and SpGEMM engines.

Pure functions: a config (or a named platform preset) and a workload go in, a report
``dict`` comes out (FINN-style: the estimate is stored beside the RTL measurement by
``tritium compare``, never instead of it). Nothing here runs a simulation.

TMV (:func:`tmv_matvec`)
    Busy cycles of one ``rows × cols`` command are the config's closed form
    :meth:`TernaryConfig.cycles` (``(words − 1)·k + latency``, proved against the
    hardware counters). The roofline splits it into compute cycles (``words``, one
    weight word per cycle) and memory cycles (``words · word_bytes / bytes_per_cycle``);
    the larger one bounds the command. Given a clock and an external bandwidth in
    bytes/s instead of an integer ``mem_bytes_per_cycle``, ``k`` becomes the fractional
    ``word_bytes · clock / bandwidth`` (a memory controller amortises partial words).

Whole models (:func:`estimate_model`)
    Every BitLinear of every layer plus the lm_head runs as one TMV command; their
    shapes come from :func:`tritium.golden.shapes.hgrn_spec` / ``bitnet_spec`` (so the
    model shapes are read from one place). Row-wise work runs on a separate row-wise
    unit of ``rowwise_lanes`` elements per cycle, serialised with the matvecs (the
    ternip core is one instruction stream). Row-wise cost model: an element-wise op over
    ``n`` elements costs ``ceil(n / rowwise_lanes) + rowwise_latency`` cycles; an RMSNorm
    is two ops (sum of squares, scale), the per-token activation quantisation two
    (max, scale+round), each BitLinear's output rescale one; the MLGRU gate math,
    recurrence, SiLU/sigmoid, residuals and the MLP's SiLU·mul one each (see
    :func:`rowwise_ops`). BitNet attention over a KV cache of ``context`` tokens adds
    scores and weighted sum (``2·H·context`` element ops) and a softmax (3 ops over
    ``heads·context``); its full-precision lm_head is counted as a matvec on the same
    lanes with 8-bit weights (an optimistic ASSUMPTION, flagged in the report).

SpGEMM (:func:`spgemm_estimate`)
    From the golden model's per-row statistics on the actual matrices: each row costs a
    PE ``row_overhead + products + collisions + refusals + extra_passes · (pass_setup +
    drain_extra)`` cycles: a product per cycle (every pass replays the row), a collision
    or a refusal holds the table a cycle; the first pass's fetch and the drains overlap
    the neighbouring rows (two tables per PE, a run-ahead fetcher), but an extra pass of
    the same row waits for its re-fetch behind the drain (constants derived from the PE
    pipeline, see :data:`SPGEMM_TIMING`). Rows are dealt to the first idle PE as
    the engine's dealer does, and the run ends when the last PE finishes.

MFC token core
    The instruction-driven token core's own model (the compiler's program timed by the
    core's cycle-exact model) is the engine's: :func:`tritium.engines.mfc.model.estimate_mfc`,
    built on this module's platforms, shapes and power tables.

Power (:func:`power`)
    ``static_w + Σ events · pJ/event / time`` from the per-family tables in
    ``sim/energy/*.json`` (each number carries its source or says ASSUMPTION).

Resources (:func:`resources`)
    LUT/FF per lane from the measured ECP5 build (bench/results/tmv.json) or the
    published U250 figure, block RAM from the memories' bits, 0 DSP.
"""

from __future__ import annotations

import dataclasses
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from tritium.engines.spgemm.config import SpgemmConfig
from tritium.engines.tmv.config import TernaryConfig
from tritium.errors import ConfigError, TritiumError
from tritium.golden.shapes import (MODEL_PRESETS, CheckpointError, bitnet_spec, hgrn_spec,
                                   read_config)


class ModelError(TritiumError, ValueError):
    """A workload or preset the cycle model cannot take (unknown name, bad number)."""


ENERGY_DIR = Path(__file__).with_name("energy")
#: operations counted per ternary weight (one multiply-accumulate = 2 ops, the usual convention)
OPS_PER_WEIGHT = 2


# ---- model shapes -------------------------------------------------------------------------

def model_config(model: str | dict) -> dict:
    """A preset name, a checkpoint directory / config.json path, or a config dict →
    config.json dict. ModelError names the presets when nothing matches."""
    if isinstance(model, dict):
        return model
    if model in MODEL_PRESETS:
        return dict(MODEL_PRESETS[model], _name=model)
    p = Path(model)
    if p.is_dir():
        p = p / "config.json"
    if not p.is_file():
        raise ModelError(f"unknown model {model!r}: use a preset ({', '.join(MODEL_PRESETS)}) "
                         "or a checkpoint directory with a config.json")
    try:
        cfg = read_config(p)
    except CheckpointError as e:
        raise ModelError(str(e)) from None
    return dict(cfg, _name=str(model))


def _arch(cfg: dict) -> str:
    kind = str(cfg.get("model_type", "")).lower() + " " + " ".join(cfg.get("architectures") or [])
    if "hgrn" in kind.lower():
        return "hgrn"
    if "bitnet" in kind.lower():
        return "bitnet"
    raise ModelError(f"config.json model_type {cfg.get('model_type')!r} is neither HGRN-bit nor "
                     "BitNet; the model estimates those two (set model_type)")


def model_shapes(cfg: dict) -> dict[str, Any]:
    """Architecture, sizes and the (name, out, in) of every ternary matvec per token."""
    arch = _arch(cfg)
    try:
        spec = hgrn_spec(cfg) if arch == "hgrn" else bitnet_spec(cfg, packed=False)
    except CheckpointError as e:
        raise ModelError(str(e)) from None
    linears = [(lin.module, lin.out_features, lin.in_features) for lin in spec.linears]
    dense = []
    if arch == "bitnet":  # full-precision lm_head (tied or not): counted as 8-bit matvec
        dense.append(("lm_head", spec.vocab_size, spec.hidden_size))
    return {"arch": arch, "hidden": spec.hidden_size, "layers": spec.num_layers,
            "vocab": spec.vocab_size, "intermediate": spec.intermediate_size,
            "heads": int(cfg.get("num_attention_heads") or cfg.get("num_heads") or 1),
            "linears": linears, "dense": dense}


def rowwise_ops(shapes: dict, context: int = 512) -> list[tuple[str, int]]:
    """(op, elements) of the non-matvec work of one token (module docstring)."""
    H, I, L = shapes["hidden"], shapes["intermediate"], shapes["layers"]
    ops: list[tuple[str, int]] = []
    for name, out, inp in shapes["linears"] + shapes["dense"]:
        if shapes["arch"] == "hgrn":  # every HGRN BitLinear owns its RMSNorm
            ops += [(f"{name}.norm", inp)] * 2
        ops += [(f"{name}.quant", inp)] * 2 + [(f"{name}.rescale", out)]
    for l in range(L):
        p = f"layers.{l}."
        if shapes["arch"] == "hgrn":
            ops += [(p + "attn_norm", H)] * 2 + [(p + "mlp_norm", H)] * 2
            ops += [(p + op, H) for op in ("f.sigmoid", "i.silu", "one_minus_f", "i_mul",
                                           "h.mul", "h.add", "h.silu", "o_gate.mul",
                                           "residual1", "residual2")]
            if l:
                ops.append((p + "f.lower_bound", H))
            ops += [(p + "g_norm", H)] * 2
            ops += [(p + "mlp.silu", I), (p + "mlp.mul", I)]
        else:
            T, heads = context, shapes["heads"]
            ops += [(p + "input_norm", H)] * 2 + [(p + "post_attn_norm", H)] * 2
            ops += [(p + "attn_sub_norm", H)] * 2 + [(p + "ffn_sub_norm", I)] * 2
            ops += [(p + "attn.scores", H * T), (p + "attn.weighted_sum", H * T)]
            ops += [(p + "attn.softmax", heads * T)] * 3
            ops += [(p + "rope", H), (p + "residual1", H), (p + "residual2", H),
                    (p + "mlp.relu2", I), (p + "mlp.mul", I)]
    if shapes["arch"] == "hgrn":
        ops += [("norm", H)] * 2
    else:
        ops += [("norm", H)] * 2
    return ops


# ---- platforms ----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Platform:
    """An accelerator configured like a published (or a board's) design.

    ``mem_bw`` bytes/s of the weight memory (None: weights on chip, one word per
    cycle). ``rowwise_lanes`` elements/cycle of the row-wise unit; ``rowwise_latency``
    cycles of pipeline fill per row-wise op. ``assumptions`` are printed in docs."""

    name: str
    family: str
    clock_hz: float
    simd: int
    pe: int = 1
    fmt: str = "t2"
    mem_bw: float | None = None
    rowwise_lanes: int = 1
    rowwise_latency: int = 8
    context: int = 512
    assumptions: tuple[str, ...] = ()

    def tmv_config(self, max_in: int = 4096, max_out: int = 4096) -> TernaryConfig:
        return TernaryConfig(simd=self.simd, pe=self.pe, max_in=max_in, max_out=max_out,
                             has_t2=int(self.fmt == "t2"), has_t3=int(self.fmt == "t3"))


PLATFORMS: dict[str, Platform] = {
    "u250": Platform(
        "u250", "ultrascale_plus", 300e6, simd=128, pe=1, fmt="t2", mem_bw=19.2e9,
        rowwise_lanes=2, assumptions=(
            "published: AMD Alveo U250 core at 300 MHz, D=1024, 128 ternary lanes "
            "(a DxD matvec takes D^2/128 cycles), ~76 % of cycles in matmul, ~86 tok/s "
            "on 370M, 53 W board",
            "weights in one DDR4-2400 channel (19.2 GB/s); 2-bit packing; the core "
            "needs 32 B/cycle x 300 MHz = 9.6 GB/s, so it stays compute-bound",
            "row-wise unit of 2 elements/cycle with 8 cycles of fill per op: the one "
            "free parameter, chosen so the row-wise share is ~24 % as published",
            "53 W board power counted as static for one core (the published "
            "14.4 mJ/token at 53 W implies ~3.7k tok/s, i.e. many cores per board)")),
    "stratix10": Platform(
        "stratix10", "stratix10", 60e6, simd=1024, pe=1, fmt="t2", mem_bw=76.8e9,
        rowwise_lanes=2, assumptions=(
            "published: RTL token core on a Stratix 10 (D5005) at 60 MHz; projected "
            "62 tok/s (370M) and 23.8 tok/s (1.3B); billion-parameter scale at 13 W",
            "the paper states no lane count: 1024 ternary lanes is what the two "
            "projections imply with this row-wise model (a fit, not a validation)",
            "weights in the D5005 card's four DDR4-2400 channels (76.8 GB/s; the core needs 15.4 GB/s, so compute-bound); the row-wise unit is the U250 preset's (2 elements/cycle), not refitted")),
    "ecp5-85f": Platform(
        "ecp5-85f", "ecp5", 100e6, simd=64, pe=1, fmt="t2", mem_bw=200e6,
        rowwise_lanes=1, assumptions=(
            "ULX3S LFE5U-85F: TMV simd=64 pe=1 (the synthesised bench config, Fmax "
            "119.6 MHz measured, run at 100 MHz)",
            "weights stream from the board's 16-bit SDR SDRAM at 100 MHz: 200 MB/s peak "
            "(ASSUMPTION: no controller overhead); a billion-weight model is hopelessly "
            "bandwidth-bound here",
            "row-wise unit of 1 element/cycle")),
    "ice40-up5k": Platform(
        "ice40-up5k", "ice40_up5k", 24e6, simd=16, pe=1, fmt="t2", mem_bw=12e6,
        rowwise_lanes=1, assumptions=(
            "iCEBreaker UP5K at 24 MHz, simd=16 (fits 5280 LUT4), weights over QSPI "
            "flash at ~12 MB/s (ASSUMPTION)",)),
}

#: published figures the presets are checked against (docs/model.md, Results)
ANCHORS = [
    {"platform": "u250", "model": "mmfreelm-370m", "metric": "tokens_per_s", "value": 86.0,
     "source": "MatMul-free follow-up on Alveo U250, 300 MHz, 128 lanes"},
    {"platform": "u250", "model": "mmfreelm-370m", "metric": "matmul_fraction", "value": 0.76,
     "source": "same: matmul ~76 % of cycles"},
    {"platform": "u250", "model": "mmfreelm-370m", "metric": "j_per_token", "value": 14.4e-3,
     "source": "same: 14.4 mJ/token at 53 W board power (whole board, many cores)"},
    {"platform": "stratix10", "model": "mmfreelm-370m", "metric": "tokens_per_s",
     "value": 62.0, "source": "Zhu et al. 2024, Stratix 10 at 60 MHz, projected"},
    {"platform": "stratix10", "model": "mmfreelm-1.3b", "metric": "tokens_per_s",
     "value": 23.8, "source": "Zhu et al. 2024, Stratix 10 at 60 MHz, projected"},
    {"platform": "stratix10", "model": "mmfreelm-1.3b", "metric": "power_w", "value": 13.0,
     "source": "Zhu et al. 2024: billion-parameter scale at 13 W"},
]


def platform(name: str | Platform, **override) -> Platform:
    """A preset by name, with fields overridden (``None`` values ignored)."""
    if isinstance(name, Platform):
        base = name
    elif name in PLATFORMS:
        base = PLATFORMS[name]
    else:
        raise ModelError(f"unknown platform {name!r}; choose one of {', '.join(PLATFORMS)}")
    changes = {k: v for k, v in override.items() if v is not None}
    try:
        p = dataclasses.replace(base, **changes)
    except TypeError as e:
        raise ModelError(f"bad platform field: {e}") from None
    _check_platform(p)
    return p


def _check_platform(p: Platform) -> None:
    if not (p.clock_hz > 0 and math.isfinite(p.clock_hz)):
        raise ModelError(f"clock must be a positive frequency in Hz, got {p.clock_hz}")
    if p.mem_bw is not None and not (p.mem_bw > 0 and math.isfinite(p.mem_bw)):
        raise ModelError(f"memory bandwidth must be positive bytes/s, got {p.mem_bw}")
    if p.rowwise_lanes < 1 or p.context < 1:
        raise ModelError("rowwise_lanes and context must be at least 1")
    if p.fmt not in ("t2", "t3"):
        raise ModelError(f"weight format {p.fmt!r} is unknown; use t2 or t3")
    energy_table(p.family)
    p.tmv_config()  # ConfigError for simd/pe out of range


# ---- TMV ----------------------------------------------------------------------------------

def tmv_matvec(cfg: TernaryConfig, rows: int, cols: int, fmt: str = "t2", *,
               clock_hz: float | None = None, mem_bw: float | None = None) -> dict[str, Any]:
    """Cycles of one ``rows × cols`` command and its roofline position.

    Without ``mem_bw`` the memory is the config's own (block RAM or the integer
    ``mem_bytes_per_cycle`` model) and ``cycles`` is exactly ``cfg.cycles``."""
    if rows < 1 or cols < 1:
        raise ModelError(f"a matvec needs rows, cols >= 1, got {rows}x{cols}")
    if fmt not in cfg.formats:
        raise ConfigError(f"format {fmt!r} is not built into this config (built: "
                          f"{cfg.formats}); choose one of those")
    words, wb = cfg.words(rows, cols), cfg.word_bytes(fmt)
    if mem_bw is None:
        k = cfg.transfer_cycles(fmt)
        bpc = cfg.mem_bytes_per_cycle or wb
        cycles = cfg.cycles(rows, cols, fmt)
    else:
        if not clock_hz:
            raise ModelError("a bandwidth in bytes/s needs a clock (clock_hz) to turn into "
                             "bytes per cycle")
        bpc = mem_bw / clock_hz
        k = max(1.0, wb / bpc)
        cycles = (words - 1) * k + cfg.latency
    compute, memory = words, words * wb / bpc
    out = {"rows": rows, "cols": cols, "fmt": fmt, "words": words, "word_bytes": wb,
           "cycles": cycles, "compute_cycles": compute, "memory_cycles": memory,
           "bound": "memory" if memory > compute else "compute",
           "ops": OPS_PER_WEIGHT * rows * cols, "weight_bytes": words * wb,
           "mac_utilization": rows * cols / (cycles * cfg.word_codes),
           "intensity_ops_per_byte": OPS_PER_WEIGHT * rows * cols / (words * wb)}
    if clock_hz:
        out["seconds"] = cycles / clock_hz
    return out


def tmv_stream_cycles(cfg: TernaryConfig, commands) -> int:
    """Busy cycles of back-to-back commands [(rows, cols, fmt), …] (config docstring)."""
    ks = [cfg.transfer_cycles(f) for _, _, f in commands]
    return sum(cfg.words(r, c) * k for (r, c, _), k in zip(commands, ks)) - ks[-1] + cfg.latency


# ---- whole models -------------------------------------------------------------------------

def estimate_model(model: str | dict, plat: str | Platform = "u250", **override) -> dict:
    """Per-token cycle budget, tokens/s, bytes/token, bandwidth, power and resources."""
    p = platform(plat, **override)
    shapes = model_shapes(model_config(model))
    fmt = p.fmt
    max_in = max(i for _, _, i in shapes["linears"] + shapes["dense"])
    max_out = max(o for _, o, _ in shapes["linears"] + shapes["dense"])
    cfg = p.tmv_config(min(max_in, 1 << 20), min(max_out, 1 << 20))
    mv = [tmv_matvec(cfg, o, i, fmt, clock_hz=p.clock_hz, mem_bw=p.mem_bw)
          for _, o, i in shapes["linears"]]
    dense = [tmv_matvec(cfg, o, i, fmt, clock_hz=p.clock_hz,
                        mem_bw=None if p.mem_bw is None else p.mem_bw * cfg.word_bytes(fmt)
                        / cfg.word_codes) for _, o, i in shapes["dense"]]
    ops = rowwise_ops(shapes, p.context)
    rowwise_elems = sum(n for _, n in ops)
    rowwise_cycles = sum(-(-n // p.rowwise_lanes) + p.rowwise_latency for _, n in ops)
    matvec_cycles = sum(m["cycles"] for m in mv + dense)
    cycles = matvec_cycles + rowwise_cycles
    tps = p.clock_hz / cycles
    wbytes = sum(m["weight_bytes"] for m in mv) + sum(o * i for _, o, i in shapes["dense"])
    macs = sum(o * i for _, o, i in shapes["linears"] + shapes["dense"])
    slots = sum(m["words"] for m in mv + dense) * cfg.word_codes
    events = {"ternary_add_per_lane": slots, "rowwise_op": rowwise_elems}
    act_bits = sum(m["words"] for m in mv + dense) * cfg.simd * cfg.act_bits
    if p.mem_bw is None:
        events["bram_read_per_bit"] = 8 * wbytes + act_bits
    else:
        events["ext_mem_byte"] = wbytes
        events["bram_read_per_bit"] = act_bits
    pw = power(p.family, events, 1 / tps, ops=OPS_PER_WEIGHT * macs)
    bound = "memory" if any(m["bound"] == "memory" for m in mv) else "compute"
    return {
        "model": model if isinstance(model, str) else model.get("_name", "config"),
        "arch": shapes["arch"], "platform": p.name, "family": p.family,
        "clock_hz": p.clock_hz, "simd": p.simd, "pe": p.pe, "fmt": fmt,
        "mem_bw_bytes_per_s": p.mem_bw, "rowwise_lanes": p.rowwise_lanes,
        "matvecs_per_token": len(mv) + len(dense), "ternary_weights": macs - sum(
            o * i for _, o, i in shapes["dense"]),
        "matvec_cycles": matvec_cycles, "rowwise_cycles": rowwise_cycles,
        "cycles_per_token": cycles, "matmul_fraction": matvec_cycles / cycles,
        "tokens_per_s": tps, "ms_per_token": 1e3 / tps,
        "weight_bytes_per_token": wbytes, "required_bw_bytes_per_s": wbytes * tps,
        "bound": bound, "gops": OPS_PER_WEIGHT * macs * tps / 1e9,
        **{k: v for k, v in pw.items() if k != "events"},
        "resources": resources(p.family, cfg, fmt, weights_on_chip=p.mem_bw is None,
                               weight_bytes=wbytes),
        "assumptions": list(p.assumptions) + (
            ["BitNet lm_head is full precision: counted as an 8-bit matvec on the TMV lanes "
             "(optimistic)", f"attention over a {p.context}-token KV cache on the row-wise unit"]
            if shapes["arch"] == "bitnet" else []),
    }


def compare_row(engine: str, config: str, workload: str, estimate, measured,
                **extra) -> dict:
    """One row of ``tritium compare``: an engine's workload on a named config, the model's
    cycles beside the RTL's counter and the signed error in percent of the RTL's."""
    return {"engine": engine, "config": config, "workload": workload,
            "estimate_cycles": estimate, "rtl_cycles": measured,
            "error_pct": round(100 * (estimate - measured) / measured, 3), **extra}


def anchor_errors(estimates: dict[tuple[str, str], dict] | None = None) -> list[dict]:
    """The model's error against every published figure in :data:`ANCHORS`."""
    out = []
    for a in ANCHORS:
        key = (a["platform"], a["model"])
        est = (estimates or {}).get(key) or estimate_model(a["model"], a["platform"])
        got = est[a["metric"]]
        out.append({**a, "estimate": got, "error_pct": 100 * (got - a["value"]) / a["value"]})
    return out


# ---- power and resources ------------------------------------------------------------------

@lru_cache(maxsize=None)
def _load_table(family: str) -> dict:
    path = ENERGY_DIR / f"{family}.json"
    if not path.is_file():
        known = sorted(f.stem for f in ENERGY_DIR.glob("*.json"))
        raise ModelError(f"no energy table for device family {family!r}; known: {known}")
    return json.loads(path.read_text())


def energy_table(family: str) -> dict:
    return _load_table(family)


def power(family: str, events: dict[str, float], seconds: float, ops: float = 0.0) -> dict:
    """static + Σ events·pJ over ``seconds`` of work → W, J per run, ops/W."""
    table = energy_table(family)
    pj = table["pj_per_event"]
    unknown = sorted(set(events) - set(pj))
    if unknown:
        raise ModelError(f"events {unknown} have no energy in the {family} table; add them "
                         f"to sim/energy/{family}.json")
    if seconds <= 0:
        raise ModelError(f"run time must be positive, got {seconds}")
    dynamic_j = sum(n * pj[e] for e, n in events.items()) * 1e-12
    static_j = table["static_w"] * seconds
    joules = dynamic_j + static_j
    watts = joules / seconds
    out = {"power_w": watts, "static_w": table["static_w"], "dynamic_w": dynamic_j / seconds,
           "j_per_token": joules, "tokens_per_s_per_w": 1 / joules,
           "events": dict(events)}
    if ops:
        out["gops_per_w"] = ops / joules / 1e9
    return out


def resources(family: str, cfg: TernaryConfig, fmt: str = "t2", *,
              weights_on_chip: bool = True, weight_bytes: int | None = None) -> dict:
    """LUT/FF/BRAM/DSP of a TMV config on ``family`` (per-lane calibration, see tables)."""
    r = energy_table(family)["resources"]
    lanes = cfg.word_codes
    lut = lanes * (r["lut_per_lane"] + r["lut_per_lane_t3_extra"] * cfg.has_t3) + r["control_lut"]
    ff = lanes * r["ff_per_lane"]
    wbits = (8 * weight_bytes if weight_bytes is not None
             else cfg.weight_depth * cfg.line_bits) if weights_on_chip else 0
    abits = cfg.act_depth * cfg.simd * cfg.act_bits
    blocks = -(-wbits // r["block_bits"]) + max(1, -(-abits // r["block_bits"]))
    return {"lut": round(lut), "ff": round(ff), "bram_blocks": blocks, "dsp": 0,
            "lut_kind": r["lut_name"], "fits": lut <= r["luts"] and blocks <= r["blocks"],
            "device_luts": r["luts"], "device_blocks": r["blocks"]}


# ---- SpGEMM -------------------------------------------------------------------------------

#: PE cycle constants of the SpGEMM engine (engines/spgemm/hdl/engine.py, accumulator.py)
SPGEMM_TIMING = {
    # IDLE (take the row) before the first pass
    "row_overhead": 1,
    # START, EXTENT, then F0 -> F1 -> F2 -> FIFO -> load -> issue -> product reg -> R
    # -> read -> S1 before the first product merges, and the RUN->DRAIN handshake
    "pass_setup": 12,
    # a drain walks every entry inserted in the pass (also those at or above the
    # lowered hi, which it discards) and costs entries + 3 (accumulator docstring); an
    # extra pass of a row waits for those 3 cycles before its re-fetch
    "drain_extra": 3,
}


def spgemm_estimate(cfg: SpgemmConfig, A, B, semiring: str = "plus-times", *,
                    golden=None, timing: dict | None = None) -> dict[str, Any]:
    """Cycles of C = A·B on ``cfg`` from the golden model's per-row statistics."""
    from tritium.engines.spgemm import golden as g

    t = {**SPGEMM_TIMING, **(timing or {})}
    ref = golden or g.spgemm(cfg, A, B, semiring)
    row_cycles = []
    for st in ref.row_stats:
        # one cycle per product entering the table (every pass replays the row), one per
        # collision or refusal holding it; the first pass's fetch and every drain overlap
        # the neighbouring work (two tables, run-ahead fetcher), but an extra pass of the
        # same row re-fetches the row behind its table's drain
        row_cycles.append(t["row_overhead"] + st["products"] + st["collisions"] + st["passes"]
                          + st["passes"] * (t["pass_setup"] + t["drain_extra"]))
    free = [0] * cfg.pes
    for rc in row_cycles:  # dealer: a row per cycle to the first idle PE, lowest index
        k = min(range(cfg.pes), key=lambda j: (free[j], j))
        free[k] += rc
    cycles = max(free) + 2 if row_cycles else 2
    st = ref.stats
    words = st["mem_reads"]
    return {"cycles": cycles, "pe_cycles": sum(row_cycles), "products": st["products"],
            "probes": st["probes"], "merges": st["merges"], "out": st["out"],
            "extra_passes": st["passes"], "mem_reads": words,
            "merges_per_cycle": st["merges"] / cycles,
            "formula_cycles": math.ceil(sum(
                cfg.row_cycles(s["probes"], s["out"], s["passes"] + 1)
                for s in ref.row_stats) / cfg.pes)}


def spgemm_power(family: str, cfg: SpgemmConfig, est: dict, clock_hz: float) -> dict:
    word_bits = 2 * cfg.ptr_bits + cfg.index_bits + cfg.value_bits
    events = {"hash_probe": est["probes"], "bram_read_per_bit": est["mem_reads"] * word_bits,
              "link_byte": est["out"] * math.ceil((2 * cfg.index_bits + cfg.value_bits) / 8)}
    out = power(family, events, est["cycles"] / clock_hz, ops=2 * est["products"])
    out["j_per_run"] = out.pop("j_per_token")
    out.pop("tokens_per_s_per_w")
    return out
