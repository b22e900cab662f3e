"""Simulated cycles per second of the cocotb + Verilator flow on the TernaryDot bench.

Writes bench/results/sim_speed.json. All variants run the same 16-lane TernaryDot model,
in one run, so they share the machine's load: (a) Python touching every cycle (bare
coroutine, and tritium's stream helpers), (b) Python only waiting while the GPI clock
runs, (c) a bare Verilator C++ loop as the ceiling. Medians of --repeats runs.
"""

import argparse
import json
import platform
import statistics
import sys

from tritium.engines.tmv.config import TernaryDotConfig
from tritium.sim.build import build
from tritium.sim.run import simulate
from tritium.sim.speed import build_cpp_loop, run_cpp_loop
from tritium.engines.tmv.dot_runner import design
from _results import save_results  # bench/_results.py (run as a script)



def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the cycle counts")
    args = ap.parse_args(argv)
    cfg = TernaryDotConfig(lanes=16)
    d = design(cfg)
    cyc = {k: int(v * args.scale) for k, v in
           {"python_every_cycle": 100_000, "stream_helpers": 50_000,
            "python_waits": 1_000_000, "cpp_loop": 20_000_000}.items()}
    model = build(d)
    out = simulate(model, "tritium.sim.speed", inputs={**cyc, "repeats": args.repeats},
                   stall_limit=10**9)
    exe = build_cpp_loop(d)
    cpp = [run_cpp_loop(exe, cyc["cpp_loop"]) for _ in range(args.repeats)]
    med = {k: statistics.median(v) for k, v in out.items()}
    res = {
        "design": f"TernaryDot lanes={cfg.lanes} acc_bits={cfg.acc_bits}",
        "machine": f"{platform.machine()} {platform.processor() or ''} python {sys.version.split()[0]}".strip(),
        "repeats": args.repeats,
        "cocotb_python_every_cycle_cycles_per_s": round(med["python_every_cycle"]),
        "cocotb_stream_helpers_cycles_per_s": round(med["stream_helpers"]),
        "cocotb_python_waits_cycles_per_s": round(med["python_waits"]),
        "verilator_cpp_loop_cycles_per_s": round(statistics.median(cpp)),
        "anchor_python_every_cycle_cycles_per_s": 96_000,
        "anchor_python_waits_cycles_per_s": 600_000,
        "anchor_cpp_loop_small_counter_cycles_per_s": 15_000_000,
    }
    save_results("sim_speed", res)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
