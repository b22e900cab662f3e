"""Design-space exploration on Dask: a declarative sweep, its points run on a cluster.

A *spec* (a dict, or a JSON/YAML file holding one) names::

    engine:    NAME                        # engine swept (default: the matvec unit's)
    set:       {simd: [8, 16], pe: [1, 2]} # config fields -> values (a cross product)
    platforms: ["u250", "ecp5-85f"]        # cycle-model platform presets (sim/model.py)
    models:    ["mmfreelm-370m"]           # model presets or checkpoint directories
    level:     "estimate"                  # how far each point runs
    shapes:    [[8, 32], [16, 64]]         # level rtl: matvec shapes [rows, cols] run

Points are ``set`` × ``platforms`` × ``models``; each is one task, keyed by the content
of the point, its level and the tritium version (:func:`point_key`), so a rerun with the
same cache directory skips the points already finished. Level ``estimate`` runs
:func:`tritium.sim.model.estimate_model` with the point's fields as platform overrides.
Level ``rtl`` (engine ``tmv`` only) adds an axis, ``shapes``, and also runs one
``rows × cols`` matvec per point in Verilator through
:func:`tritium.engines.tmv.runner.run_tmv` on ``TernaryConfig(simd, pe)`` with the fixed
small capacity of the engine's ``rtl`` hook (:mod:`tritium.engines.tmv.explore_runner`; so every point of one simd/pe shares one cached
build, whatever its shape). Its row gets ``rtl_cycles`` (the engine's ``busy_cycles``
counter), ``est_cycles`` (:meth:`TernaryConfig.cycles`, the closed form the cycle model
uses) and ``rtl_cycles_diff = rtl_cycles - est_cycles``. The runner compares every
result beat with the golden inside the simulation; the row also compares ``y`` with
:func:`~tritium.engines.tmv.golden.ternary_matvec` on the host, and a disagreement is the
row's ``error`` (``RTL disagrees with the golden``), which makes the CLI exit 1. The point
key then also holds the Verilator version. Level ``pnr`` is not implemented yet: a
UsageError says so.

The executor (:class:`Executor`) is a ``distributed`` client: an embedded
``LocalCluster`` (one single-threaded worker process per core) by default, or an existing
scheduler by address. A task whose worker fails or is lost is retried (``retries``).
Every finished row is written to the cache as it arrives, so Ctrl-C keeps it.

Bad specs raise :class:`~tritium.errors.UsageError` naming the field and what to write.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable

from tritium import __version__
from tritium.errors import TritiumError, UsageError

LEVELS = ("estimate", "rtl", "pnr")
#: the levels this module runs today (the others are refused with a UsageError)
IMPLEMENTED_LEVELS = ("estimate", "rtl")
SPEC_KEYS = ("engine", "set", "platforms", "models", "level", "shapes")
#: level rtl's default shapes ([rows, cols])
RTL_SHAPES = ([8, 32],)
#: result columns (besides the point's own fields) written to CSV, in this order
RESULT_COLUMNS = ("tokens_per_s", "j_per_token", "power_w", "gops", "lut", "bound")


# ---- the spec -----------------------------------------------------------------------------

def load_spec(path: str | Path) -> dict:
    """A JSON or YAML (``.yaml``/``.yml``) spec file → dict (UsageError when unreadable)."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"explore spec {str(p)!r} does not exist; give a JSON or YAML file")
    text = p.read_text()
    try:
        if p.suffix in (".yaml", ".yml"):
            import yaml

            spec = yaml.safe_load(text)
        else:
            spec = json.loads(text)
    except Exception as e:  # the parsers' own errors differ; all mean "fix the file"
        raise UsageError(f"explore spec {p.name} does not parse: {str(e).splitlines()[0]}")
    if not isinstance(spec, dict):
        raise UsageError(f"explore spec {p.name} must be a mapping of {', '.join(SPEC_KEYS)}")
    return spec


