"""tritium explore: an estimate sweep and a place-and-route sweep, serial vs Dask.

Writes bench/results/explore.json (flat keys, units in the names, medians; each mode
replaces only its own keys). ``--level estimate`` (the default):

- ``estimate_256_cluster_wall_s``: ``tritium.boards.explore.explore`` over 256 points
  (simd × pe × cores × platforms × models) with a fresh cache, cluster start and
  results/PNG writing included; goal ``estimate_256_goal_s`` (10 s);
- ``estimate_256_serial_wall_s``: the baseline, the same points' ``run_point`` in one
  loop in this process (no cluster, no files), measured in the same run;
- ``estimate_256_cached_wall_s``: the rerun that reads every point from the cache.

``--level pnr [--points N]`` (N = 16, or 4 or 8 for a smoke run): :func:`pnr_spec`, TMV
simd (1, 2, 4, 8; the first N/4) × pe (1, 2, 4, 8) on a small base SoC of the ULX3S-12F
(64-byte frames, 64-entry capacity), N distinct designs, every point estimated and built
by ``tritium.boards.flow.build``:

- ``pnrN_serial_s``: the baseline, ``run_point`` of every point in one loop in this
  process (N builds one after another);
- ``pnrN_dask2_s``: ``explore`` of the same points on an embedded 2-worker LocalCluster
  with a fresh cache, cluster start and result files included;
- ``pnrN_ratio`` = dask2 / serial, goal ``pnrN_goal_ratio`` (0.6); ``pnrN_build_median_s``
  (one build's flow seconds), ``pnrN_points_with_error``. Both runs must agree on every
  point's utilisation (checked), so the ratio compares the same work.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time

from tritium.boards import explore as X
from _results import RESULTS_DIR, save_results  # bench/_results.py (run as a script)

SPEC = {"set": {"simd": [8, 16, 32, 64], "pe": [1, 2, 4, 8], "cores": [1, 2, 4, 8]},
        "platforms": ["u250", "stratix10"], "models": ["mmfreelm-370m", "mmfreelm-1.3b"],
        "level": "estimate"}
#: the board of the place-and-route sweep
PNR_BOARD = "ulx3s-12f"
PNR_WORKERS = 2
PNR_GOAL_RATIO = 0.6


def pnr_spec(n: int = 16) -> dict:
    """``n`` (4, 8 or 16) distinct small designs on :data:`PNR_BOARD`: simd × pe, the
    narrowest simd first."""
    import dataclasses

    from tritium.boards import get_board

    board = get_board(PNR_BOARD)
    cfg = board.default_config()
    tmv = dataclasses.replace(cfg.tmv, simd=1, pe=1, max_in=64, max_out=64, weight_depth=64)
    soc = dataclasses.replace(cfg.replace_engine(tmv), max_payload=64)
    return {"engine": "tmv", "level": "pnr",
            "set": {"simd": [1, 2, 4, 8][:n // 4], "pe": [1, 2, 4, 8]},
            "platforms": ["ecp5-85f"], "models": ["mmfreelm-370m"], "boards": [PNR_BOARD],
            "soc": soc.to_dict()}


def bench_pnr(n: int, reps: int) -> dict:
    spec = pnr_spec(n)
    pts = X.points(spec)
    assert len(pts) == n
    keys = {X.point_key(p) for p in pts}
    serial, dask2 = [], []
    for _ in range(reps):
        t = time.perf_counter()
        rows = [X.run_point(p) for p in pts]
        serial.append(time.perf_counter() - t)
        with tempfile.TemporaryDirectory(prefix="bench-explore-") as tmp:
            t = time.perf_counter()
            rep = X.explore(spec, tmp, workers=PNR_WORKERS)
            dask2.append(time.perf_counter() - t)
        assert rep["ran"] == n and {r["key"] for r in rep["rows"]} == keys
        by_key = {r["key"]: r for r in rep["rows"]}
        for p, row in zip(pts, rows):
            other = by_key[X.point_key(p)]
            assert (row.get("pnr_lut"), row.get("pnr_ff"), row.get("pnr_bram")) == (
                other.get("pnr_lut"), other.get("pnr_ff"), other.get("pnr_bram")), p
    s, d = statistics.median(serial), statistics.median(dask2)
    tag = f"pnr{n}"
    built = [r["pnr_seconds"] for r in rows if r.get("pnr_seconds") is not None]
    return {f"{tag}_board": PNR_BOARD, f"{tag}_repetitions": reps,
            f"{tag}_dask_workers": PNR_WORKERS,
            f"{tag}_serial_s": round(s, 1), f"{tag}_dask2_s": round(d, 1),
            f"{tag}_ratio": round(d / s, 3), f"{tag}_goal_ratio": PNR_GOAL_RATIO,
            f"{tag}_build_median_s": round(statistics.median(built), 1) if built else None,
            f"{tag}_points_with_error": sum(1 for r in rows if r["error"])}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one repetition instead of three")
    ap.add_argument("--level", choices=("estimate", "pnr"), default="estimate",
                    help="the 256-point estimate sweep or the place-and-route sweep")
    ap.add_argument("--points", type=int, choices=(4, 8, 16), default=16,
                    help="--level pnr: points (4 or 8: a smaller smoke run)")
    ap.add_argument("--reps", type=int, help="repetitions (default: 3 estimate, 1 pnr)")
    args = ap.parse_args(argv)
    if args.level == "pnr":
        res = bench_pnr(args.points, args.reps or 1)
        _merge_save(res)
        for k, v in res.items():
            print(f"{k}: {v}")
        return 0
    reps = args.reps or (1 if args.quick else 3)
    pts = X.points(SPEC)
    assert len(pts) == 256
    serial, cluster, cached = [], [], []
    for _ in range(reps):
        t = time.perf_counter()
        rows = [X.run_point(p) for p in pts]
        serial.append(time.perf_counter() - t)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            rep = X.explore(SPEC, tmp, workers=2)
            cluster.append(time.perf_counter() - t)
            assert rep["ran"] == 256
            t = time.perf_counter()
            again = X.explore(SPEC, tmp, workers=2)
            cached.append(time.perf_counter() - t)
            assert again["cached"] == 256
    errors = sum(1 for r in rows if r["error"])
    res = {"machine": f"{platform.machine()} python {sys.version.split()[0]}",
           "repetitions": reps, "estimate_points": 256, "estimate_points_with_error": errors,
           "estimate_256_cluster_workers": 2,
           "estimate_256_cluster_wall_s": round(statistics.median(cluster), 3),
           "estimate_256_serial_wall_s": round(statistics.median(serial), 3),
           "estimate_256_cached_wall_s": round(statistics.median(cached), 3),
           "estimate_256_goal_s": 10}
    _merge_save(res)
    for k, v in res.items():
        print(f"{k}: {v}")
    return 0


def _merge_save(res: dict) -> None:
    """explore.json with ``res``'s keys replaced and the other mode's kept."""
    import json

    path = RESULTS_DIR / "explore.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    save_results("explore", {**old, **res})


if __name__ == "__main__":
    sys.exit(main())
