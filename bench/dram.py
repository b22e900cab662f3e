"""DRAM memory level: bench/results/dram.json (the memory-level keys; other benches add
SoC-level keys to the same file, so this one merges its keys into it).

In one run, per LiteDRAM part (ULX3S SDR ``mt48lc16m16``, Arty DDR3 ``mt41k128m16``), on
LiteDRAM's simulated controller alone under Verilator (tritium.sim.dram_rtl):

- ``<part>_read_cycles`` / ``_write_cycles``: a sequential stream of ``--beats`` beats
  from beat 0 (median of ``--repeats``);
- ``<part>_read_mb_per_s`` / ``_write_mb_per_s``: sustained bandwidth at the part's
  clock; ``<part>_peak_mb_per_s``: one beat per clock, the baseline;
- ``<part>_read_efficiency`` / ``_write_efficiency``: of that peak;
- ``<part>_read_model_error_pct`` / ``_write_model_error_pct``: the timing model
  (tritium.sim.dram) against those cycles, signed, in percent;
- ``<part>_sim_cycles_per_s``: simulated clocks per wall second of the stream (the
  controller alone, C++ driver);

and the ideal part's model figures beside them (``ideal_*``: latency + one beat per
cycle; it has no DRAM timing to measure). ``--quick``: 16k beats, one repeat.
"""

import argparse
import json
import platform
import statistics
import time

from tritium.dram import PARTS, DramConfig
from tritium.sim import dram as model
from tritium.sim.dram_rtl import Harness
from _results import RESULTS_DIR, save_results  # bench/_results.py (run as a script)

#: the simulated DRAM of each part: 2 MiB holds the longest stream on either
SIZE = 1 << 21


def measure(part: str, beats: int, repeats: int) -> dict:
    p = PARTS[part]
    out = {f"{part}_peak_mb_per_s": round(p.peak_bytes_per_s / 1e6, 3)}
    with Harness(DramConfig(part=part, size=SIZE)) as h:
        for write in (False, True):
            d = "write" if write else "read"
            runs = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                cycles, _ = h.stream(0, beats, write)
                runs.append((cycles, time.perf_counter() - t0))
            cycles = statistics.median(c for c, _ in runs)
            wall = statistics.median(s for _, s in runs)
            predicted = model.stream_cycles(p, beats, write=write).cycles
            out[f"{part}_{d}_cycles"] = cycles
            out[f"{part}_{d}_mb_per_s"] = round(beats * p.port_bits / 8 * p.clk_hz
                                                / cycles / 1e6, 3)
            out[f"{part}_{d}_efficiency"] = round(beats / cycles, 4)
            out[f"{part}_{d}_model_cycles"] = round(predicted, 1)
            out[f"{part}_{d}_model_error_pct"] = round((predicted - cycles) / cycles * 100, 3)
            out[f"{part}_{d}_sim_cycles_per_s"] = round(cycles / wall)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="16k beats, one repeat")
    ap.add_argument("--beats", type=int, default=1 << 17)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    beats, repeats = (1 << 14, 1) if args.quick else (args.beats, args.repeats)
    res = {"dram_machine": f"{platform.machine()}, 2 cores shared",
           "dram_workload": f"{beats} sequential beats from beat 0, read then write, "
                            f"median of {repeats}",
           "dram_controller": "LiteDRAM 2024.12 controller + crossbar + SDRAMPHYModel, "
                              "Verilator, C++ port driver"}
    for part in ("mt48lc16m16", "mt41k128m16"):
        res.update(measure(part, beats, repeats))
    ideal = PARTS["ideal"]
    t = model.stream_cycles(ideal, beats)
    res["ideal_read_model_cycles"] = t.cycles
    res["ideal_read_efficiency"] = round(t.efficiency, 4)
    res["ideal_latency_cycles"] = ideal.latency
    path = RESULTS_DIR / "dram.json"
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged.update(res)
    print(json.dumps(res, indent=2))
    save_results("dram", merged)


if __name__ == "__main__":
    main()
