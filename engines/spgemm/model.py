"""The SpGEMM engine's estimate hook (sim layer: the cycle model's
:func:`tritium.sim.model.spgemm_estimate` and :func:`~tritium.sim.model.spgemm_power`)."""

from __future__ import annotations



def estimate(cfg, workload: str, plat, semiring: str = "plus-times") -> dict:
    """Cycles, throughput and power of A·A (A·Aᵀ for a non-square A) for the matrix
    ``workload`` (a pyamg example, a fixture name or a ``.mtx``/``.npz`` file) on ``cfg``
    at the platform's clock, the operands normalised as ``Device.spgemm`` takes them (any
    sparse format, floats as fixed point)."""
    from tritium.sim import model as M

    from .driver import prepare, self_product

    op = prepare(cfg, *self_product(spgemm_workload(workload)), semiring)
    est = M.spgemm_estimate(cfg, op.A, op.B, op.semiring)
    rep = {"matrix": workload, "semiring": op.semiring, "pes": cfg.pes,
           "hash_bits": cfg.hash_bits, "clock_hz": plat.clock_hz, **est,
           "seconds": est["cycles"] / plat.clock_hz,
           "gops": 2 * est["products"] / (est["cycles"] / plat.clock_hz) / 1e9,
           **M.spgemm_power(plat.family, cfg, est, plat.clock_hz)}
    rep.pop("events", None)
    return rep



def spgemm_workload(name: str):
    """A named operand A (the product is A·A): a pyamg example, a fixture, or a matrix
    file (:func:`~tritium.engines.spgemm.driver.load_matrix`)."""
    import numpy as np

    from tritium.engines.spgemm import golden as g

    from .driver import load_matrix

    fixtures = {
        "banded250": lambda: g.banded(250, 3, np.random.default_rng(2)),
        "powerlaw200": lambda: g.power_law_graph(200, 3, np.random.default_rng(1)),
        "random64": lambda: g.random_csr(64, 64, 0.08, np.random.default_rng(4), 0, 20),
        **{e: (lambda e=e: g.pyamg_matrix(e)) for e in g.PYAMG_EXAMPLES},
    }
    return load_matrix(name, fixtures)
