"""The generic cycle, bandwidth and power model: platforms, model shapes, energy tables,
and the per-token walk of a whole language model.

Pure functions: a config (or a named platform preset) and a workload go in, a report
``dict`` comes out (FINN-style: the estimate is stored beside the RTL measurement by
``tritium compare``, never instead of it, one :func:`compare_row` per workload). Nothing
here runs a simulation, and nothing here is an engine's: each engine's own cycle model is
in its package's ``model`` module (the ``estimate``, ``compare``, ``lm_estimate`` and
``lm_matvecs`` hooks of its description), built on this module's platforms, shapes and
power tables.

Whole models (:func:`estimate_model`)
    Every BitLinear of every layer plus the lm_head runs as one matvec on the registry's
    matvec unit (:func:`matvec_unit`: the first engine with an ``lm_matvecs`` hook, the
    TMV among the built-in ones, which prices each command with its own cycle formula);
    the shapes come from :func:`tritium.golden.shapes.hgrn_spec` / ``bitnet_spec`` (so the
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

Power (:func:`power`)
    ``static_w + Σ events · pJ/event / time`` from the per-family tables in
    ``sim/energy/*.json`` (each number carries its source or says ASSUMPTION).
"""

from __future__ import annotations

import dataclasses
import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any

from tritium.errors import TritiumError
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
    cores: int = 1
    devices: int = 1
    shared_weights: bool = False
    board_w: float | None = None
    assumptions: tuple[str, ...] = ()


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
    "u250-board": Platform(
        "u250-board", "ultrascale_plus", 300e6, simd=128, pe=1, fmt="t2", mem_bw=19.2e9,
        rowwise_lanes=2, cores=43, shared_weights=True, board_w=53.0, assumptions=(
            "the u250 preset's core (published: 300 MHz, 128 lanes, ~86 tok/s on 370M) "
            "replicated over the whole board",
            "ASSUMPTION (a fit): 43 cores, the count the published 14.4 mJ/token at 53 W "
            "implies (3.7k tok/s / 86 tok/s per core); the J/token row then checks the "
            "per-core rate only",
            "ASSUMPTION: the cores run in lock-step on 43 sequences over one broadcast "
            "weight stream from one DDR4-2400 channel (a core's 7.3 GB/s serves all)",
            "ASSUMPTION (power split): the published 53 W is the whole board's power, "
            "the cores' modelled dynamic power included; the fixed share is the rest")),
    "tereffic": Platform(
        "tereffic", "ultrascale_plus", 300e6, simd=1024, pe=1, fmt="t2", mem_bw=None,
        rowwise_lanes=64, cores=5, devices=4, shared_weights=True,
        board_w=16300 / 455 / 4, assumptions=(
            "published (TerEffic): 370M fully on chip across FPGAs, 16,300 tok/s at "
            "455 tok/s/W; its FPGA count, clock and lane count are not used here",
            "ASSUMPTION: 4 UltraScale+ devices at 300 MHz, the weights on chip (one "
            "1024-lane word per cycle per core), each device 5 cores of 1024 lanes and a "
            "64-element row-wise unit (a fit to the published tok/s: a representability "
            "check, not a validation)",
            "ASSUMPTION (power split, a fit): each device's budget is the published "
            "system power (16,300 / 455 W) over 4, so the tok/s/W row checks tok/s only",
            "resources count every weight in one device's BRAM36, so fits reads False: "
            "the published design spreads them over its FPGAs")),
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
    {"platform": "u250-board", "model": "mmfreelm-370m", "metric": "j_per_token",
     "value": 14.4e-3,
     "source": "same: 14.4 mJ/token at 53 W board power (whole board, many cores)"},
    {"platform": "u250-board", "model": "mmfreelm-370m", "metric": "tokens_per_s_per_core",
     "value": 86.0, "source": "same: ~86 tok/s per core, 43 of them on the board"},
    {"platform": "stratix10", "model": "mmfreelm-370m", "metric": "tokens_per_s",
     "value": 62.0, "source": "Zhu et al. 2024, Stratix 10 at 60 MHz, projected"},
    {"platform": "stratix10", "model": "mmfreelm-1.3b", "metric": "tokens_per_s",
     "value": 23.8, "source": "Zhu et al. 2024, Stratix 10 at 60 MHz, projected"},
    {"platform": "stratix10", "model": "mmfreelm-1.3b", "metric": "power_w", "value": 13.0,
     "source": "Zhu et al. 2024: billion-parameter scale at 13 W"},
    {"platform": "tereffic", "model": "mmfreelm-370m", "metric": "tokens_per_s",
     "value": 16300.0, "source": "TerEffic: 370M on chip across FPGAs"},
    {"platform": "tereffic", "model": "mmfreelm-370m", "metric": "tokens_per_s_per_w",
     "value": 455.0, "source": "TerEffic: 370M on chip across FPGAs, 455 tok/s/W"},
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
    if p.cores < 1 or p.devices < 1:
        raise ModelError(f"cores and devices must be at least 1, got cores={p.cores} "
                         f"devices={p.devices}")
    if p.board_w is not None and not (p.board_w > 0 and math.isfinite(p.board_w)):
        raise ModelError(f"board power must be positive watts, got {p.board_w}")
    if p.fmt not in ("t2", "t3"):
        raise ModelError(f"weight format {p.fmt!r} is unknown; use t2 or t3")
    energy_table(p.family)
    matvec_unit()(p, None)  # ConfigError for simd/pe out of range