def parse_set(items: Iterable[str]) -> dict[str, list]:
    """CLI ``--set FIELD=V1,V2`` items → {field: [values]} (ints where they parse)."""
    out: dict[str, list] = {}
    for item in items:
        field, eq, values = item.partition("=")
        if not eq or not field or not values:
            raise UsageError(f"--set {item!r}: write FIELD=V1,V2 (e.g. simd=8,16)")
        out[field.strip()] = [_number(v.strip()) for v in values.split(",")]
    return out


def parse_shape(text: str) -> list[int]:
    """CLI ``--shape ROWSxCOLS`` → [rows, cols] (UsageError when malformed)."""
    r, x, c = text.lower().partition("x")
    if not x or not r.strip().isdigit() or not c.strip().isdigit():
        raise UsageError(f"--shape {text!r}: write ROWSxCOLS (e.g. 8x32)")
    return [int(r), int(c)]


def _number(v: str):
    for kind in (int, float):
        try:
            return kind(v)
        except ValueError:
            pass
    return v


def points(spec: dict) -> list[dict]:
    """The spec's points (module docstring), each ``{engine, level, platform, model,
    config}``; UsageError for an unknown key, an empty list, an unknown level or field."""
    from tritium.sim import model as M

    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise UsageError(f"explore spec has unknown keys {unknown}; use {', '.join(SPEC_KEYS)}")
    from tritium import registry

    # the engines whose config prices a whole model: those with an lm_matvecs hook
    sweepable = [e.name for e in registry.engines(installed=False).values() if e.lm_matvecs]
    engine = spec.get("engine", sweepable[0] if sweepable else None)
    level = spec.get("level", "estimate")
    if level not in LEVELS:
        raise UsageError(f"explore level {level!r} is unknown; use one of {', '.join(LEVELS)}")
    if level not in IMPLEMENTED_LEVELS:
        raise UsageError(f"explore level {level!r} is not implemented yet; use "
                         f"{' or '.join(IMPLEMENTED_LEVELS)}")
    rtl_engines = [e.name for e in registry.engines(installed=False).values() if e.rtl]
    if level == "rtl" and engine not in rtl_engines:
        raise UsageError(f"explore level rtl simulates engine {' or '.join(rtl_engines)} "
                         f"only (an engine's rtl hook); drop engine {engine!r} or use level "
                         "estimate")
    if "shapes" in spec and level != "rtl":
        raise UsageError("explore spec 'shapes' applies to level rtl only; drop it or "
                         "set level: rtl")
    shapes = _shapes(spec, registry.get(engine).hook("rtl")) if level == "rtl" else [None]
    if engine not in sweepable:
        raise UsageError(f"explore sweeps whole-model estimates, which engine {engine!r} "
                         f"has no hook for; use {' or '.join(sweepable) or 'a registered one'}")
    sets = spec.get("set") or {}
    if not isinstance(sets, dict):
        raise UsageError("explore spec 'set' must map config fields to lists of values")
    fields = {f.name for f in M.dataclasses.fields(M.Platform)} - {"name", "family",
                                                                   "assumptions"}
    for field, values in sets.items():
        if field not in fields:
            raise UsageError(f"explore cannot set {field!r}; settable: "
                             f"{', '.join(sorted(fields))}")
        if not isinstance(values, list) or not values:
            raise UsageError(f"explore spec set.{field} must be a non-empty list of values")
    plats = _names(spec, "platforms", ["u250"])
    models = _names(spec, "models", ["mmfreelm-370m"])
    for p in plats:
        if p not in M.PLATFORMS:
            raise UsageError(f"explore platform {p!r} is unknown; use {', '.join(M.PLATFORMS)}")
    keys = list(sets)
    out = []
    for combo in itertools.product(*(sets[k] for k in keys)):
        for plat in plats:
            for model in models:
                for shape in shapes:
                    p = {"engine": engine, "level": level, "platform": plat,
                         "model": model, "config": dict(zip(keys, combo))}
                    if shape is not None:
                        p["shape"] = shape
                    out.append(p)
    return out


