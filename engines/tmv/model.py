"""The TMV engine's cycle, bandwidth and resource model (sim layer), and its hooks:
``estimate`` (one command), ``compare`` (held against the RTL's counters by ``tritium
compare``) and ``lm_matvecs`` (the matvec unit of the generic whole-model estimate,
:func:`tritium.sim.model.estimate_model`).

Cycles (:func:`tmv_matvec`)
    Busy cycles of one ``rows × cols`` command are the config's closed form
    :meth:`TernaryConfig.cycles` (``(words − 1)·k + latency``, proved against the
    hardware counters). The roofline splits it into compute cycles (``words``, one
    weight word per cycle) and memory cycles (``words · word_bytes / bytes_per_cycle``);
    the larger one bounds the command. Given a clock and an external bandwidth in
    bytes/s instead of an integer ``mem_bytes_per_cycle``, ``k`` becomes the fractional
    ``word_bytes · clock / bandwidth`` (a memory controller amortises partial words).

Whole models (:func:`lm_matvecs`)
    Every BitLinear of every layer plus the lm_head runs as one command of the TMV the
    platform's lanes make (:func:`platform_config`); BitNet's full-precision lm_head as a
    command with 8-bit weights on the same lanes.

Resources (:func:`resources`)
    LUT/FF per lane from the measured ECP5 build (bench/results/tmv.json) or the
    published U250 figure, block RAM from the memories' bits, 0 DSP.
"""

from __future__ import annotations

from typing import Any

from tritium.engines.tmv.config import TernaryConfig
from tritium.errors import ConfigError, UsageError
from tritium.sim.model import OPS_PER_WEIGHT, ModelError, energy_table

# The compare grid reuses the designs tests/test_*_verilator.py build (cached by content).
COMPARE_CONFIGS = {
    "bram-s8p3": TernaryConfig(simd=8, pe=3, max_in=64, max_out=32, weight_depth=256),
    "ext-s6p2-l5-b2": TernaryConfig(simd=6, pe=2, max_in=30, max_out=12, weight_depth=128,
                                    mem_latency=5, mem_bytes_per_cycle=2, levels_per_stage=1),
}
COMPARE_SHAPES = {
    "bram-s8p3": [(32, 64, "t2"), (32, 64, "t3"), (7, 13, "t2"), (1, 1, "t3"), (25, 41, "t3")],
    "ext-s6p2-l5-b2": [(12, 30, "t2"), (12, 30, "t3"), (5, 7, "t2"), (1, 1, "t2")],
}


def platform_config(p, max_in: int = 4096, max_out: int = 4096) -> TernaryConfig:
    """The TMV a platform preset's ``simd``, ``pe`` and ``fmt`` make (ConfigError for lanes
    out of range)."""
    return TernaryConfig(simd=p.simd, pe=p.pe, max_in=max_in, max_out=max_out,
                         has_t2=int(p.fmt == "t2"), has_t3=int(p.fmt == "t3"))


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


def lm_matvecs(p, shapes: dict | None) -> dict | None:
    """The ``lm_matvecs`` hook: the matvecs of one token of a model of ``shapes``
    (:func:`tritium.sim.model.model_shapes`) on the TMV of platform ``p``
    (:func:`platform_config`, its weights at ``p.mem_bw``, on chip when None). Returns
    ``cycles``, ``count``, ``weight_bytes``, ``bound`` (memory when any ternary matvec
    is), ``events`` (the energy table's, without the row-wise unit's) and ``resources``.
    With ``shapes`` None only checks that the platform's lanes make a TMV (ConfigError)
    and returns None."""
    if shapes is None:
        platform_config(p)
        return None
    fmt = p.fmt
    max_in = max(i for _, _, i in shapes["linears"] + shapes["dense"])
    max_out = max(o for _, o, _ in shapes["linears"] + shapes["dense"])
    cfg = platform_config(p, min(max_in, 1 << 20), min(max_out, 1 << 20))
    mv = [tmv_matvec(cfg, o, i, fmt, clock_hz=p.clock_hz, mem_bw=p.mem_bw)
          for _, o, i in shapes["linears"]]
    # the dense lm_head streams 8-bit weights: a word of word_codes weights per
    # word_bytes of bandwidth becomes word_codes bytes
    dense = [tmv_matvec(cfg, o, i, fmt, clock_hz=p.clock_hz,
                        mem_bw=None if p.mem_bw is None else p.mem_bw * cfg.word_bytes(fmt)
                        / cfg.word_codes) for _, o, i in shapes["dense"]]
    wbytes = sum(m["weight_bytes"] for m in mv) + sum(o * i for _, o, i in shapes["dense"])
    words = sum(m["words"] for m in mv + dense)
    events = {"ternary_add_per_lane": words * cfg.word_codes}
    act_bits = words * cfg.simd * cfg.act_bits
    if p.mem_bw is None:
        events["bram_read_per_bit"] = 8 * wbytes + act_bits
    else:
        events["ext_mem_byte"] = wbytes
        events["bram_read_per_bit"] = act_bits
    return {"cycles": sum(m["cycles"] for m in mv + dense), "count": len(mv) + len(dense),
            "weight_bytes": wbytes,
            "bound": "memory" if any(m["bound"] == "memory" for m in mv) else "compute",
            "events": events,
            "resources": resources(p.family, cfg, fmt, weights_on_chip=p.mem_bw is None,
                                   weight_bytes=wbytes)}


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


