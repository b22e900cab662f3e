"""The SpGEMM engine's estimate hook (sim layer: the cycle model's
:func:`tritium.sim.model.spgemm_estimate` and :func:`~tritium.sim.model.spgemm_power`)."""

from __future__ import annotations

from tritium.engines.spgemm.config import SpgemmConfig

# The compare grid reuses the designs tests/test_*_verilator.py build (cached by content).
COMPARE_CONFIGS = {
    "p2-h4": SpgemmConfig(pes=2, hash_bits=4, max_dim=300, max_nnz=2048),
    "p3-h3": SpgemmConfig(pes=3, hash_bits=3, max_dim=64, max_nnz=512, semirings=0b00101),
}


def compare_grid(quick: bool) -> list[tuple[str, str, str]]:
    """(config, workload, semiring) of ``tritium compare``'s SpGEMM runs."""
    grid = [("p2-h4", "airfoil", "plus-times"), ("p2-h4", "banded250", "plus-times"),
            ("p3-h3", "random64", "min-plus")]
    if not quick:
        grid += [("p2-h4", "powerlaw200", "plus-times")]
    return grid


def compare(quick: bool, rng) -> list:
    """``tritium compare``'s SpGEMM workloads (:func:`compare_grid`): one job per
    product; a job runs the RTL and returns its row (the estimate from the golden's own
    statistics, the closed formula beside it). The matrices are fixed, ``rng`` unused."""
    from tritium.sim import model as M

    from .runner import run_spgemm

    def job(cname, wname, semiring):
        cfg = COMPARE_CONFIGS[cname]
        A = spgemm_workload(wname)
        _, cnt = run_spgemm(cfg, A, A, semiring, details=True)
        est = M.spgemm_estimate(cfg, A, A, semiring, golden=cnt.pop("golden"))
        return M.compare_row("spgemm", cname, f"{wname} {semiring}", est["cycles"],
                             cnt["cycles"], formula_cycles=est["formula_cycles"],
                             extra_passes=est["extra_passes"], products=est["products"])

    return [lambda a=g: job(*a) for g in compare_grid(quick)]


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
