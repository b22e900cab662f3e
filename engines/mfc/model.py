"""The token core's estimate hook (sim layer: the cycle model's
:func:`tritium.sim.model.estimate_mfc`)."""

from __future__ import annotations


def estimate(cfg, workload: str, plat) -> dict:
    """Per-token budget of the HGRN-bit model ``workload`` (preset or checkpoint dir) on
    the core ``cfg``, the platform giving the clock and the energy table."""
    from tritium.sim.model import estimate_mfc

    return estimate_mfc(workload, plat, cfg=cfg)

