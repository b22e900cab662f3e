"""``tritium explore``: a design-space sweep on Dask (:mod:`tritium.boards.explore`)."""

from __future__ import annotations

import json

from tritium.cliargs import add_json_flag
from tritium.errors import UsageError


def cmd_explore(args) -> int:
    from tritium.progress import make_progress

    from . import explore as X

    spec = X.load_spec(args.spec) if args.spec else {}
    for cli_key, spec_key in (("engine", "engine"), ("level", "level")):
        if getattr(args, cli_key) is not None:
            spec[spec_key] = getattr(args, cli_key)
    if args.platform:
        spec["platforms"] = args.platform
    if args.model:
        spec["models"] = args.model
    if args.shape:
        spec["shapes"] = [X.parse_shape(s) for s in args.shape]
    if args.board:
        spec["boards"] = args.board
    if args.soc:
        spec["soc"] = args.soc
    if args.set:
        spec["set"] = {**(spec.get("set") or {}), **X.parse_set(args.set)}
    if not spec:
        raise UsageError("explore needs a SPEC file or --set FIELD=V1,V2 ranges")
    with make_progress(not args.quiet) as progress:
        rep = X.explore(spec, args.out, scheduler=args.scheduler, workers=args.workers,
                        cache_dir=args.cache, progress=progress)
    if args.json:
        print(json.dumps(rep, indent=2))
    else:
        errors = sum(1 for r in rep["rows"] if r.get("error"))
        print(f"{len(rep['rows'])}/{rep['points']} points ({rep['ran']} run, "
              f"{rep['cached']} cached, {errors} with errors)"
              + ("; interrupted, finished points kept" if rep["interrupted"] else "")
              + f"; wrote {', '.join(rep['files'])}")
        best = X.best_built(rep["rows"])
        if best is not None:
            print(f"fastest built Pareto point: tritium build --board {best['board']} "
                  f"--config {args.out}/{best['soc_config_file']}")
    if rep["interrupted"]:
        return 130
    # an RTL row that disagrees with its golden, or a broken tool, is a failed run
    return 1 if any(X.failed(r) for r in rep["rows"]) else 0


def register(sub) -> None:
    from . import explore as X

    p = sub.add_parser(
        "explore", help="design-space sweep (engine configs x platforms x models) on Dask",
        description="Run every point of a sweep (a JSON/YAML SPEC with keys "
                    f"{', '.join(X.SPEC_KEYS)}, or --set ranges) on an embedded Dask "
                    "LocalCluster or an existing scheduler; writes results.csv, "
                    "results.json and pareto.png (level pnr: configs/KEY.json, one SoC "
                    "config per built point for `tritium build --config`); finished points "
                    "are cached by content "
                    "and skipped on a rerun. Workers on other machines: pip install "
                    "tritium[fpga]; dask worker tcp://HOST:PORT.")
    p.add_argument("spec", nargs="?", help="sweep spec file (.json, .yaml)")
    p.add_argument("--engine", help="engine whose config is swept (default: the one pricing whole models)")
    p.add_argument("--set", action="append", metavar="FIELD=V1,V2",
                   help="a swept config field and its values (repeatable), e.g. simd=8,16")
    p.add_argument("--platform", action="append", metavar="NAME",
                   help="cycle-model platform preset (repeatable)")
    p.add_argument("--model", action="append", metavar="NAME",
                   help="model preset or checkpoint directory (repeatable)")
    p.add_argument("--level", choices=X.LEVELS,
                   help="how far each point runs (default estimate)")
    p.add_argument("--shape", action="append", metavar="ROWSxCOLS",
                   help="level rtl (or pnr): a matvec shape simulated per point (repeatable), "
                        "e.g. 8x32")
    p.add_argument("--board", action="append", metavar="NAME",
                   help="level pnr: a board every point is placed and routed for (repeatable)")
    p.add_argument("--soc", metavar="JSON",
                   help="level pnr: base SoC config whose engine gets the swept fields "
                        "(default: the board's)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="an existing Dask scheduler (default: an embedded LocalCluster)")
    p.add_argument("--workers", type=int, help="LocalCluster workers (default: CPU count)")
    p.add_argument("--out", default="explore-results", help="output directory")
    p.add_argument("--cache", help="results cache directory (default: OUT/cache)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (stderr)")
    add_json_flag(p)
    p.set_defaults(func=cmd_explore)