def _shapes(spec: dict, rtl) -> list[list[int]]:
    shapes = spec.get("shapes", [list(s) for s in RTL_SHAPES])
    cap = rtl.capacity
    if not isinstance(shapes, list) or not shapes:
        raise UsageError("explore spec 'shapes' must be a non-empty list of [rows, cols]")
    for s in shapes:
        if (not isinstance(s, list) or len(s) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in s)
                or not (1 <= s[0] <= cap["max_out"] and 1 <= s[1] <= cap["max_in"])):
            raise UsageError(f"explore shape {s!r}: write [rows, cols] with 1 <= rows <= "
                             f"{cap['max_out']} and 1 <= cols <= {cap['max_in']}")
    return shapes


def _names(spec: dict, key: str, default: list[str]) -> list[str]:
    v = spec.get(key, default)
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
        raise UsageError(f"explore spec {key!r} must be a non-empty list of names")
    return v


def point_key(point: dict) -> str:
    """Content key of a point: its fields, level and the tritium version (a rerun under
    another version recomputes)."""
    content: dict[str, Any] = {"point": point, "tritium": __version__}
    if point["level"] == "rtl":
        from tritium.sim.build import setup_verilator

        content["verilator"] = setup_verilator().version
    blob = json.dumps(content, sort_keys=True)
    return "explore-" + hashlib.sha256(blob.encode()).hexdigest()[:20]


# ---- one point ----------------------------------------------------------------------------

def run_point(point: dict) -> dict:
    """One point at its level → a flat result row (the point's fields, the estimate's
    figures, the config as JSON, the worker that ran it). A model error becomes the row's
    ``error`` so one bad point does not stop the sweep."""
    from tritium.sim import model as M

    row: dict[str, Any] = {"platform": point["platform"], "model": point["model"],
                           "level": point["level"], **point["config"],
                           "config_json": json.dumps(point["config"], sort_keys=True)}
    try:
        e = M.estimate_model(point["model"], point["platform"], **point["config"])
    except TritiumError as err:
        row["error"] = str(err)
    else:
        row.update({k: e[k] for k in RESULT_COLUMNS if k in e})
        row["lut"] = e["resources"].get("device_lut", e["resources"]["lut"])
        row["error"] = ""
        if point["level"] == "rtl":
            try:
                from tritium import registry

                row.update(registry.get(point["engine"]).hook("rtl").run(point))
            except TritiumError as err:
                row["error"] = f"rtl: {err}"
    row["worker"] = _worker_name()
    return row


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"local-{os.getpid()}"


# ---- the executor -------------------------------------------------------------------------

class Executor:
    """A ``distributed`` client: ``scheduler`` None starts an embedded ``LocalCluster`` of
    ``workers`` (default: the CPU count) single-threaded worker processes, else connects
    to ``tcp://HOST:PORT``. A context manager; :meth:`map` runs tasks."""

    def __init__(self, scheduler: str | None = None, workers: int | None = None,
                 retries: int = 2):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise UsageError("tritium explore runs on Dask, which is not installed: "
                             "pip install 'tritium[fpga]'") from None
        self.retries = retries
        self.cluster = None
        try:
            if scheduler is None:
                self.cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1,
                                            threads_per_worker=1, processes=True,
                                            dashboard_address=None)
                self.client = Client(self.cluster)
            else:
                self.client = Client(scheduler, timeout=20)
        except OSError as e:
            raise UsageError(f"cannot reach the Dask scheduler {scheduler!r} ({e}); start one "
                             "with `dask scheduler` or drop --scheduler") from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def map(self, fn: Callable[[Any], dict], items: list, keys: list[str],
            on_result: Callable[[str, dict], None]) -> None:
        """Run ``fn(item)`` for every item as the task ``keys[i]`` (retried ``retries``
        times on a lost worker); ``on_result(key, result)`` as each finishes."""
        from distributed import as_completed

        futures = self.client.map(fn, items, key=keys, retries=self.retries, pure=False)
        for fut in as_completed(futures):
            on_result(fut.key, fut.result())


