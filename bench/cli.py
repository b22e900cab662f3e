"""Start-up time of the ``tritium`` command: ``tritium estimate --model mmfreelm-370m``.

Writes bench/results/cli.json. Each figure is the median wall time of --repeats fresh
processes (``.venv/bin/tritium`` as a user runs it, output discarded), beside two
baselines measured in the same run on the same machine load: ``python -c pass`` (the
interpreter alone) and ``tritium --help`` (the CLI with every command registered).  The
goal is ``estimate_s <= 0.5``; ``estimate_imports_torch`` says whether torch was imported
(it must not be: the model shapes live in tritium.golden.shapes).
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _results import save_results  # bench/_results.py (run as a script)

GOAL_S = 0.5
TRITIUM = Path(sys.executable).with_name("tritium")
ESTIMATE = [str(TRITIUM), "estimate", "--model", "mmfreelm-370m"]


def median_wall_s(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def imports_torch(cmd: list[str]) -> bool:
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "tritium.cli", *cmd[1:]],
                       capture_output=True, text=True, check=True)
    return any(line.rsplit("|", 1)[-1].strip().split(".")[0] == "torch"
               for line in r.stderr.splitlines() if line.startswith("import time:"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args(argv)
    res = {
        # the machine may be shared: its load when the run began, beside its cores
        "load_average_1min": os.getloadavg()[0],
        "cpus": os.cpu_count(),
        "python_pass_s": median_wall_s([sys.executable, "-c", "pass"], args.repeats),
        "help_s": median_wall_s([str(TRITIUM), "--help"], args.repeats),
        "estimate_s": median_wall_s(ESTIMATE, args.repeats),
        "estimate_json_s": median_wall_s(ESTIMATE + ["--json"], args.repeats),
        "estimate_imports_torch": imports_torch(ESTIMATE),
        "goal_estimate_s": GOAL_S,
        "repeats": args.repeats,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    res["estimate_meets_goal"] = res["estimate_s"] <= GOAL_S
    path = save_results("cli", res, sort_keys=True)
    for k, v in sorted(res.items()):
        print(f"{k:24} {v:.3f}" if isinstance(v, float) else f"{k:24} {v}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
