"""The token core's cycle, energy and budget model (sim layer), and its ``estimate`` hook.

:func:`estimate_mfc` runs the instruction-driven token core of
:mod:`tritium.engines.mfc.hdl` instead of the generic "matvecs + serialised row-wise unit"
of :func:`tritium.sim.model.estimate_model`: an :class:`MfcConfig` is built for the
platform (:func:`mfc_config`: TMV simd/pe/format from the preset, ``mem_bytes_per_cycle``
= ``mem_bw / clock`` when the weights are external), the compiler's own program for the
model's shape (:func:`tritium.engines.mfc.compile.shape_program`) is timed by the core's
cycle-exact model (:func:`tritium.engines.mfc.golden.estimate_cycles`, equal to the RTL
counters), and the per-unit counters come out: the sequencer's cycles are exactly
``issue + vpu_busy + scalar_busy + wait_tmv``; ``tmv_busy`` overlaps them. The core's
vector unit takes ``vpu_lanes`` elements a cycle: its widest, :data:`VPU_LANES_MAX`
(or a ``rowwise_lanes`` override), lowered to a power of two the core accepts
(:func:`mfc_config`); with few lanes the row-wise work, not the matmul, limits
``tmv_busy_fraction``. ModelError for a model or platform the core
cannot take.
"""

from __future__ import annotations

import dataclasses

from tritium.engines.mfc.config import (INSTR_FIELDS, VPU_LANES_MAX, MfcConfig, field_limit,
                                        lanes_fit)
from tritium.engines.tmv.config import TMV_FORMATS
from tritium.engines.tmv.model import platform_config
from tritium.errors import ConfigError, TritiumError
from tritium.sim.model import (OPS_PER_WEIGHT, ModelError, Platform, energy_table,
                               model_config, model_shapes, platform, power)


def estimate(cfg, workload: str, plat) -> dict:
    """Per-token budget of the HGRN-bit model ``workload`` (preset or checkpoint dir) on
    the core ``cfg``, the platform giving the clock and the energy table."""
    return estimate_mfc(workload, plat, cfg=cfg)


#: the MFC's instruction fields bound the shapes: TMV cols (and the vector length) in
#: ``a``, TMV rows in ``d``
MFC_FIELD_LIMIT = {"cols": field_limit("a"), "rows": field_limit("d")}

#: operands of each vector op per element: (int32 reads of V or RES, int32 writes to V,
#: int8 writes to ACT); energy accounting of :func:`estimate_mfc`
_MFC_VECTOR_TRAFFIC = {"VADD": (2, 1, 0), "VSUB": (2, 1, 0), "VMUL": (2, 1, 0),
                       "VAFF": (1, 1, 0), "VSIG": (1, 1, 0), "VSILU": (1, 1, 0),
                       "VNORM": (1, 1, 0), "VMAXABS": (1, 0, 0), "VARGMAX": (1, 0, 0),
                       "VQUANT": (1, 0, 1), "VRESCALE": (1, 1, 0)}


