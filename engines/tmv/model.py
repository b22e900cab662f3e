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

