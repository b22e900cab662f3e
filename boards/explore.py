"""Design-space exploration on Dask: a declarative sweep, its points run on a cluster.

A *spec* (a dict, or a JSON/YAML file holding one) names::

    engine:    NAME                        # engine swept (default: the matvec unit's)
    set:       {simd: [8, 16], pe: [1, 2]} # config fields -> values (a cross product)
    platforms: ["u250", "ecp5-85f"]        # cycle-model platform presets (sim/model.py)
    models:    ["mmfreelm-370m"]           # model presets or checkpoint directories
    level:     "estimate"                  # how far each point runs
    shapes:    [[8, 32], [16, 64]]         # level rtl (or pnr): matvec shapes run
    boards:    ["icebreaker"]              # level pnr: boards each point is built for
    soc:       {...} or "soc.json"         # level pnr: base SocConfig (default: the board's)

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
key then also holds the Verilator version.

Level ``pnr`` adds the axis ``boards`` (names of :data:`tritium.boards.BOARDS` with an
open-flow bitstream; required) and builds every point on its board with
:func:`tritium.boards.flow.build` (the function ``tritium build`` runs; seed
:data:`~tritium.boards.DEFAULT_SEED`, ``tritium build``'s default, so its rebuild of a row places the same way; timing not enforced) in a temporary directory on the worker, after the
estimate (and the rtl run when the spec gives ``shapes``). The built SoC
(:func:`pnr_config`) is ``soc`` (a SocConfig dict or JSON file; default the board's
:meth:`~tritium.boards.Board.default_config` for the engine) at the board's clock, its
engine's config with every swept field that is a field of that config replaced (``simd``,
``pe`` for the TMV; the cycle-model-only fields do not reach the build). Its row gets
:data:`PNR_COLUMNS`: ``pnr_lut`` (ECP5 TRELLIS_COMB / iCE40 logic cells), ``pnr_ff``,
``pnr_bram``, ``pnr_dsp`` (used; ``_available`` beside LUT), ``fmax_mhz`` and
``fmax_target_mhz`` (of the clock with the least slack), ``fmax_json`` (every clock),
``timing_met``, ``pnr_seconds``, ``pnr_tools`` and ``soc_config_json`` (the built SocConfig), which
:func:`write_results` also writes to ``OUT/configs/KEY.json`` (the row's
``soc_config_file``) so that ``tritium build --board B --config FILE`` rebuilds the point.
A design larger than the part is a data point (``pnr_fits`` False, ``error`` ``pnr: ...``);
any other pnr error is a failure. The key of a pnr point also holds
:func:`tritium.boards.flow.tool_versions`.

A *failed* row (:func:`failed`: RTL disagreeing with its golden, a simulation or tool
error) is reported but not cached, so a rerun tries it again; the CLI exits 1 on one.

The executor (:class:`Executor`) is a ``distributed`` client: an embedded
``LocalCluster`` (one single-threaded worker process per core) by default, or an existing
scheduler by address. A task whose worker fails or is lost is retried (``retries``).
Every finished row is written to the cache as it arrives, so Ctrl-C keeps it.

Bad specs raise :class:`~tritium.errors.UsageError` naming the field and what to write.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import itertools
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable

from tritium import __version__
from tritium.errors import TritiumError, UsageError

#: how far a point runs: every level prices the point first; level pnr also runs rtl's
#: matvec when the spec gives shapes
LEVELS = ("estimate", "rtl", "pnr")
#: the levels that may run a Verilator matvec per point (given ``shapes``)
SHAPE_LEVELS = ("rtl", "pnr")
SPEC_KEYS = ("engine", "set", "platforms", "models", "level", "shapes", "boards", "soc")
#: level rtl's default shapes ([rows, cols])
RTL_SHAPES = ([8, 32],)
#: result columns (besides the point's own fields) written to CSV, in this order
RESULT_COLUMNS = ("tokens_per_s", "j_per_token", "power_w", "gops", "lut", "bound")
#: level pnr's result columns (module docstring)
PNR_COLUMNS = ("pnr_lut", "pnr_lut_available", "pnr_ff", "pnr_bram", "pnr_dsp", "fmax_mhz",
               "fmax_target_mhz", "fmax_json", "timing_met", "pnr_fits", "pnr_seconds",
               "pnr_tools", "soc_config_json")


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
    rtl_engines = [e.name for e in registry.engines(installed=False).values() if e.rtl]
    runs_rtl = level == "rtl" or (level in SHAPE_LEVELS and "shapes" in spec)
    if runs_rtl and engine not in rtl_engines:
        raise UsageError(f"explore level rtl simulates engine {' or '.join(rtl_engines)} "
                         f"only (an engine's rtl hook); drop engine {engine!r} or use level "
                         "estimate")
    if "shapes" in spec and level not in SHAPE_LEVELS:
        raise UsageError("explore spec 'shapes' applies to levels rtl and pnr only; drop it "
                         "or set level: rtl")
    for key in ("boards", "soc"):
        if key in spec and level != "pnr":
            raise UsageError(f"explore spec {key!r} applies to level pnr only; drop it or "
                             "set level: pnr")
    shapes = _shapes(spec, registry.get(engine).hook("rtl")) if runs_rtl else [None]
    boards = _boards(spec) if level == "pnr" else [None]
    soc = _soc(spec.get("soc")) if level == "pnr" else None
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
    for combo, plat, model, shape, board in itertools.product(
            itertools.product(*(sets[k] for k in keys)), plats, models, shapes, boards):
        p = {"engine": engine, "level": level, "platform": plat,
             "model": model, "config": dict(zip(keys, combo))}
        if shape is not None:
            p["shape"] = shape
        if board is not None:
            p["board"] = board
            if soc is not None:
                p["soc"] = soc
        out.append(p)
    if level == "pnr":
        for p in out:  # a config the board's SoC refuses stops the sweep before it starts
            try:
                pnr_config(p)
            except TritiumError as e:
                raise UsageError(f"explore point {p['config']} on {p['board']}: {e}") from None
    return out


def _boards(spec: dict) -> list[str]:
    from . import get_board

    if "boards" not in spec:
        raise UsageError("explore level pnr builds every point on a board: give boards: "
                         "[NAME, ...] (or --board NAME)")
    names = _names(spec, "boards", [])
    for name in names:
        try:
            board = get_board(name)
        except TritiumError as e:
            raise UsageError(str(e)) from None
        if not board.bitstream:
            raise UsageError(f"explore level pnr: the open flow cannot place and route "
                             f"{name}'s {board.part}; use another board")
    return names


def _soc(value) -> dict | None:
    """Spec ``soc`` (a SocConfig dict, or the path of a SocConfig JSON file) -> its dict."""
    from tritium.config import SocConfig, load_config

    if value is None:
        return None
    try:
        cfg = load_config(value) if isinstance(value, str) else SocConfig.from_dict(value)
    except TritiumError as e:
        raise UsageError(f"explore spec 'soc': {e}") from None
    except (TypeError, AttributeError):
        raise UsageError("explore spec 'soc' must be a SocConfig mapping or the path of a "
                         "SocConfig JSON file") from None
    if not isinstance(cfg, SocConfig):
        raise UsageError(f"explore spec 'soc' holds a {cfg.kind!r} config; give a 'soc' one")
    return cfg.to_dict()


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
    another version recomputes), plus the versions of the tools its level runs."""
    content: dict[str, Any] = {"point": point, "tritium": __version__}
    if "shape" in point:  # a Verilator run
        from tritium.sim.build import setup_verilator

        content["verilator"] = setup_verilator().version
    if point["level"] == "pnr":
        from .flow import tool_versions

        content["pnr_tools"] = tool_versions()
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
    if "board" in point:
        row["board"] = point["board"]
    try:
        e = M.estimate_model(point["model"], point["platform"], **point["config"])
    except TritiumError as err:
        row["error"] = str(err)
    else:
        row.update({k: e[k] for k in RESULT_COLUMNS if k in e})
        row["lut"] = e["resources"].get("device_lut", e["resources"]["lut"])
        row["error"] = ""
        if "shape" in point:
            try:
                from tritium import registry

                row.update(registry.get(point["engine"]).hook("rtl").run(point))
            except TritiumError as err:
                row["error"] = f"rtl: {err}"
        if point["level"] == "pnr" and not row["error"]:
            row.update(run_pnr(point))
    row["worker"] = _worker_name()
    return row


