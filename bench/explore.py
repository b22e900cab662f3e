"""tritium explore: a 256-point estimate sweep on an embedded 2-worker Dask LocalCluster.

Writes bench/results/explore.json (flat keys, units in the names, medians):

- ``estimate_256_cluster_wall_s``: ``tritium.boards.explore.explore`` over 256 points
  (simd × pe × cores × platforms × models) with a fresh cache, cluster start and
  results/PNG writing included; goal ``estimate_256_goal_s`` (10 s);
- ``estimate_256_serial_wall_s``: the baseline, the same points' ``run_point`` in one
  loop in this process (no cluster, no files), measured in the same run;
- ``estimate_256_cached_wall_s``: the rerun that reads every point from the cache.

Not measured yet: the 16-point place-and-route sweep (explore's ``pnr`` level is not
implemented).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time

from tritium.boards import explore as X
from _results import save_results  # bench/_results.py (run as a script)

SPEC = {"set": {"simd": [8, 16, 32, 64], "pe": [1, 2, 4, 8], "cores": [1, 2, 4, 8]},
        "platforms": ["u250", "stratix10"], "models": ["mmfreelm-370m", "mmfreelm-1.3b"],
        "level": "estimate"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one repetition instead of three")
    args = ap.parse_args(argv)
    reps = 1 if args.quick else 3
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
    save_results("explore", res)
    for k, v in res.items():
        print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
