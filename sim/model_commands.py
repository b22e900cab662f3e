"""``tritium estimate`` and ``tritium compare``: the cycle/power model, and the model
held against the RTL's hardware counters.

``estimate --model NAME|DIR`` prints the per-token budget of a whole model on a platform
preset (``--platform``, fields overridable: ``--simd --pe --clock --mem-bw --fmt``): by
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
import time
from pathlib import Path


from tritium import registry
from tritium.cliargs import add_json_flag, engine_name, engines_help
from tritium.config import load_config
from tritium.engines.spgemm.config import SpgemmConfig
from tritium.engines.tmv.config import TernaryConfig
from tritium.engines.spgemm.model import spgemm_workload
from tritium.errors import ConfigError, UsageError

from . import model as M

# The compare grid reuses the designs tests/test_*_verilator.py build (cached by content).
TMV_CONFIGS = {
    "bram-s8p3": TernaryConfig(simd=8, pe=3, max_in=64, max_out=32, weight_depth=256),
    "ext-s6p2-l5-b2": TernaryConfig(simd=6, pe=2, max_in=30, max_out=12, weight_depth=128,
                                    mem_latency=5, mem_bytes_per_cycle=2, levels_per_stage=1),
}
TMV_SHAPES = {
    "bram-s8p3": [(32, 64, "t2"), (32, 64, "t3"), (7, 13, "t2"), (1, 1, "t3"), (25, 41, "t3")],
    "ext-s6p2-l5-b2": [(12, 30, "t2"), (12, 30, "t3"), (5, 7, "t2"), (1, 1, "t2")],
}
SPGEMM_CONFIGS = {
    "p2-h4": SpgemmConfig(pes=2, hash_bits=4, max_dim=300, max_nnz=2048),
    "p3-h3": SpgemmConfig(pes=3, hash_bits=3, max_dim=64, max_nnz=512, semirings=0b00101),
}


def spgemm_grid(quick: bool):
    grid = [("p2-h4", "airfoil", "plus-times"), ("p2-h4", "banded250", "plus-times"),
            ("p3-h3", "random64", "min-plus")]
    if not quick:
        grid += [("p2-h4", "powerlaw200", "plus-times")]
    return grid


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


def cmd_estimate(args) -> int:
    if sum(map(bool, (args.model, args.spgemm, args.engine))) != 1:
        raise M.ModelError("give exactly one workload: --model NAME|DIR, --spgemm MATRIX or "
                           "--engine NAME --workload W")
    if args.core == "mfc" and not args.model:
        raise M.ModelError("--core mfc estimates a model: give --model NAME|DIR")
    if args.model:
        if args.core == "mfc":
            from tritium.engines.mfc.model import estimate_mfc as est
        else:
            est = M.estimate_model
        rep = est(args.model, args.platform, simd=args.simd, pe=args.pe,
                  clock_hz=args.clock, mem_bw=args.mem_bw, fmt=args.fmt)
    elif args.engine:
        rep = _engine_estimate(args)
    else:
        from tritium.engines.spgemm.model import estimate

        cfg = SpgemmConfig(pes=args.pes, hash_bits=args.hash_bits, max_dim=1 << 16,
                           max_nnz=1 << 22, max_c_nnz=1 << 22)
        rep = estimate(cfg, args.spgemm, M.platform(args.platform, clock_hz=args.clock),
                       args.semiring)
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

def _tmv_shapes(name: str, quick: bool) -> list[tuple[int, int, str]]:
    return TMV_SHAPES[name][:4] if quick else TMV_SHAPES[name]


def compare(quick: bool = True, out_dir: str | Path = "compare-report",
            progress=None) -> dict:
    """Run the grid on the RTL; return the report (also written to ``out_dir``).
    ``progress``: a :func:`tritium.progress.make_progress` display, advanced once per
    workload simulated."""
    import numpy as np

    from tritium.sim import run_spgemm, run_tmv, run_tmv_commands

    rng = np.random.default_rng(7)
    rows: list[dict] = []
    t0 = time.time()
    runs = sum(len(_tmv_shapes(n, quick)) + 1 for n in TMV_CONFIGS) + len(spgemm_grid(quick))
    task = progress.add_task("simulating the grid", total=runs) if progress else None

    def done() -> None:
        if progress:
            progress.advance(task)

    for name, cfg in TMV_CONFIGS.items():
        shapes = _tmv_shapes(name, quick)
        for r, c, fmt in shapes:
            codes = rng.integers(0, 3, (r, c))
            x = rng.integers(cfg.act_min, cfg.act_max + 1, c)
            _, cnt = run_tmv(cfg, codes, x, fmt)
            est = M.tmv_matvec(cfg, r, c, fmt)
            rows.append(_row("tmv", name, f"{r}x{c} {fmt}", est["cycles"], cnt["busy_cycles"],
                             intensity=est["intensity_ops_per_byte"], ops=est["ops"],
                             peak_ops_per_cycle=M.OPS_PER_WEIGHT * cfg.word_codes,
                             bytes_per_cycle=cfg.mem_bytes_per_cycle or cfg.word_bytes(fmt),
                             bound=est["bound"]))
            done()
        # the same shapes back to back in one run: the stream formula
        jobs = [(rng.integers(0, 3, (r, c)), rng.integers(-128, 128, c), f) for r, c, f in shapes]
        out = run_tmv_commands(cfg, jobs)
        est = M.tmv_stream_cycles(cfg, [(r, c, f) for r, c, f in shapes])
        rows.append(_row("tmv", name, f"stream of {len(shapes)}", est,
                         out["counters"]["busy_cycles"]))
        done()
    for cname, wname, semiring in spgemm_grid(quick):
        cfg = SPGEMM_CONFIGS[cname]
        A = spgemm_workload(wname)
        _, cnt = run_spgemm(cfg, A, A, semiring, details=True)
        est = M.spgemm_estimate(cfg, A, A, semiring, golden=cnt.pop("golden"))
        rows.append(_row("spgemm", cname, f"{wname} {semiring}", est["cycles"], cnt["cycles"],
                         formula_cycles=est["formula_cycles"], extra_passes=est["extra_passes"],
                         products=est["products"]))
        done()
    report = {"quick": quick, "wall_s": round(time.time() - t0, 2), "rows": rows}
    for eng in ("tmv", "spgemm"):
        errs = [abs(r["error_pct"]) for r in rows if r["engine"] == eng]
        report[f"{eng}_max_abs_err_pct"] = max(errs) if errs else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(report, indent=2))
    plots(rows, out)
    report["files"] = [str(out / n) for n in ("compare.json", "scatter.png", "roofline.png")]
    return report


def _row(engine, config, workload, estimate, measured, **extra) -> dict:
    return {"engine": engine, "config": config, "workload": workload,
            "estimate_cycles": estimate, "rtl_cycles": measured,
            "error_pct": round(100 * (estimate - measured) / measured, 3), **extra}


def plots(rows: list[dict], out: Path) -> None:
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    for eng, mark in (("tmv", "o"), ("spgemm", "s")):
        pts = [(r["rtl_cycles"], r["estimate_cycles"]) for r in rows if r["engine"] == eng]
        if pts:
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
    tmv = [r for r in rows if r["engine"] == "tmv" and "intensity" in r]
    for cfg in sorted({r["config"] for r in tmv}):
        pts = [r for r in tmv if r["config"] == cfg]
        peak, bpc = pts[0]["peak_ops_per_cycle"], pts[0]["bytes_per_cycle"]
        xs = np.logspace(-1, 2, 50)
        ax.plot(xs, np.minimum(peak, bpc * xs), label=f"roof {cfg}")
        ax.scatter([r["intensity"] for r in pts], [r["ops"] / r["rtl_cycles"] for r in pts],
                   label=f"RTL {cfg}")
    ax.set(xscale="log", yscale="log", xlabel="ops per weight byte",
           ylabel="ops per cycle", title="TMV roofline (measured points)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "roofline.png", dpi=110)
    plt.close(fig)


def cmd_compare(args) -> int:
    from tritium.progress import make_progress

    with make_progress(not args.quiet) as progress:
        rep = compare(quick=args.quick, out_dir=args.out, progress=progress)
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
    print(f"tmv max |error| {rep['tmv_max_abs_err_pct']} %, spgemm max |error| "
          f"{rep['spgemm_max_abs_err_pct']} %; wrote {', '.join(rep['files'])}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("estimate", help="cycle/bandwidth/power estimate of a model or SpGEMM",
                       description="Per-token budget of a ternary LM (HGRN-bit/BitNet preset "
                                   "or checkpoint dir) on a generic accelerator or "
                                   "(--core mfc) the MFC token core, SpGEMM cycles of A·A, "
                                   "or an engine's own model (--engine NAME --workload W).")
    p.add_argument("--model", help=f"preset ({', '.join(M.MODEL_PRESETS)}) or checkpoint dir")
    p.add_argument("--spgemm", metavar="MATRIX",
                   help="pyamg example or fixture name, or a Matrix Market (.mtx) or .npz "
                        "file; A·A (A·Aᵀ if A is not square)")
    p.add_argument("--platform", default="u250", help=f"preset: {', '.join(M.PLATFORMS)}")
    p.add_argument("--core", choices=("generic", "mfc"), default="generic",
                   help="generic: matvecs + a serialised row-wise unit of the preset's "
                        "lanes (default); mfc: the MFC token core's program on its "
                        "cycle-exact model (vector unit 1 element/cycle), with per-unit "
                        "cycles and the TMV busy fraction (HGRN-bit only)")
    p.add_argument("--simd", type=int)
    p.add_argument("--pe", type=int)
    p.add_argument("--clock", type=float, help="clock, Hz (e.g. 300e6)")
    p.add_argument("--mem-bw", type=float, help="weight memory bandwidth, bytes/s")
    p.add_argument("--fmt", choices=("t2", "t3"))
    p.add_argument("--pes", type=int, default=2, help="SpGEMM row-PEs")
    p.add_argument("--hash-bits", type=int, default=6, help="SpGEMM table: log2 slots")
    p.add_argument("--semiring", default="plus-times")
    p.add_argument("--engine", type=engine_name, metavar="NAME",
                   help="an engine's own estimate (with --workload): " + engines_help())
    p.add_argument("--workload", help="with --engine: what to run on it, in the engine's "
                                      "terms (" + "; ".join(
                                          f"{e.name}: {e.workload}"
                                          for e in registry.engines(installed=False).values()
                                          if e.estimate)
                   + ")")
    p.add_argument("--config", metavar="JSON",
                   help="with --engine: the engine's config (default: the served one)")
    add_json_flag(p)
    p.set_defaults(func=cmd_estimate)

    c = sub.add_parser("compare", help="cycle model vs RTL counters over a grid (Verilator)",
                       description="Run TMV and SpGEMM workloads in Verilator and compare the "
                                   "hardware counters with the model; writes JSON + PNGs.")
    c.add_argument("--quick", action="store_true", help="small grid (reuses test designs)")
    c.add_argument("--out", default="compare-report", help="output directory")
    c.add_argument("--quiet", action="store_true", help="no progress bar (stderr)")
    add_json_flag(c)
    c.set_defaults(func=cmd_compare)
