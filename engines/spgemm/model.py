"""The SpGEMM engine's estimate hook (sim layer: the cycle model's
:func:`tritium.sim.model.spgemm_estimate` and :func:`~tritium.sim.model.spgemm_power`)."""

from __future__ import annotations

from tritium.errors import ShapeError


def estimate(cfg, workload: str, plat, semiring: str = "plus-times") -> dict:
    """Cycles, throughput and power of A·A for the matrix ``workload`` (a pyamg example,
    a fixture name or a ``.mtx``/``.npz`` file) on ``cfg`` at the platform's clock."""
    from tritium.sim import model as M

    A = spgemm_workload(workload)
    est = M.spgemm_estimate(cfg, A, A, semiring)
    rep = {"matrix": workload, "semiring": semiring, "pes": cfg.pes,
           "hash_bits": cfg.hash_bits, "clock_hz": plat.clock_hz, **est,
           "seconds": est["cycles"] / plat.clock_hz,
           "gops": 2 * est["products"] / (est["cycles"] / plat.clock_hz) / 1e9,
           **M.spgemm_power(plat.family, cfg, est, plat.clock_hz)}
    rep.pop("events", None)
    return rep



def spgemm_workload(name: str):
    """A named operand A (the product is A·A): a pyamg example or a fixture."""
    import numpy as np

    from tritium.engines.spgemm import golden as g

    fixtures = {
        "banded250": lambda: g.banded(250, 3, np.random.default_rng(2)),
        "powerlaw200": lambda: g.power_law_graph(200, 3, np.random.default_rng(1)),
        "random64": lambda: g.random_csr(64, 64, 0.08, np.random.default_rng(4), 0, 20),
    }
    if name in fixtures:
        return fixtures[name]()
    if name in g.PYAMG_EXAMPLES:
        return g.pyamg_matrix(name)
    raise ShapeError(f"unknown matrix {name!r}; choose one of "
                     f"{', '.join(list(fixtures) + list(g.PYAMG_EXAMPLES))}")
