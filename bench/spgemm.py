"""SpGEMM engine: RTL cycles and merges/cycle on airfoil A·A, the golden model's statistics
and speed on the pyamg matrices and the generators, beside scipy's A @ A in the same run.

Writes bench/results/spgemm.json (flat keys, units in the names). The RTL figure comes
from the Verilator run of :func:`tritium.sim.spgemm.run_spgemm` (its C checked against
the golden and scipy); the cycle estimate is :meth:`SpgemmConfig.row_cycles` summed over
rows and divided by the PEs. Wall times are medians of --repeats runs.
"""

import argparse
import json
import platform
import statistics
import sys
import time

import numpy as np
import scipy.sparse as sp

from tritium.config import SpgemmConfig
from tritium.golden import spgemm as g
from tritium.sim.spgemm import run_spgemm
from _results import save_results  # bench/_results.py (run as a script)

CFG = SpgemmConfig(pes=2, hash_bits=6, max_dim=1024, max_nnz=4096)
GOLDEN_CFG = SpgemmConfig(pes=2, hash_bits=6, max_dim=4096, max_nnz=1 << 18)


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def estimate_cycles(cfg, ref):
    per_row = [cfg.row_cycles(s["probes"], s["inserts"], s["passes"] + 1) for s in ref.row_stats]
    return sum(per_row) / cfg.pes


def adversarial(cfg, rng):
    """Hand-made rows: one dense row wider than the table, one bucket's worth of colliding
    columns, an empty row."""
    wide = sp.csr_matrix(np.ones((1, 600), np.int64))
    cols = g.colliding_columns(cfg, 8)
    bucket = sp.csr_matrix((np.ones(8, np.int64), (np.zeros(8, int), cols)), shape=(1, 600))
    B = sp.vstack([wide, bucket, sp.csr_matrix((1, 600), dtype=np.int64)], format="csr")
    A = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], np.int64))
    return A, B


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    res = {"machine": f"{platform.machine()} python {sys.version.split()[0]}",
           "rtl_config": json.dumps(CFG.to_dict(), sort_keys=True)}

    # ---- RTL: airfoil A·A -----------------------------------------------------------
    A = g.pyamg_matrix("airfoil")
    t0 = time.perf_counter()
    C, cnt = run_spgemm(CFG, A, A, details=True)
    sim_s = time.perf_counter() - t0
    ref = cnt.pop("golden")
    cnt.pop("cached")
    assert g.same_matrix(g.canonical(C), g.scipy_plus_times(A, A))
    cycles = cnt["cycles"]
    res.update({
        "airfoil_rtl_cycles": cycles,
        "airfoil_rtl_products": cnt["products"],
        "airfoil_rtl_merges": cnt["merges"],
        "airfoil_rtl_merges_per_cycle": round(cnt["merges"] / cycles, 4),
        "airfoil_rtl_merges_per_cycle_per_pe": round(cnt["merges"] / cycles / CFG.pes, 4),
        "airfoil_rtl_probes_per_merge": round(cnt["probes"] / cnt["merges"], 4),
        "airfoil_rtl_hazards_forwarded": cnt["hazards"],
        "airfoil_rtl_extra_passes": cnt["passes"],
        **{f"airfoil_rtl_{k}_pe_cycles": cnt[k] for k in
           ("stall_merge", "stall_fetch", "stall_pass", "stall_output", "idle_pe")},
        "airfoil_estimate_cycles": round(estimate_cycles(CFG, ref)),
        "airfoil_estimate_error_pct": round(100 * (estimate_cycles(CFG, ref) - cycles) / cycles, 2),
        "airfoil_gops_at_100mhz": round(2 * cnt["merges"] / cycles * 0.1, 4),
        "airfoil_verilator_wall_s": round(sim_s, 2),
        "airfoil_counters_equal_golden": int(all(
            cnt[hw] == ref.stats[gd] for hw, gd in
            [("products", "products"), ("probes", "probes"), ("collisions", "collisions"),
             ("merges", "merges"), ("passes", "passes"), ("mem_reads", "mem_reads"),
             ("c_words", "out")])),
    })

    # ---- golden statistics and speed vs scipy ---------------------------------------------
    rng = np.random.default_rng(0)
    mats = {name: g.pyamg_matrix(name) for name in ("airfoil", "bar", "local_disc_galerkin_diffusion")}
    mats["power_law"] = g.power_law_graph(2000, 3, rng)
    mats["banded"] = g.banded(2000, 4, rng)
    for name, M in mats.items():
        ref = g.spgemm(GOLDEN_CFG, M, M)
        s = ref.stats
        # products of one pass per row: the merge pressure of the matrix itself
        once = sum(r["products"] // (r["passes"] + 1) for r in ref.row_stats)
        golden_s = median_time(lambda: g.spgemm(GOLDEN_CFG, M, M, check=False), 1)
        scipy_s = median_time(lambda: M @ M, args.repeats)
        res.update({
            f"{name}_nnz": int(M.nnz),
            f"{name}_products_per_output": round(once / max(s["out"], 1), 3),
            f"{name}_replayed_products_fraction": round(1 - once / max(s["products"], 1), 4),
            f"{name}_probes_per_merge": round(s["probes"] / max(s["merges"], 1), 4),
            f"{name}_extra_pass_fraction": round(s["passes"] / M.shape[0], 4),
            f"{name}_golden_s": round(golden_s, 4),
            f"{name}_scipy_s": round(scipy_s, 6),
            f"{name}_golden_over_scipy_ratio": round(golden_s / scipy_s, 1),
        })
    A, B = adversarial(GOLDEN_CFG, rng)
    s = g.spgemm(GOLDEN_CFG, A, B).stats
    res.update({"adversarial_extra_pass_fraction": round(s["passes"] / A.shape[0], 4),
                "adversarial_probes_per_merge": round(s["probes"] / s["merges"], 4)})
    save_results("spgemm", res)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
