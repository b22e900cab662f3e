"""The TMV's points of ``tritium explore --level rtl`` (the engine's ``rtl`` hook,
:class:`RtlPoints`): one ``point["shape"]`` matvec per point in Verilator on the point's
simd/pe at a small fixed capacity, checked against the golden, with the engine's
closed-form cycles beside the hardware counter (docs/explore.md)."""

from __future__ import annotations

import hashlib
import json

#: the capacity of every level-rtl build: small, so a build takes seconds and is shared by
#: all points with the same simd/pe (shapes must fit: rows <= max_out, cols <= max_in)
CAPACITY = {"max_in": 64, "max_out": 32, "weight_depth": 256}


def rtl_config(point: dict):
    """The TernaryConfig level rtl builds for ``point``: its simd/pe (the platform
    preset's where the point does not set them) at :data:`CAPACITY`, t2 only."""
    from tritium.engines.tmv.config import TernaryConfig
    from tritium.sim import model as M

    plat = M.PLATFORMS[point["platform"]]
    cfg = point["config"]
    return TernaryConfig(simd=cfg.get("simd", plat.simd), pe=cfg.get("pe", plat.pe),
                         has_t3=0, **CAPACITY)


def run(point: dict) -> dict:
    """One ``point["shape"]`` matvec in Verilator (module docstring): random codes and
    activations seeded by the point's content, so a rerun replays the same data.
    Returns ``rtl_cycles``, ``est_cycles``, ``rtl_cycles_diff``, ``rtl_config``;
    SimulationError when the RTL's ``y`` differs from the golden's."""
    import numpy as np

    from tritium.engines.tmv.golden import ternary_matvec
    from tritium.engines.tmv.runner import run_tmv
    from tritium.errors import SimulationError

    cfg = rtl_config(point)
    rows, cols = point["shape"]
    seed = int(hashlib.sha256(json.dumps(point, sort_keys=True).encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 3, size=(rows, cols))
    x = rng.integers(cfg.act_min, cfg.act_max + 1, size=cols).tolist()
    y, counters = run_tmv(cfg, codes, x, "t2")
    want, _ = ternary_matvec(cfg, codes, x)
    if list(map(int, y)) != list(map(int, want)):
        raise SimulationError(f"RTL disagrees with the golden for simd={cfg.simd} "
                              f"pe={cfg.pe} shape {rows}x{cols}; the engine is wrong, "
                              "not the sweep")
    est = cfg.cycles(rows, cols, "t2")
    return {"rows": rows, "cols": cols, "rtl_cycles": counters["busy_cycles"],
            "est_cycles": est, "rtl_cycles_diff": counters["busy_cycles"] - est,
            "rtl_config": json.dumps(cfg.to_dict(), sort_keys=True)}


class RtlPoints:
    """What ``tritium explore`` asks the engine's ``rtl`` hook: the build's ``capacity``
    (the shapes a spec may ask) and ``run(point) -> row fields``."""

    capacity = CAPACITY
    config = staticmethod(rtl_config)
    run = staticmethod(run)