def explore(spec: dict, out_dir: str | Path, *, scheduler: str | None = None,
            workers: int | None = None, cache_dir: str | Path | None = None,
            progress=None, on_row: Callable[[dict], None] | None = None) -> dict:
    """Run every point of ``spec`` (cached ones read back), write ``results.csv``,
    ``results.json`` and ``pareto.png`` to ``out_dir``; ``on_row(row)`` after each row is
    cached. Returns ``{rows, ran, cached, files, interrupted, points}``; ``rows`` in
    point order."""
    pts = points(spec)
    out = Path(out_dir)
    cache = Path(cache_dir) if cache_dir is not None else out / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    keys = [point_key(p) for p in pts]
    done: dict[str, dict] = {}
    for k in keys:
        f = cache / f"{k}.json"
        if f.is_file():
            done[k] = json.loads(f.read_text())
    cached = len(done)
    todo = [(k, p) for k, p in zip(keys, pts) if k not in done]
    task = progress.add_task("explore", total=len(pts), completed=cached) if progress else None

    def on_result(key: str, row: dict) -> None:
        tmp = cache / f"{key}.json.tmp"
        tmp.write_text(json.dumps(row))
        tmp.replace(cache / f"{key}.json")  # whole files only, even when interrupted
        done[key] = row
        if progress:
            progress.advance(task)
        if on_row:
            on_row(row)

    interrupted = False
    if todo:
        try:
            with Executor(scheduler, workers) as ex:
                ex.map(run_point, [p for _, p in todo], [k for k, _ in todo], on_result)
        except KeyboardInterrupt:
            interrupted = True
    rows = [dict(done[k], key=k) for k in keys if k in done]
    files = write_results(rows, out)
    return {"rows": rows, "ran": len(done) - cached, "cached": cached, "files": files,
            "interrupted": interrupted, "points": len(pts)}


def write_results(rows: list[dict], out: Path) -> list[str]:
    """results.json, results.csv (the union of the rows' columns) and pareto.png."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    cols = list(dict.fromkeys(c for r in rows for c in r))
    with open(out / "results.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    files = [str(out / "results.json"), str(out / "results.csv")]
    ok = [r for r in rows if not r.get("error")]
    if ok:
        plot_pareto(ok, out / "pareto.png")
        files.append(str(out / "pareto.png"))
    return files


def pareto_front(rows: list[dict]) -> list[dict]:
    """Rows no other row beats on all of: higher tok/s, fewer LUT, lower J/token."""
    def beats(a, b):
        ge = (a["tokens_per_s"] >= b["tokens_per_s"] and a["lut"] <= b["lut"]
              and a["j_per_token"] <= b["j_per_token"])
        gt = (a["tokens_per_s"] > b["tokens_per_s"] or a["lut"] < b["lut"]
              or a["j_per_token"] < b["j_per_token"])
        return ge and gt
    return [r for r in rows if not any(beats(o, r) for o in rows)]


def plot_pareto(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    front = pareto_front(rows)
    fig, ax = plt.subplots(figsize=(6, 4))
    sc = ax.scatter([r["lut"] for r in rows], [r["tokens_per_s"] for r in rows],
                    c=[r["j_per_token"] for r in rows], cmap="viridis", s=18)
    ax.scatter([r["lut"] for r in front], [r["tokens_per_s"] for r in front],
               facecolors="none", edgecolors="red", s=60, label="Pareto front")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("LUT (per device)")
    ax.set_ylabel("tokens/s")
    fig.colorbar(sc, label="J/token")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