def mfc_config(plat: str | Platform, shapes: dict, base: MfcConfig | None = None,
               **override) -> MfcConfig:
    """The token-core configuration a platform implies for a model of ``shapes``
    (:func:`model_shapes`): ``base`` (default :class:`MfcConfig`) with the platform's TMV
    lanes and format, ``max_in``/``max_out`` covering the model's largest BitLinear (the
    lm_head runs in chunks of ``max_out`` rows), ``mem_bytes_per_cycle = floor(mem_bw /
    clock)`` (at least 1) when the weights stream from external memory, ``vpu_lanes``
    the core's widest vector unit (:data:`VPU_LANES_MAX`; a ``rowwise_lanes`` override
    sets it) lowered to the largest power of two the TMV's simd and pe allow
    (:func:`lanes_fit`), and the vector memory, instruction memory and weight lines the
    shape's program needs (:func:`tritium.engines.mfc.compile.shape_footprint`), each at
    least ``base``'s. The platform preset's ``rowwise_lanes`` is the generic estimate's
    fit to a published core's row-wise unit, not this core's."""
    p = platform(plat, **override)
    if shapes["arch"] != "hgrn":
        raise ModelError(f"the MFC token core runs HGRN-bit models; {shapes['arch']} needs "
                         "attention, which the core does not have (use the generic estimate)")
    from tritium.engines.mfc.compile import CompileError

    max_in = max(i for _, _, i in shapes["linears"])
    max_out = max(o for name, o, _ in shapes["linears"] if name != "lm_head")
    if max_in > MFC_FIELD_LIMIT["cols"] or max_out > MFC_FIELD_LIMIT["rows"]:
        widths = dict(INSTR_FIELDS)
        raise ModelError(f"a {max_out}x{max_in} matvec exceeds the core's TMV fields (rows "
                         f"{widths['d']} bits, cols {widths['a']} bits); the MFC estimate "
                         "cannot take this model")
    bpc = 0 if p.mem_bw is None else max(1, int(p.mem_bw // p.clock_hz))
    base = base or MfcConfig()
    try:
        tmv = dataclasses.replace(platform_config(p, max_in, max_out),
                                  weight_depth=base.tmv.weight_depth,
                                  mem_latency=base.tmv.mem_latency, mem_bytes_per_cycle=bpc)
        want = override.get("rowwise_lanes") or VPU_LANES_MAX
        lanes = 1 << (min(want, VPU_LANES_MAX).bit_length() - 1)
        while not lanes_fit(tmv.simd, tmv.pe, lanes):
            lanes //= 2
        cfg = dataclasses.replace(base, tmv=tmv, vpu_lanes=lanes)
        fmt = p.fmt if p.fmt in tmv.formats else tmv.formats[0]
        cfg, need = _fit_memories(cfg, shapes["hidden"], shapes["intermediate"],
                                  shapes["vocab"], shapes["layers"], fmt)
        return dataclasses.replace(cfg, tmv=dataclasses.replace(
            tmv, weight_depth=max(tmv.weight_depth, need["weight_lines"])))
    except (ConfigError, CompileError) as e:
        raise ModelError(f"no MFC configuration for {p.name}: {e}") from None


def _fit_memories(cfg: MfcConfig, hidden: int, intermediate: int, vocab: int, layers: int,
                  fmt: str, grow=lambda n: n) -> tuple[MfcConfig, dict]:
    """``cfg`` with the vector and instruction memories the shape's program needs
    (:func:`tritium.engines.mfc.compile.shape_footprint`, each ``grow``-n), at least its
    own; and that footprint."""
    from tritium.engines.mfc.compile import shape_footprint

    need = shape_footprint(cfg, hidden, intermediate, vocab, layers, fmt)
    return dataclasses.replace(
        cfg, vmem_depth=max(cfg.vmem_depth, grow(need["vmem_elements"])),
        imem_depth=max(cfg.imem_depth, grow(need["instructions"]))), need


#: the weight FIFO's latency allowance of a core reading a LiteDRAM part (:func:`dram_core`)
DRAM_PART_MEM_LATENCY = 32


def dram_core(hidden: int, intermediate: int, vocab: int, layers: int, dram,
              base: MfcConfig | None = None, fmt: str = "t2") -> MfcConfig:
    """A token core for an HGRN-bit model of this shape with its weights in the SoC's
    DRAM ``dram`` (a :class:`~tritium.dram.DramConfig`): ``base``'s TMV lanes and formats
    (default :class:`MfcConfig`'s), ``max_in`` = I (down_proj), ``max_out`` = 2I
    (gate_proj; the lm_head runs in chunks of it), ``weights_dram=1`` with
    ``weight_depth`` = the DRAM's lines and ``mem_latency`` = the ideal part's latency + 2
    (the weight port's registers; :data:`DRAM_PART_MEM_LATENCY` on LiteDRAM's parts; on
    the ideal part with a beat per line the DRAM's
    matvec timing, :func:`tritium.engines.tmv.model.dram_matvec_cycles`, then equals the
    on-chip formula the cycle model uses), the vector and instruction memories the
    shape's program needs (:func:`tritium.engines.mfc.compile.shape_footprint`) rounded up
    to powers of two, at least ``base``'s. ConfigError/CompileError for a shape the
    fields or the DRAM cannot take."""
    from tritium.config import pow2_ceil

    base = base or MfcConfig()
    t = dataclasses.replace(base.tmv, max_in=intermediate, max_out=2 * intermediate,
                            weights_dram=1, mem_bytes_per_cycle=0)
    # the ideal part: its fixed latency; LiteDRAM's parts: a FIFO for their row misses
    # and refreshes (the depth the bare TMV's tests on them use)
    lat = dram.spec.latency + 2 if dram.spec.kind == "ideal" else DRAM_PART_MEM_LATENCY
    t = dataclasses.replace(t, weight_depth=dram.size_bytes // t.line_stride,
                            mem_latency=max(lat, t.line_stride // dram.word_bytes + 2))
    return _fit_memories(dataclasses.replace(base, tmv=t), hidden, intermediate, vocab,
                         layers, fmt, grow=pow2_ceil)[0]


def estimate_mfc(model: str | dict, plat: str | Platform = "u250", *,
                 cfg: MfcConfig | None = None, **override) -> dict:
    """Per-token cycles, per-unit breakdown, tokens/s and power of an HGRN-bit model on
    the MFC token core (module docstring). ``override`` changes platform fields
    (``simd``, ``pe``, ``clock_hz``, ``mem_bw``, ``fmt``); ``cfg`` gives the core
    configuration outright (its TMV as is; the platform then supplies the clock and the
    energy table only)."""
    from tritium.engines.mfc.golden import Op, decode_word, estimate_cycles
    from tritium.engines.mfc.compile import shape_program

    p = platform(plat, **override)
    shapes = model_shapes(model_config(model))
    if cfg is None:
        cfg = mfc_config(plat, shapes, **override)
        given = False
    else:
        if shapes["arch"] != "hgrn":
            mfc_config(p, shapes)  # the same ModelError
        given = True
    fmt = p.fmt if p.fmt in cfg.tmv.formats else cfg.tmv.formats[0]
    H, I, V, L = shapes["hidden"], shapes["intermediate"], shapes["vocab"], shapes["layers"]
    try:
        program = shape_program(cfg, H, I, V, L, fmt)
    except TritiumError as e:  # the shape does not fit the given core (CompileError)
        raise ModelError(f"the core cannot run a {H}/{I}/{V}/{L}-layer model: {e}") from None
    counters = estimate_cycles(cfg, program)
    cycles = counters["cycles"]
    # walk the program once more for the work it does (events), and its matvecs
    t, vl = cfg.tmv, 0
    matvecs, elems = [], 0
    v_read = v_write = act_write = 0
    for word in program:
        ins = decode_word(word)
        op = Op(ins.op)
        if op == Op.SETVL:
            vl = ins.a
        elif op == Op.TMV:
            f = TMV_FORMATS[ins.c & 1]
            matvecs.append({"rows": ins.d, "cols": ins.a, "fmt": f,
                            "words": t.words(ins.d, ins.a),
                            "tmv_cycles": cfg.tmv_cycles(ins.d, ins.a, f)})
        elif op.name in _MFC_VECTOR_TRAFFIC:
            r, w, a = _MFC_VECTOR_TRAFFIC[op.name]
            elems += vl
            v_read, v_write, act_write = v_read + r * vl, v_write + w * vl, act_write + a * vl
    words = sum(m["words"] for m in matvecs)
    wbytes = sum(m["words"] * t.word_bytes(m["fmt"]) for m in matvecs)
    macs = sum(m["rows"] * m["cols"] for m in matvecs)
    tps = p.clock_hz / cycles
    events = {"ternary_add_per_lane": words * t.word_codes,
              "rowwise_op": elems + counters["scalar_busy"],
              "bram_read_per_bit": words * t.simd * t.act_bits + 32 * v_read,
              "bram_write_per_bit": 32 * v_write + 8 * act_write}
    if t.external_memory:
        events["ext_mem_byte"] = wbytes
    else:
        events["bram_read_per_bit"] += 8 * wbytes
    pw = power(p.family, events, 1 / tps, ops=OPS_PER_WEIGHT * macs)
    seq = {k: counters[k] for k in ("issue", "vpu_busy", "scalar_busy", "wait_tmv")}
    assumptions = [] if given else [
        f"MFC on {p.name}: TMV simd={t.simd} pe={t.pe} {fmt} from the platform preset, "
        f"weights {'on chip' if not t.external_memory else f'external at {t.mem_bytes_per_cycle} B/cycle (floor of mem_bw/clock), 1-cycle latency'}; "
        f"the core's vector unit takes vpu_lanes={cfg.vpu_lanes} elements a cycle: its "
        f"widest ({VPU_LANES_MAX}, or --rowwise-lanes), at a power of two the TMV's simd "
        "and pe allow (a core sized for the platform; the preset's rowwise_lanes "
        f"{p.rowwise_lanes} is the generic model's row-wise unit)"]
    assumptions += [
        "timing: the compiler's program for this shape "
        "(tritium.engines.mfc.compile.shape_program) on the cycle-exact core model "
        "(tritium.engines.mfc.golden.estimate_cycles, equal to the RTL counters on the test "
        "model)",
        f"the program's addresses are real: vector memory {cfg.vmem_depth} int32 elements, "
        f"{t.weight_depth} weight lines ({t.weight_depth * t.line_stride / 2**20:.0f} MiB, "
        f"{'in DRAM' if t.weights_dram else 'the weight memory'}), {cfg.imem_depth} "
        f"instructions; the lm_head in {-(-V // t.max_out)} chunk(s) of at most "
        f"{t.max_out} rows with a running argmax, so no memory holds all logits",
        "energy (ASSUMPTION): a rowwise_op per vector element and per busy cycle of the "
        "iterative scalar unit (a 64-bit shift-add step); V and ACT traffic as 32-/8-bit "
        "BRAM bits; activations read simd x 8 bits per weight word",
        f"static power: the {p.family} table's static_w ({energy_table(p.family)['static_w']} W)"]
    return {
        "model": model.get("_name", "config") if isinstance(model, dict) else str(model),
        "arch": shapes["arch"], "core": "mfc", "platform": p.name, "family": p.family,
        "clock_hz": p.clock_hz, "simd": t.simd, "pe": t.pe, "fmt": fmt,
        "mem_bytes_per_cycle": t.mem_bytes_per_cycle, "vpu_elements_per_cycle": cfg.vpu_lanes,
        "mfc": cfg.to_dict(),
        "instructions_per_token": counters["instructions"],
        "matvecs_per_token": len(matvecs), "ternary_weights": macs,
        "cycles_per_token": cycles,
        "tmv_busy_cycles": counters["tmv_busy"], "vpu_busy_cycles": counters["vpu_busy"],
        "scalar_busy_cycles": counters["scalar_busy"], "issue_cycles": counters["issue"],
        "wait_tmv_cycles": counters["wait_tmv"],
        "tmv_busy_fraction": counters["tmv_busy"] / cycles,
        "sequencer_fractions": {k: v / cycles for k, v in seq.items()},
        "tokens_per_s": tps, "ms_per_token": 1e3 / tps,
        "weight_bytes_per_token": wbytes, "required_bw_bytes_per_s": wbytes * tps,
        "bound": "memory" if t.transfer_cycles(fmt) > 1 else "compute",
        "gops": OPS_PER_WEIGHT * macs * tps / 1e9,
        **{k: v for k, v in pw.items()},
        "counters": counters, "matvecs": matvecs,
        "assumptions": assumptions,
    }