def estimate(cfg, workload: str, plat) -> dict:
    """One ``ROWSxCOLS[:FMT]`` command on ``cfg`` at the platform's clock: cycles (exactly
    ``cfg.cycles``), roofline position, seconds. UsageError for another workload form."""
    shape, _, fmt = workload.partition(":")
    try:
        rows, cols = (int(v) for v in shape.lower().split("x"))
    except ValueError:
        raise UsageError(f"TMV workload {workload!r}: give ROWSxCOLS[:t2|t3], e.g. "
                         "256x512:t2") from None
    return tmv_matvec(cfg, rows, cols, fmt or cfg.formats[0], clock_hz=plat.clock_hz)



def dram_matvec_cycles(cfg, dram, rows: int, cols: int, base: int = 0) -> dict:
    """Busy cycles of one ``rows × cols`` command on a TMV whose weights are in DRAM
    (``cfg.weights_dram``), alone on the DRAM port, and how they split.

    The engine requests one weight line per word; its :class:`~tritium.hdl.mem.
    DramWeightPort` reads a line as ``B = line_stride / beat`` beats, one per cycle when the
    controller takes one, so the words arrive as one stream of ``words · B`` beats from beat
    ``base · B``. The engine takes a word a cycle, so the stream is the bound whenever
    ``B >= 1``: cycles = max(compute, stream) + overheads with

        cycles = (latency - mem_latency) + 2 + stream(words · B)

    where ``latency - mem_latency`` is the engine's pipeline behind its memory (decode,
    adder tree, accumulator: :attr:`TernaryConfig.latency`), 2 the weight port's
    request and line registers, and ``stream(n)`` the controller's time from the first
    read command to the n-th beat: :func:`tritium.sim.dram.stream_cycles` from beat
    ``base · B`` — ``part.latency + n - 1`` for the ideal part (one beat a cycle, exact),
    and for LiteDRAM's parts its refresh, row-opening and controller-pipeline terms (the
    link idle, so the arbiter always grants the engine; rounded to a cycle, within 2 % of
    the RTL). Valid while the weight FIFO covers the loop (``mem_latency >= B + latency of
    the part + 1``; the served configs' 16 does). Returns ``cycles``, ``compute_cycles``
    (words), ``stream_cycles``, ``beats``, ``bytes`` (what ``dram_bytes_read`` counts) and
    ``efficiency`` (beats per cycle over the command: the share of the port's peak).
    ConfigError for a part the model has no stream time for."""
    from tritium.errors import ConfigError
    from tritium.sim.dram import stream_cycles

    beat = dram.word_bytes
    B = cfg.line_stride // beat
    words = cfg.words(rows, cols)
    beats = words * B
    part = dram.spec
    try:
        st = stream_cycles(part, beats, base * B)
    except ConfigError as e:
        raise ConfigError(f"no DRAM stream model for the TMV on part {part.name!r}: {e}") \
            from None
    stream = st.cycles if part.kind != "ideal" else int(st.cycles)
    cycles = cfg.latency - cfg.mem_latency + 2 + stream
    if part.kind != "ideal":
        cycles = round(cycles)
    return {"cycles": cycles, "compute_cycles": words, "stream_cycles": stream,
            "beats": beats, "bytes": beats * beat, "efficiency": beats / cycles}


def compare(quick: bool, rng) -> list:
    """``tritium compare``'s TMV workloads: per config of :data:`COMPARE_CONFIGS` each
    shape (the first four with ``quick``) alone, then all of them back to back in one run
    (the stream formula). Returns one job per simulation, in order; a job runs the RTL
    and returns its row (:func:`tritium.sim.model.compare_row`, with the roofline
    position of a single command). ``rng`` draws the weights and activations as the
    jobs run."""
    from tritium.sim.model import compare_row

    from .runner import run_tmv, run_tmv_commands

    def single(name, cfg, r, c, fmt):
        codes = rng.integers(0, 3, (r, c))
        x = rng.integers(cfg.act_min, cfg.act_max + 1, c)
        _, cnt = run_tmv(cfg, codes, x, fmt)
        est = tmv_matvec(cfg, r, c, fmt)
        return compare_row("tmv", name, f"{r}x{c} {fmt}", est["cycles"], cnt["busy_cycles"],
                             intensity=est["intensity_ops_per_byte"], ops=est["ops"],
                             peak_ops_per_cycle=OPS_PER_WEIGHT * cfg.word_codes,
                             bytes_per_cycle=cfg.mem_bytes_per_cycle or cfg.word_bytes(fmt),
                             bound=est["bound"])

    def stream(name, cfg, shapes):
        jobs = [(rng.integers(0, 3, (r, c)), rng.integers(-128, 128, c), f) for r, c, f in shapes]
        out = run_tmv_commands(cfg, jobs)
        est = tmv_stream_cycles(cfg, [(r, c, f) for r, c, f in shapes])
        return compare_row("tmv", name, f"stream of {len(shapes)}", est,
                             out["counters"]["busy_cycles"])

    jobs = []
    for name, cfg in COMPARE_CONFIGS.items():
        shapes = COMPARE_SHAPES[name][:4] if quick else COMPARE_SHAPES[name]
        jobs += [lambda a=(name, cfg, *s): single(*a) for s in shapes]
        jobs.append(lambda a=(name, cfg, shapes): stream(*a))
    return jobs
