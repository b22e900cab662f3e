"""``tritium estimate`` and ``tritium compare``: the cycle/power model, and the model
held against the RTL's hardware counters.

``estimate --model NAME|DIR`` prints the per-token budget of a whole model on a platform
preset (``--platform``, fields overridable: ``--simd --pe --clock --mem-bw --fmt
--rowwise-lanes``): by
default the generic accelerator model (matvecs plus a serialised row-wise unit),
with ``--core mfc`` the MFC token core's own program on its cycle-exact model
(:func:`~tritium.engines.mfc.model.estimate_mfc`: per-unit cycles, TMV busy fraction);
``estimate --spgemm MATRIX`` the cycles of A·A (A·Aᵀ for a non-square A) on a SpGEMM
config, MATRIX a built-in name or a ``.mtx``/``.npz`` file. ``compare [--quick]``
runs a grid of TMV and SpGEMM workloads in Verilator, reads the counters, and writes a
JSON report (estimate and measurement side by side, error per row), a scatter plot and a
roofline plot.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


from tritium import registry
from tritium.cliargs import add_json_flag, engine_name, engines_help, parser_engines
from tritium.config import load_config
from tritium.errors import ConfigError, UsageError

from . import model as M


# ---- estimate -----------------------------------------------------------------------------

def _table(title: str, rows: list[tuple[str, str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, show_header=False)
    t.add_column("quantity", style="bold")
    t.add_column("value", justify="right")
    for k, v in rows:
        t.add_row(k, v)
    Console().print(t)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _engine_estimate(args) -> dict:
    """``--engine NAME --workload W``: the engine's own estimate hook on ``--config`` (an
    engine config of its kind) or the config ``tritium serve --engine NAME`` serves."""
    eng = registry.get(args.engine)
    if not args.workload:
        raise UsageError(f"--engine {eng.name} needs --workload (what to estimate on it)")
    cfg = load_config(args.config) if args.config else eng.served_config()
    if cfg.kind != eng.kind:
        raise ConfigError(f"{args.config} holds a {cfg.kind!r} config; --engine {eng.name} "
                          f"needs a {eng.kind!r} config")
    rep = eng.hook("estimate")(cfg, args.workload, M.platform(args.platform,
                                                               clock_hz=args.clock))
    return {"engine": eng.name, "workload": args.workload, **rep}


def _cores() -> dict:
    """``--core`` choices beyond ``generic``: the engines that estimate a whole model."""
    return {e.name: e for e in parser_engines().values() if e.lm_estimate}


def cmd_estimate(args) -> int:
    given = [w for w in args.workloads if getattr(args, w[0]) is not None]
    if sum(map(bool, (args.model, args.engine))) + len(given) != 1:
        raise M.ModelError("give exactly one workload: --model NAME|DIR, "
                           + "".join(f"{w[1]}, " for w in args.workloads)[:-2]
                           + " or --engine NAME --workload W")
    if args.core != "generic" and not args.model:
        raise M.ModelError(f"--core {args.core} estimates a model: give --model NAME|DIR")
    if args.model:
        est = M.estimate_model if args.core == "generic" \
            else _cores()[args.core].hook("lm_estimate")
        rep = est(args.model, args.platform, simd=args.simd, pe=args.pe,
                  clock_hz=args.clock, mem_bw=args.mem_bw, fmt=args.fmt,
                  rowwise_lanes=args.rowwise_lanes)
    elif args.engine:
        rep = _engine_estimate(args)
    else:
        rep = given[0][2](args, M.platform(args.platform, clock_hz=args.clock))
    if args.json:
        print(json.dumps(rep, indent=2, default=str))
        return 0
    flat = [(k, _fmt(v)) for k, v in rep.items() if not isinstance(v, (dict, list))]
    flat += [(f"resources.{k}", _fmt(v)) for k, v in rep.get("resources", {}).items()]
    flat += [(f"share of cycles: {k}", _fmt(v))
             for k, v in rep.get("sequencer_fractions", {}).items()]
    _table(f"tritium estimate: {rep.get('model') or rep.get('matrix') or rep['workload']}",
           flat)
    for a in rep.get("assumptions", []):
        print(f"  assumption: {a}")
    return 0


# ---- compare ------------------------------------------------------------------------------

def _run_job(job):
    return job()


def compare(quick: bool = True, out_dir: str | Path = "compare-report",
            progress=None, scheduler: str | None = None, workers: int | None = None) -> dict:
    """Run every engine's compare workloads (``Engine.compare``) on the RTL; return the
    report (also written to ``out_dir``): the rows, in the grid's order, and per engine
    with rows ``NAME_max_abs_err_pct``. Each workload is one task on the explore executor
    (:class:`tritium.boards.explore.Executor`: an embedded LocalCluster of ``workers``, or
    ``scheduler``); a lost worker's task is retried. ``progress``: a
    :func:`tritium.progress.make_progress` display, advanced once per workload simulated."""
    import numpy as np

    rng = np.random.default_rng(7)
    t0 = time.time()
    jobs = [job for e in parser_engines().values() if e.compare
            for job in e.hook("compare")(quick, rng)]
    task = progress.add_task("simulating the grid", total=len(jobs)) if progress else None
    from tritium.boards.explore import Executor

    # the keys name this run, so two compares on one shared scheduler do not collide
    run = f"{os.getpid()}-{time.time_ns()}"
    keys = [f"compare-{run}-{i}" for i in range(len(jobs))]
    got: dict[str, dict] = {}

    def on_result(key: str, row: dict) -> None:
        got[key] = row
        if progress:
            progress.advance(task)

    with Executor(scheduler, workers) as ex:
        ex.map(_run_job, jobs, keys, on_result)
    rows = [got[k] for k in keys]
    report = {"quick": quick, "wall_s": round(time.time() - t0, 2), "rows": rows}
    for eng in _engines_of(rows):
        report[f"{eng}_max_abs_err_pct"] = max(abs(r["error_pct"]) for r in rows
                                               if r["engine"] == eng)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(report, indent=2))
    plots(rows, out)
    report["files"] = [str(out / n) for n in ("compare.json", "scatter.png", "roofline.png")]
    return report


def _engines_of(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["engine"] for r in rows))


def plots(rows: list[dict], out: Path) -> None:
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    for eng, mark in zip(_engines_of(rows), "os^Dv<>"):
        pts = [(r["rtl_cycles"], r["estimate_cycles"]) for r in rows if r["engine"] == eng]
        ax.scatter(*zip(*pts), marker=mark, label=eng)
    lim = [1, max(max(r["rtl_cycles"], r["estimate_cycles"]) for r in rows) * 1.5]
    ax.plot(lim, lim, "k--", lw=0.8, label="estimate = RTL")
    ax.set(xscale="log", yscale="log", xlabel="RTL busy cycles (hardware counter)",
           ylabel="model estimate, cycles", title="cycle model vs RTL")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "scatter.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    # the rows that carry a roofline position (single matvec commands)
    roof = [r for r in rows if "intensity" in r]
    for cfg in sorted({r["config"] for r in roof}):
        pts = [r for r in roof if r["config"] == cfg]
        peak, bpc = pts[0]["peak_ops_per_cycle"], pts[0]["bytes_per_cycle"]
        xs = np.logspace(-1, 2, 50)
        ax.plot(xs, np.minimum(peak, bpc * xs), label=f"roof {cfg}")
        ax.scatter([r["intensity"] for r in pts], [r["ops"] / r["rtl_cycles"] for r in pts],
                   label=f"RTL {cfg}")
    ax.set(xscale="log", yscale="log", xlabel="ops per weight byte",
           ylabel="ops per cycle",
           title=f"{'/'.join(_engines_of(roof)).upper()} roofline (measured points)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "roofline.png", dpi=110)
    plt.close(fig)


def cmd_compare(args) -> int:
    from tritium.progress import make_progress

    if args.anchors:  # the published figures only: no Verilator run
        errs = M.anchor_errors()
        if args.json:
            print(json.dumps(errs, indent=2))
            return 0
        _table("model vs published anchors", [
            (f"{a['platform']} {a['model']} {a['metric']}",
             f"{_fmt(a['estimate'])} vs {a['value']:g}: {a['error_pct']:+.1f} %")
            for a in errs])
        worst = max(errs, key=lambda a: abs(a["error_pct"]))
        print(f"{len(errs)} anchors, max |error| {abs(worst['error_pct']):.1f} % "
              f"({worst['platform']} {worst['model']} {worst['metric']})")
        return 0
    with make_progress(not args.quiet) as progress:
        rep = compare(quick=args.quick, out_dir=args.out, progress=progress,
                      scheduler=args.scheduler, workers=args.workers)
    if args.json:
        print(json.dumps(rep, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"estimate vs RTL ({'quick' if args.quick else 'full'} grid, "
                    f"{rep['wall_s']} s)")
    for col in ("engine", "config", "workload", "estimate", "RTL", "error %"):
        t.add_column(col, justify="right" if col in ("estimate", "RTL", "error %") else "left")
    for r in rep["rows"]:
        t.add_row(r["engine"], r["config"], r["workload"], _fmt(r["estimate_cycles"]),
                  str(r["rtl_cycles"]), f"{r['error_pct']:+.2f}")
    Console().print(t)
    print(", ".join(f"{eng} max |error| {rep[f'{eng}_max_abs_err_pct']} %"
                    for eng in _engines_of(rep["rows"])) + f"; wrote {', '.join(rep['files'])}")
    return 0


def register(sub) -> None:
    engines = parser_engines()
    cores = _cores()
    p = sub.add_parser("estimate", help="cycle/bandwidth/power estimate of a model or workload",
                       description="Per-token budget of a ternary LM (HGRN-bit/BitNet preset "
                                   "or checkpoint dir) on a generic accelerator or on an "
                                   "engine that runs whole models (--core "
                                   f"{'|'.join(cores)}), an engine's own workload options, "
                                   "or an engine's own model (--engine NAME --workload W).")
    p.add_argument("--model", help=f"preset ({', '.join(M.MODEL_PRESETS)}) or checkpoint dir")
    p.add_argument("--platform", default="u250", help=f"preset: {', '.join(M.PLATFORMS)}")
    p.add_argument("--core", choices=("generic", *cores), default="generic",
                   help="generic: matvecs + a serialised row-wise unit of the preset's "
                        "lanes (default)" + "".join(f"; {n}: {e.title}, its own model of "
                                                    "the whole program" for n, e in
                                                    cores.items()))
    p.add_argument("--simd", type=int)
    p.add_argument("--pe", type=int)
    p.add_argument("--clock", type=float, help="clock, Hz (e.g. 300e6)")
    p.add_argument("--mem-bw", type=float, help="weight memory bandwidth, bytes/s")
    p.add_argument("--fmt", choices=("t2", "t3"))
    p.add_argument("--rowwise-lanes", type=int,
                   help="elements a cycle of the row-wise unit (--core mfc: the token core's "
                        "vpu_lanes, capped at its widest unit)")
    # an engine's own workload options: its register("estimate", p) adds them and returns
    # (dest, "--OPTION VALUE", estimate(args, platform)), or None
    workloads = tuple(w for w in (e.hook("commands")("estimate", p)
                                  for e in engines.values() if e.commands) if w)
    p.add_argument("--engine", type=engine_name, metavar="NAME",
                   help="an engine's own estimate (with --workload): " + engines_help())
    p.add_argument("--workload", help="with --engine: what to run on it, in the engine's "
                                      "terms (" + "; ".join(
                                          f"{e.name}: {e.workload}"
                                          for e in engines.values()
                                          if e.estimate)
                   + ")")
    p.add_argument("--config", metavar="JSON",
                   help="with --engine: the engine's config (default: the served one)")
    add_json_flag(p)
    p.set_defaults(func=cmd_estimate, workloads=workloads)

    c = sub.add_parser("compare", help="cycle model vs RTL counters over a grid (Verilator)",
                       description="Run the workloads of every engine with a compare grid ("
                                   + ", ".join(e.name for e in engines.values() if e.compare)
                                   + ") in Verilator and compare the hardware counters with "
                                   "the model; writes JSON + PNGs.")
    c.add_argument("--quick", action="store_true", help="small grid (reuses test designs)")
    c.add_argument("--out", default="compare-report", help="output directory")
    c.add_argument("--quiet", action="store_true", help="no progress bar (stderr)")
    c.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="run the grid on an existing Dask scheduler (default: an embedded "
                        "LocalCluster, as tritium explore)")
    c.add_argument("--workers", type=int, help="LocalCluster workers (default: CPU count)")
    c.add_argument("--anchors", action="store_true",
                   help="only the model against every published figure, with its error "
                        "(no simulation)")
    add_json_flag(c)
    c.set_defaults(func=cmd_compare)
