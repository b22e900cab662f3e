"""CLI subcommands of the simulation layer: ``verilog``, ``sim``.

``verilog NAME`` takes the components the engines' descriptions list
(:data:`tritium.hdl.COMPONENTS`); ``sim`` holds the subcommands each engine registers
through its ``commands`` hook (``register("sim", subparsers)``), which build on the
helpers here (:func:`add_sim_options`, :func:`sim_setup`, :func:`sim_status`,
:func:`sim_report`). Component options are generated from the component's config
dataclass, so defaults and ranges live in that config only.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from tritium.cliargs import (add_config_options as _add_config_options,
                             config_from_args as _config_from_args, int_range,
                             parser_engines)
from tritium.errors import TritiumError, UsageError

#: largest --seed: it becomes cocotb's 32-bit RANDOM_SEED, and a run may add a job index
SEED_MAX = 2 ** 30
#: most --vectors: all are drawn (up to max_length elements each) before the run starts
MAX_VECTORS = 1 << 16


def _components():
    from tritium import cliargs
    from tritium.hdl import components

    return components(installed=cliargs.SCAN_INSTALLED)


def _write_atomic(path: Path, text: str) -> None:
    """Write via a temp file and rename, so a failure never leaves half a file."""
    path = Path(path)
    if not path.parent.is_dir():
        raise TritiumError(f"output directory {path.parent} does not exist; create it first")
    if path.is_dir():
        raise UsageError(f"-o {path} is a directory; give a file name, e.g. {path}/out.v")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as e:
        raise TritiumError(f"cannot write in {path.parent} ({e.strerror}); choose a "
                           "writable directory") from None
    umask = os.umask(0)
    os.umask(umask)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        # mkstemp makes the file 0600; the output is an ordinary file, so the umask decides
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as e:
        os.unlink(tmp)
        raise TritiumError(f"cannot write {path} ({e.strerror}); choose another file") \
            from None
    except BaseException:
        os.unlink(tmp)
        raise


# ---- verilog ---------------------------------------------------------------------------

def cmd_verilog(args) -> int:
    from tritium.hdl import resolve

    from .build import to_verilog

    cfg_path, comp_path, top = _components()[args.component]
    cfg = _config_from_args(args, resolve(cfg_path))
    text = to_verilog(resolve(comp_path)(cfg), top)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        _write_atomic(Path(args.output), text)
        print(f"wrote {args.output}: module {top}, {text.count(chr(10))} lines "
              f"({cfg.kind} {cfg.to_dict()})", file=sys.stderr)
    return 0


# ---- demo / sim -------------------------------------------------------------------------

def sim_report(args, title: str, columns: list[tuple[str, str]], rows: list[dict],
            lines: list[str], ok: bool, show: int | None = None, **extra) -> int:
    """Print ``rows`` as a rich table titled ``title`` (``columns``: header, row key; at
    most ``show`` rows), then ``lines`` and the verdict against the golden model; or,
    with ``--json``, one JSON document ``{"ok", "rows" (every row), "summary", **extra}``.
    Exit status 0 when ``ok``, else 1."""
    import json

    from rich.console import Console
    from rich.table import Table

    if args.json:
        print(json.dumps({"ok": ok, "rows": rows, "summary": lines, **extra}, indent=2))
        return 0 if ok else 1
    console = Console()
    table = Table(title=title)
    for header, _ in columns:
        table.add_column(header, justify="right")
    for row in rows[:show]:
        table.add_row(*(("yes" if row[key] else "NO") if isinstance(row[key], bool)
                        else str(row[key]) for _, key in columns))
    console.print(table)
    for line in lines:
        console.print(line)
    console.print("[bold green]every result equals the golden model[/]" if ok
                  else "[bold red]MISMATCH against the golden model[/]")
    return 0 if ok else 1


def sim_status(args, what: str):
    """A spinner on stderr while ``what`` runs (none with --json: stdout stays JSON)."""
    from rich.console import Console

    return Console(stderr=True, quiet=args.json).status(what)


def sim_setup(args, cfg_cls):
    """The ``cfg_cls`` config of a ``sim`` subcommand's options (:func:`add_sim_options`),
    with ``--stall`` checked and a run directory made for ``--waves``."""
    cfg = _config_from_args(args, cfg_cls)
    if not 0 <= getattr(args, "stall", 0) < 1:
        raise TritiumError("--stall is a probability in [0, 1)")
    if args.waves and not args.run_dir:
        args.run_dir = tempfile.mkdtemp(prefix="tritium-waves-")
    return cfg


def add_sim_options(cp, cfg_cls) -> None:
    """The options every stalled-stream ``sim`` subcommand takes: ``--seed``, ``--stall``,
    ``--waves``, ``--run-dir`` and ``cfg_cls``'s config options."""
    cp.add_argument("--seed", type=int_range(0, SEED_MAX), default=1,
                    help="random seed (default 1)")
    cp.add_argument("--stall", type=float, default=0.3,
                    help="probability of a stall cycle on each stream (default 0.3)")
    cp.add_argument("--waves", action="store_true",
                    help="record waves.fst (waves.vcd without liblz4) in --run-dir")
    cp.add_argument("--run-dir", help="directory for logs, results and waves")
    _add_config_options(cp, cfg_cls)


def register(sub) -> None:
    from tritium.hdl import resolve

    comps = _components()
    p = sub.add_parser("verilog", help="emit Verilog for a component",
                       description="Emit Verilog for a component from its config. "
                       f"Components: {', '.join(sorted(comps))}.")
    csub = p.add_subparsers(dest="component", metavar="COMPONENT", required=True)
    for name in sorted(comps):
        cp = csub.add_parser(name, help=f"{name} (options from its config)")
        cp.add_argument("-o", "--output", metavar="FILE", help="output file (default stdout)")
        _add_config_options(cp, resolve(comps[name][0]))
        cp.set_defaults(func=cmd_verilog)

    engines = parser_engines()
    p = sub.add_parser("sim", help="simulate a component in Verilator against its golden",
                       description="Run a component in Verilator and check it against the "
                       "golden model; each engine brings its own subcommands ("
                       + "; ".join(f"{e.name}: {e.title}" for e in engines.values()) + ").")
    csub = p.add_subparsers(dest="component", metavar="COMPONENT", required=True)
    for eng in engines.values():  # each engine's own `sim` subcommands
        if eng.commands:
            eng.hook("commands")("sim", csub)