# ---- whole models -------------------------------------------------------------------------

def matvec_unit():
    """The ``lm_matvecs`` hook of the first registered engine that has one: the unit every
    matvec of :func:`estimate_model` runs on, ``lm_matvecs(platform, shapes) -> dict``
    (``cycles``, ``count``, ``weight_bytes``, ``bound``, ``events``, ``resources``; with
    ``shapes`` None it only checks the platform). ModelError when no engine has one."""
    from tritium import registry

    for eng in registry.engines(installed=False).values():
        if eng.lm_matvecs:
            return eng.hook("lm_matvecs")
    raise ModelError("no registered engine runs the matvecs of a whole-model estimate (an "
                     "Engine.lm_matvecs hook); register one")


def estimate_model(model: str | dict, plat: str | Platform = "u250", **override) -> dict:
    """Per-token cycle budget, tokens/s, bytes/token, bandwidth, power and resources: the
    matvecs on the :func:`matvec_unit`, the row-wise work (:func:`rowwise_ops`) on the
    platform's row-wise unit after them.

    Many-core (:class:`Platform` ``cores``, ``devices``): one core's cycles are priced at
    its share of the device's bandwidth; ``tokens_per_s`` is the system's,
    ``cores · devices · tokens_per_s_per_core``; ``j_per_token`` is one token's dynamic
    energy plus the system's fixed power over the system's rate; ``resources`` are one
    core's, ``device_lut`` / ``fits`` all cores of a device."""
    p = platform(plat, **override)
    shapes = model_shapes(model_config(model))
    fmt = p.fmt
    core_bw = None if p.mem_bw is None else (
        p.mem_bw if p.shared_weights else p.mem_bw / p.cores)
    mv = matvec_unit()(dataclasses.replace(p, mem_bw=core_bw), shapes)
    ops = rowwise_ops(shapes, p.context)
    rowwise_elems = sum(n for _, n in ops)
    rowwise_cycles = sum(-(-n // p.rowwise_lanes) + p.rowwise_latency for _, n in ops)
    matvec_cycles = mv["cycles"]
    cycles = matvec_cycles + rowwise_cycles
    core_tps = p.clock_hz / cycles
    tps = core_tps * p.cores * p.devices
    wbytes = mv["weight_bytes"]
    macs = sum(o * i for _, o, i in shapes["linears"] + shapes["dense"])
    first, *rest = mv["events"].items()  # the matvec lanes' adds first, as power() sums them
    events = dict([first, ("rowwise_op", rowwise_elems), *rest])
    if p.shared_weights and "ext_mem_byte" in events:  # one broadcast read serves all cores
        events["ext_mem_byte"] /= p.cores
    static_w = None
    if p.board_w is not None:
        dyn = power(p.family, events, 1 / core_tps)["dynamic_w"] * p.cores
        if dyn > p.board_w:
            raise ModelError(f"{p.cores} cores draw {dyn:.3g} W dynamic, more than the "
                             f"{p.board_w:g} W board budget of {p.name}; use fewer cores or "
                             "a larger board_w")
        static_w = p.devices * (p.board_w - dyn)
    elif p.devices > 1:
        static_w = p.devices * energy_table(p.family)["static_w"]
    pw = power(p.family, events, 1 / tps, ops=OPS_PER_WEIGHT * macs, static_w=static_w)
    res = dict(mv["resources"])
    res["device_lut"] = res["lut"] * p.cores
    res["fits"] = res["fits"] and res["device_lut"] <= res["device_luts"]
    streams = 1 if p.shared_weights else p.cores
    return {
        "model": model if isinstance(model, str) else model.get("_name", "config"),
        "arch": shapes["arch"], "platform": p.name, "family": p.family,
        "clock_hz": p.clock_hz, "simd": p.simd, "pe": p.pe, "fmt": fmt,
        "cores": p.cores, "devices": p.devices,
        "mem_bw_bytes_per_s": p.mem_bw, "rowwise_lanes": p.rowwise_lanes,
        "matvecs_per_token": mv["count"], "ternary_weights": macs - sum(
            o * i for _, o, i in shapes["dense"]),
        "matvec_cycles": matvec_cycles, "rowwise_cycles": rowwise_cycles,
        "cycles_per_token": cycles, "matmul_fraction": matvec_cycles / cycles,
        "tokens_per_s": tps, "tokens_per_s_per_core": core_tps, "ms_per_token": 1e3 / core_tps,
        "weight_bytes_per_token": wbytes,
        "required_bw_bytes_per_s": wbytes * core_tps * streams,
        "bound": mv["bound"], "gops": OPS_PER_WEIGHT * macs * tps / 1e9,
        **{k: v for k, v in pw.items() if k != "events"},
        "resources": res,
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


def anchor_table(errors: list[dict] | None = None) -> str:
    """The Markdown table of every anchor (:func:`anchor_errors`) with the assumptions of
    its platform: docs/model.md's ``bench:anchors`` part, and ``compare --anchors``."""
    errors = anchor_errors() if errors is None else errors
    lines = ["| platform | model | metric | published | model | error | source |",
             "|---|---|---|---|---|---|---|"]
    for a in errors:
        lines.append(f"| {a['platform']} | {a['model']} | {a['metric']} | {a['value']:g} | "
                     f"{a['estimate']:.4g} | {a['error_pct']:+.1f} % | {a['source']} |")
    lines += ["", "Assumptions of the anchored platforms:", ""]
    for name in dict.fromkeys(a["platform"] for a in errors):
        p = PLATFORMS[name]
        lines.append(f"- **{name}** (cores {p.cores}, devices {p.devices}): "
                     + "; ".join(p.assumptions))
    return "\n".join(lines)


# ---- power ------------------------------------------------------------------

@lru_cache(maxsize=None)
def _load_table(family: str) -> dict:
    path = ENERGY_DIR / f"{family}.json"
    if not path.is_file():
        known = sorted(f.stem for f in ENERGY_DIR.glob("*.json"))
        raise ModelError(f"no energy table for device family {family!r}; known: {known}")
    return json.loads(path.read_text())


def energy_table(family: str) -> dict:
    return _load_table(family)


def power(family: str, events: dict[str, float], seconds: float, ops: float = 0.0,
          static_w: float | None = None) -> dict:
    """static + Σ events·pJ over ``seconds`` of work → W, J per run, ops/W. ``static_w``
    (None: the family table's) is the fixed power of the whole system doing the work."""
    table = energy_table(family)
    pj = table["pj_per_event"]
    unknown = sorted(set(events) - set(pj))
    if unknown:
        raise ModelError(f"events {unknown} have no energy in the {family} table; add them "
                         f"to sim/energy/{family}.json")
    if seconds <= 0:
        raise ModelError(f"run time must be positive, got {seconds}")
    if static_w is None:
        static_w = table["static_w"]
    dynamic_j = sum(n * pj[e] for e, n in events.items()) * 1e-12
    static_j = static_w * seconds
    joules = dynamic_j + static_j
    watts = joules / seconds
    out = {"power_w": watts, "static_w": static_w, "dynamic_w": dynamic_j / seconds,
           "j_per_token": joules, "tokens_per_s_per_w": 1 / joules,
           "events": dict(events)}
    if ops:
        out["gops_per_w"] = ops / joules / 1e9
    return out
