"""Resource/timing sweep: the board's SoC at several TMV SIMD widths.

Each point is a full place and route (:func:`tritium.boards.flow.build`) of the board's
default SoC (or ``base``) with ``tmv.simd`` and ``tmv.pe`` replaced. ``lut_per_lane`` is
the whole SoC's LUTs over its MAC lanes (``simd·pe``); ``lut_per_lane_marginal`` the LUTs added per
lane since the previous, narrower point: the link cancels out, but a memory that yosys
maps to LUT-RAM at one width and to block RAM at another does not (``lutram`` counts it).
Writes ``sweep.json`` and ``sweep.png`` into the output directory. The points are
place-and-route tasks on :class:`tritium.boards.explore.Executor` (an embedded
LocalCluster of one worker per point, at most one per core, unless ``scheduler`` names
a cluster), so they build in parallel; a build's error is raised as it is, not retried.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

from tritium.config import SocConfig

from . import Board
from .flow import build


def point_config(board: Board, simd: int, pe: int, base: SocConfig | None = None):
    cfg = board.config_for(base)
    return cfg.replace_engine(dataclasses.replace(cfg.tmv, simd=simd, pe=pe))


def build_point(task: tuple[str, str, str]) -> dict:
    """One sweep point in a worker: ``(board name, SocConfig JSON, out dir)`` → the build
    report (:func:`tritium.boards.flow.build`, timing not enforced)."""
    from . import get_board

    name, cfg_json, out = task
    return build(get_board(name), SocConfig.from_json(cfg_json), Path(out), check_timing=False)


def sweep(board: Board, simds: list[int], out: Path, pe: int = 1,
          base: SocConfig | None = None, scheduler: str | None = None) -> list[dict]:
    from .explore import Executor

    simds = sorted(simds)
    tasks = [(board.name, point_config(board, simd, pe, base).to_json(),
              str(out / f"simd{simd}")) for simd in simds]
    keys = ["sweep-" + hashlib.sha256(json.dumps(t).encode()).hexdigest()[:20] for t in tasks]
    reports: dict[str, dict] = {}
    with Executor(scheduler, workers=min(len(tasks), os.cpu_count() or 1), retries=0) as ex:
        ex.map(build_point, tasks, keys, lambda k, rep: reports.__setitem__(k, rep))
    rows = []
    for simd, key in zip(simds, keys):
        rep = reports[key]
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
