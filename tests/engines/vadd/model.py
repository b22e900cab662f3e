"""The vector-add engine's cycle model (what ``tritium estimate --engine vadd`` prints)."""

from __future__ import annotations

from tritium.errors import UsageError


def estimate(cfg, workload: str, plat) -> dict:
    """A run of ``n = int(workload)`` elements at the platform's clock."""
    try:
        n = int(workload)
    except ValueError:
        raise UsageError(f"vadd workload {workload!r}: give the vector length n") from None
    if not 1 <= n <= cfg.depth:
        raise UsageError(f"vadd workload n={n}: the engine takes 1..{cfg.depth} elements")
    cycles = cfg.cycles(n)
    return {"elements": n, "cycles": cycles, "clock_hz": plat.clock_hz,
            "seconds": cycles / plat.clock_hz}
