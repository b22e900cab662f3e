"""The TMV engine's estimate and compare hooks (sim layer: the cycle model's
:func:`tritium.sim.model.tmv_matvec` and :func:`~tritium.sim.model.tmv_stream_cycles`,
held against the RTL's counters by ``tritium compare``)."""

from __future__ import annotations

from tritium.engines.tmv.config import TernaryConfig
from tritium.errors import UsageError

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


def estimate(cfg, workload: str, plat) -> dict:
    """One ``ROWSxCOLS[:FMT]`` command on ``cfg`` at the platform's clock: cycles (exactly
    ``cfg.cycles``), roofline position, seconds. UsageError for another workload form."""
    from tritium.sim.model import tmv_matvec

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
    read command to the n-th beat: ``part.latency + n - 1`` for the ideal part (one beat a
    cycle). Valid while the weight FIFO covers the loop (``mem_latency >= B + latency of
    the part + 1``; the served configs' 16 does). Returns ``cycles``, ``compute_cycles``
    (words), ``stream_cycles``, ``beats``, ``bytes`` (what ``dram_bytes_read`` counts) and
    ``efficiency`` (beats per cycle over the command: the share of the port's peak).
    ConfigError for a part the model has no stream time for."""
    from tritium.errors import ConfigError

    beat = dram.word_bytes
    B = cfg.line_stride // beat
    words = cfg.words(rows, cols)
    beats = words * B
    part = dram.spec
    if part.kind != "ideal":
        raise ConfigError(f"no DRAM stream model for {part.kind!r} parts in the TMV "
                          "estimate yet; use the ideal part")
    stream = part.latency + beats - 1
    cycles = cfg.latency - cfg.mem_latency + 2 + stream
    return {"cycles": cycles, "compute_cycles": words, "stream_cycles": stream,
            "beats": beats, "bytes": beats * beat, "efficiency": beats / cycles}


def compare(quick: bool, rng) -> list:
    """``tritium compare``'s TMV workloads: per config of :data:`COMPARE_CONFIGS` each
    shape (the first four with ``quick``) alone, then all of them back to back in one run
    (the stream formula). Returns one job per simulation, in order; a job runs the RTL
    and returns its row (:func:`tritium.sim.model.compare_row`, with the roofline
    position of a single command). ``rng`` draws the weights and activations as the
    jobs run."""
    from tritium.sim import model as M

    from .runner import run_tmv, run_tmv_commands

    def single(name, cfg, r, c, fmt):
        codes = rng.integers(0, 3, (r, c))
        x = rng.integers(cfg.act_min, cfg.act_max + 1, c)
        _, cnt = run_tmv(cfg, codes, x, fmt)
        est = M.tmv_matvec(cfg, r, c, fmt)
        return M.compare_row("tmv", name, f"{r}x{c} {fmt}", est["cycles"], cnt["busy_cycles"],
                             intensity=est["intensity_ops_per_byte"], ops=est["ops"],
                             peak_ops_per_cycle=M.OPS_PER_WEIGHT * cfg.word_codes,
                             bytes_per_cycle=cfg.mem_bytes_per_cycle or cfg.word_bytes(fmt),
                             bound=est["bound"])

    def stream(name, cfg, shapes):
        jobs = [(rng.integers(0, 3, (r, c)), rng.integers(-128, 128, c), f) for r, c, f in shapes]
        out = run_tmv_commands(cfg, jobs)
        est = M.tmv_stream_cycles(cfg, [(r, c, f) for r, c, f in shapes])
        return M.compare_row("tmv", name, f"stream of {len(shapes)}", est,
                             out["counters"]["busy_cycles"])

    jobs = []
    for name, cfg in COMPARE_CONFIGS.items():
        shapes = COMPARE_SHAPES[name][:4] if quick else COMPARE_SHAPES[name]
        jobs += [lambda a=(name, cfg, *s): single(*a) for s in shapes]
        jobs.append(lambda a=(name, cfg, shapes): stream(*a))
    return jobs