def failed(row: dict) -> bool:
    """Whether ``row`` is a failed run rather than a data point: an rtl error, or a pnr
    error other than a design larger than its part. Failed rows are not cached."""
    err = str(row.get("error", ""))
    return err.startswith("rtl:") or (err.startswith("pnr:") and row.get("pnr_fits") is not False)


def pnr_config(point: dict):
    """The SocConfig level pnr builds for ``point`` (module docstring): the point's
    ``soc`` or its board's default SoC for the engine, at the board's clock, with the
    engine config's fields that the point sets replaced. ConfigError when the SoC holds no
    engine of ``point["engine"]`` or refuses the values."""
    from tritium import registry
    from tritium.config import SocConfig
    from tritium.errors import ConfigError

    from . import get_board

    board = get_board(point["board"])
    base = (SocConfig.from_dict(point["soc"]) if "soc" in point
            else board.default_config(point["engine"]))
    cfg = board.config_for(base)
    engine = next((e for e in cfg.engines if registry.of(e).name == point["engine"]), None)
    if engine is None:
        raise ConfigError(f"the SoC holds no {point['engine']} engine (it holds "
                          f"{', '.join(cfg.engine_kinds)}); add one to spec 'soc'")
    own = {f.name for f in dataclasses.fields(engine)}
    return cfg.replace_engine(dataclasses.replace(
        engine, **{k: v for k, v in point["config"].items() if k in own}))


