"""The TMV engine's estimate hook (sim layer: the cycle model's
:func:`tritium.sim.model.tmv_matvec`)."""

from __future__ import annotations

from tritium.errors import UsageError


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
