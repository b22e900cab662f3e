"""Resource/timing sweep: the board's SoC at several TMV SIMD widths.

Each point is a full place and route (:func:`tritium.boards.flow.build`) of the board's
default SoC (or ``base``) with ``tmv.simd`` and ``tmv.pe`` replaced. ``lut_per_lane`` is
the whole SoC's LUTs over its MAC lanes (``simd·pe``); ``lut_per_lane_marginal`` the LUTs added per
lane since the previous, narrower point: the link cancels out, but a memory that yosys
maps to LUT-RAM at one width and to block RAM at another does not (``lutram`` counts it).
Writes ``sweep.json`` and ``sweep.png`` into the output directory.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tritium.config import SocConfig

from . import Board
from .flow import build


def point_config(board: Board, simd: int, pe: int, base: SocConfig | None = None):
    cfg = board.config_for(base)
    return cfg.replace_engine(dataclasses.replace(cfg.tmv, simd=simd, pe=pe))


def sweep(board: Board, simds: list[int], out: Path, pe: int = 1,
          base: SocConfig | None = None) -> list[dict]:
    rows = []
    for simd in sorted(simds):
        rep = build(board, point_config(board, simd, pe, base), out / f"simd{simd}",
                    check_timing=False)
        res = rep["resources"]
        lanes = simd * pe
        row = {"simd": simd, "pe": pe, "lanes": lanes, "lut": res["lut"]["used"],
               "lut_available": res["lut"]["available"], "ff": res["ff"]["used"],
               "bram": res["bram"]["used"],
               "lutram": res.get("lutram", {}).get("used", 0),
               "dsp": res.get("dsp", {}).get("used", 0),
               "fmax_mhz": min(f["achieved_mhz"] for f in rep["fmax"].values()),
               "target_mhz": min(f["target_mhz"] for f in rep["fmax"].values()),
               "lut_per_lane": round(res["lut"]["used"] / lanes, 2), "seconds": rep["seconds"]}
        if rows:
            prev = rows[-1]
            row["lut_per_lane_marginal"] = round(
                (row["lut"] - prev["lut"]) / (lanes - prev["lanes"]), 2)
        rows.append(row)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps({"board": board.name, "part": board.part,
                                                "points": rows}, indent=2) + "\n")
    plot(board, rows, out / "sweep.png")
    return rows


def plot(board: Board, rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullLocator

    simd = [r["simd"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(simd, [r["lut_per_lane"] for r in rows], "o-", label="whole SoC / lanes")
    marg = [(r["simd"], r["lut_per_lane_marginal"]) for r in rows
            if "lut_per_lane_marginal" in r]
    if marg:
        a.plot(*zip(*marg), "s--", label="marginal, per added lane")
    a.set(ylabel="LUT per lane", title=board.part)
    b.plot(simd, [r["fmax_mhz"] for r in rows], "o-", label="achieved")
    b.axhline(rows[0]["target_mhz"], color="gray", ls=":", label="board clock")
    b.set(ylabel="Fmax (MHz)", title=board.name)
    for ax in (a, b):
        ax.set_xscale("log", base=2)
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticks(simd, [str(s) for s in simd])
        ax.set_xlabel("TMV SIMD")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
