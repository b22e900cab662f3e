"""Cycle/power model: accuracy against the RTL, speed, and the platform presets beside
the published accelerators.

Writes bench/results/model.json (flat keys, units in the names) and regenerates the
results table of docs/model.md (between its ``bench:model`` markers):

- ``tmv_max_abs_err_pct``, ``spgemm_max_abs_err_pct``: largest |estimate − RTL| / RTL
  over the full ``tritium compare`` grid (hardware busy-cycle counters in Verilator);
- ``estimate_ms_2p7b``: median wall time of ``estimate_model("mmfreelm-2.7b")`` once
  imported; ``estimate_cold_ms_2p7b``: a fresh interpreter's import + first estimate
  (``import tritium.golden.checkpoint`` pulls in torch);
- ``<platform>_<model>_tokens_per_s`` / ``_j_per_token`` / ``_power_w`` for the U250 and
  ECP5-85F presets and 370M/1.3B/2.7B, and the published anchors with the model's error.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tritium.sim import model as M
from _results import save_results  # bench/_results.py (run as a script)

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "model.md"
BEGIN, END = "<!-- bench:model begin -->", "<!-- bench:model end -->"
#: the anchors' part of docs/model.md, M.anchor_table() (tests/test_model.py checks it)
ANCHORS_BEGIN, ANCHORS_END = "<!-- bench:anchors begin -->", "<!-- bench:anchors end -->"
MODELS = ("mmfreelm-370m", "mmfreelm-1.3b", "mmfreelm-2.7b")
PLATFORMS = ("u250", "ecp5-85f")


def key(s: str) -> str:
    return s.replace("mmfreelm-", "").replace(".", "p").replace("-", "_")


def table(res: dict, anchors: list[dict]) -> str:
    lines = ["| platform | model | tok/s | J/token | W | bound | published | model error |",
             "|---|---|---|---|---|---|---|---|"]
    for p in PLATFORMS:
        for m in MODELS:
            k = f"{key(p)}_{key(m)}"
            pub = [a for a in anchors if a["platform"] == p and a["model"] == m]
            pubs = "; ".join(f"{a['metric']} {a['value']:g}" for a in pub) or "–"
            errs = "; ".join(f"{a['error_pct']:+.1f} %" for a in pub) or "–"
            lines.append(f"| {p} | {m} | {res[k + '_tokens_per_s']:.3g} | "
                         f"{res[k + '_j_per_token']:.3g} | {res[k + '_power_w']:.3g} | "
                         f"{res[k + '_bound']} | {pubs} | {errs} |")
    lines += ["", "| anchor | published | model | error |", "|---|---|---|---|"]
    for a in anchors:
        lines.append(f"| {a['platform']} {a['model']} {a['metric']} ({a['source']}) | "
                     f"{a['value']:g} | {a['estimate']:.4g} | {a['error_pct']:+.1f} % |")
    lines += ["", f"Estimate vs RTL over the compare grid: TMV max |error| "
                  f"{res['tmv_max_abs_err_pct']} %, SpGEMM max |error| "
                  f"{res['spgemm_max_abs_err_pct']} % ({res['compare_rows']} rows); "
                  f"2.7B estimate {res['estimate_ms_2p7b']} ms warm, "
                  f"{res['estimate_cold_ms_2p7b']} ms cold (imports)."]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="quick compare grid")
    args = ap.parse_args(argv)
    from tritium.sim.model_commands import compare

    res: dict = {"machine": f"{platform.machine()} python {sys.version.split()[0]}"}
    with tempfile.TemporaryDirectory() as tmp:
        rep = compare(quick=args.quick, out_dir=tmp)
    res["tmv_max_abs_err_pct"] = rep["tmv_max_abs_err_pct"]
    res["spgemm_max_abs_err_pct"] = rep["spgemm_max_abs_err_pct"]
    res["compare_rows"] = len(rep["rows"])
    res["compare_wall_s"] = rep["wall_s"]
    for r in rep["rows"]:
        if r["engine"] == "spgemm":
            k = f"spgemm_{r['config']}_{r['workload']}".replace(" ", "_").replace("-", "_")
            res[k + "_rtl_cycles"] = r["rtl_cycles"]
            res[k + "_estimate_cycles"] = r["estimate_cycles"]
            res[k + "_error_pct"] = r["error_pct"]

    M.estimate_model("mmfreelm-2.7b", "u250")
    times = []
    for _ in range(20):
        t = time.perf_counter()
        M.estimate_model("mmfreelm-2.7b", "u250")
        times.append(time.perf_counter() - t)
    res["estimate_ms_2p7b"] = round(1e3 * statistics.median(times), 2)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from tritium.sim import model as M; "
                    "M.estimate_model('mmfreelm-2.7b', 'u250')"], check=True)
    res["estimate_cold_ms_2p7b"] = round(1e3 * (time.perf_counter() - t), 1)
    res["estimate_goal_ms"] = 100

    ests = {}
    for p in PLATFORMS + ("stratix10",):
        for m in MODELS:
            e = ests[(p, m)] = M.estimate_model(m, p)
            if p in PLATFORMS:
                k = f"{key(p)}_{key(m)}"
                res[k + "_tokens_per_s"] = round(e["tokens_per_s"], 3)
                res[k + "_j_per_token"] = round(e["j_per_token"], 5)
                res[k + "_power_w"] = round(e["power_w"], 3)
                res[k + "_required_bw_gb_per_s"] = round(e["required_bw_bytes_per_s"] / 1e9, 3)
                res[k + "_matmul_fraction"] = round(e["matmul_fraction"], 4)
                res[k + "_bound"] = e["bound"]
    anchors = M.anchor_errors(ests)
    for a in anchors:
        k = f"anchor_{key(a['platform'])}_{key(a['model'])}_{a['metric']}"
        res[k + "_published"] = a["value"]
        res[k + "_estimate"] = round(a["estimate"], 5)
        res[k + "_error_pct"] = round(a["error_pct"], 2)

    save_results("model", res)
    doc = DOC.read_text()
    for begin, end, text in ((BEGIN, END, table(res, anchors)),
                             (ANCHORS_BEGIN, ANCHORS_END, M.anchor_table(anchors))):
        if begin in doc and end in doc:
            head, rest = doc.split(begin, 1)
            doc = head + begin + "\n" + text + "\n" + end + rest.split(end, 1)[1]
    DOC.write_text(doc)
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