def run_pnr(point: dict) -> dict:
    """Level pnr's row fields (:data:`PNR_COLUMNS`) of one point: :func:`pnr_config` built
    on the point's board by :func:`tritium.boards.flow.build` in a temporary directory.
    Its errors become the fields ``error`` (``pnr: ...``) and ``pnr_fits``."""
    import tempfile

    from . import DEFAULT_SEED, DoesNotFitError, get_board
    from .flow import build, tool_versions

    cfg = pnr_config(point)
    out: dict[str, Any] = {"soc_config_json": json.dumps(cfg.to_dict(), sort_keys=True)}
    try:
        out["pnr_tools"] = json.dumps(tool_versions(), sort_keys=True)
        with tempfile.TemporaryDirectory(prefix="tritium-pnr-") as tmp:
            rep = build(get_board(point["board"]), cfg, tmp, seed=DEFAULT_SEED,
                        check_timing=False)
    except DoesNotFitError as err:
        return {**out, "pnr_fits": False, "error": f"pnr: {err}"}
    except TritiumError as err:
        return {**out, "error": f"pnr: {err}"}
    return {**out, **pnr_fields(rep)}


def pnr_fields(rep: dict) -> dict:
    """A ``report.json`` (:func:`tritium.boards.flow.build`) -> the utilisation and timing
    columns of :data:`PNR_COLUMNS`."""
    res = rep["resources"]
    slowest = min(rep["fmax"].items(), key=lambda kv: kv[1]["achieved_mhz"] - kv[1]["target_mhz"])
    return {"pnr_lut": res["lut"]["used"], "pnr_lut_available": res["lut"]["available"],
            "pnr_ff": res["ff"]["used"], "pnr_bram": res.get("bram", {}).get("used", 0),
            "pnr_dsp": res.get("dsp", {}).get("used", 0),
            "fmax_mhz": slowest[1]["achieved_mhz"], "fmax_target_mhz": slowest[1]["target_mhz"],
            "fmax_json": json.dumps(rep["fmax"], sort_keys=True),
            "timing_met": all(f["achieved_mhz"] >= f["target_mhz"] for f in rep["fmax"].values()),
            "pnr_fits": True, "pnr_seconds": rep["seconds"]}


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
        if not failed(row):  # a failure is retried by the next run
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
    """results.json, results.csv (the union of the rows' columns) and pareto.png. Sets
    each row's ``pareto`` (on the front of :func:`pareto_front`; False for an error row)
    and, for a row with ``soc_config_json``, writes that to ``configs/KEY.json`` and sets
    its ``soc_config_file`` (relative to ``out``)."""
    out.mkdir(parents=True, exist_ok=True)
    ok = [r for r in rows if not r.get("error")]
    front = {id(r) for r in pareto_front(ok)}
    for r in rows:
        r["pareto"] = id(r) in front
        if r.get("soc_config_json") and "key" in r:
            rel = Path("configs") / f"{r['key']}.json"
            (out / rel).parent.mkdir(exist_ok=True)
            (out / rel).write_text(json.dumps(json.loads(r["soc_config_json"]), indent=2,
                                              sort_keys=True) + "\n")
            r["soc_config_file"] = str(rel)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    cols = list(dict.fromkeys(c for r in rows for c in r))
    with open(out / "results.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    files = [str(out / "results.json"), str(out / "results.csv")]
    if ok:
        plot_pareto(ok, out / "pareto.png")
        files.append(str(out / "pareto.png"))
    return files


def best_built(rows: list[dict]) -> dict | None:
    """The Pareto row with the most tok/s among the built ones (``soc_config_file`` set by
    :func:`write_results`) that met timing (``tritium build --config`` of it enforces
    timing), None when there is none."""
    built = [r for r in rows if r.get("pareto") and r.get("soc_config_file")
             and r.get("timing_met")]
    return max(built, key=lambda r: r["tokens_per_s"]) if built else None


def lut_of(row: dict) -> int:
    """The row's LUT figure for the Pareto axis: the placed design's (``pnr_lut``) when the
    row was built, else the cycle model's estimate (``lut``)."""
    return row["pnr_lut"] if row.get("pnr_lut") is not None else row["lut"]


def pareto_front(rows: list[dict]) -> list[dict]:
    """Rows no other row on the same board (placed LUTs of different parts do not
    compare; rows without a board form one group) beats on all of: higher tok/s, fewer
    LUT (:func:`lut_of`), lower J/token."""
    def beats(a, b):
        ge = (a["tokens_per_s"] >= b["tokens_per_s"] and lut_of(a) <= lut_of(b)
              and a["j_per_token"] <= b["j_per_token"])
        gt = (a["tokens_per_s"] > b["tokens_per_s"] or lut_of(a) < lut_of(b)
              or a["j_per_token"] < b["j_per_token"])
        return ge and gt
    return [r for r in rows
            if not any(beats(o, r) for o in rows if o.get("board") == r.get("board"))]


def plot_pareto(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    front = pareto_front(rows)
    fig, ax = plt.subplots(figsize=(6, 4))
    sc = ax.scatter([lut_of(r) for r in rows], [r["tokens_per_s"] for r in rows],
                    c=[r["j_per_token"] for r in rows], cmap="viridis", s=18)
    ax.scatter([lut_of(r) for r in front], [r["tokens_per_s"] for r in front],
               facecolors="none", edgecolors="red", s=60, label="Pareto front")
    ax.set_xscale("log")
    ax.set_yscale("log")
    built = sum(r.get("pnr_lut") is not None for r in rows)
    ax.set_xlabel("LUT (place and route)" if built == len(rows) else
                  "LUT (per device, estimated)" if not built else
                  "LUT (place and route where built, else estimated)")
    if built:
        boards = sorted({r["board"] for r in rows if r.get("pnr_lut") is not None})
        ax.set_title("built on " + ", ".join(boards), fontsize=9)
    ax.set_ylabel("tokens/s")
    fig.colorbar(sc, label="J/token")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
