"""Acceptance of the engine interface: an engine outside tritium (``vadd``, one package
plus one registry line in conftest.py) is served, listed in INFO, driven through
``Device`` and estimated by ``tritium estimate``, with nothing in tritium naming it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tritium import registry
from tritium.config import SocConfig, served_soc
from tritium.errors import ConfigError, DeviceError, ShapeError
from tritium.host import Device
from tritium.errors import DeviceConfigError

REPO = Path(__file__).resolve().parents[2]


def cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "tritium.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=dict(os.environ, COLUMNS="200"))


def test_the_registry_lists_it_after_the_built_ins():
    eng = registry.get("vadd")
    assert registry.names()[-1] == "vadd" and eng.kind == "vadd"
    assert registry.by_kind("vadd") is eng
    with pytest.raises(ConfigError, match="unknown engine 'vsub'; choose one of .*vadd"):
        registry.get("vsub")


def test_a_bad_registry_line_is_a_typed_error(monkeypatch):
    monkeypatch.setenv("TRITIUM_ENGINES", "vadd,no_such_engine_pkg")
    with pytest.raises(ConfigError, match="no_such_engine_pkg.*cannot be imported"):
        registry.engines()
    monkeypatch.setenv("TRITIUM_ENGINES", "vadd,vadd.config")  # a module without ENGINE
    with pytest.raises(ConfigError, match="no ENGINE"):
        registry.engines()


def test_its_config_round_trips_inside_a_soc():
    soc = served_soc("vadd")
    assert SocConfig.from_json(soc.to_json()) == soc
    assert set(soc.address_map()) == {"vadd_a", "vadd_b", "vadd_c"}
    two = SocConfig(engines=(served_soc("spgemm").engines[0], soc.engines[0]))
    assert list(two.address_map())[-3:] == ["vadd_a", "vadd_b", "vadd_c"]


@pytest.fixture(scope="module")
def served():
    """``tritium serve --engine vadd`` in a subprocess (real Verilator, real socket)."""
    p = subprocess.Popen([sys.executable, "-m", "tritium.cli", "serve", "--engine", "vadd"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        url = p.stdout.readline().strip()
        assert url.startswith("socket://"), url
        yield url
    finally:
        p.terminate()
        p.wait(30)


@pytest.fixture()
def dev(served):
    with Device(served, timeout=5.0) as d:
        yield d


@pytest.mark.verilator
def test_info_lists_the_engine_with_its_layout(dev):
    spec = dev.info["engines"]["vadd"]
    assert spec == {"start": 9, "fields": [["n", 2]],
                    "regions": ["vadd_a", "vadd_b", "vadd_c"],
                    "counters": [["vadd_cycles", 32], ["vadd_elements", 32]]}
    assert dev.cfg == served_soc("vadd")


@pytest.mark.verilator
@pytest.mark.parametrize("n", [1, 2, 17, 64])
def test_device_vadd_equals_the_golden(dev, n):
    from vadd.golden import vadd

    rng = np.random.default_rng(n)
    a = rng.integers(-(1 << 15), 1 << 15, n)
    b = rng.integers(-(1 << 15), 1 << 15, n)
    a[0], b[0] = 32767, 32767   # the sum needs the 17th bit
    c, counters = dev.vadd(a, b)
    cfg = dev.cfg.engine_config("vadd")
    np.testing.assert_array_equal(c, vadd(cfg, a, b))
    assert c[0] == 65534
    # the cycle model is exact: the device's busy cycles are cfg.cycles(n)
    assert counters == {"cycles": cfg.cycles(n), "elements": n}


@pytest.mark.verilator
def test_bad_runs_are_refused(dev):
    with pytest.raises(ShapeError, match="length 1..64"):
        dev.vadd(np.zeros(65, int), np.zeros(65, int))
    with pytest.raises(ShapeError, match="int16"):
        dev.vadd([40000], [0])
    with pytest.raises(DeviceError, match="argument out of range"):
        dev.start("vadd", n=65)          # past depth: the engine refuses the START
    with pytest.raises(DeviceConfigError, match="no spgemm engine"):
        dev.spgemm(None, None)           # another engine's driver method


@pytest.mark.verilator
def test_a_device_without_it_has_no_vadd(served):
    from tritium.sim.serve import SimulatedDevice

    with SimulatedDevice(served_soc("spgemm")) as sim, Device(sim.url) as d:
        with pytest.raises(DeviceConfigError, match="no vadd engine.*--engine vadd"):
            d.vadd([1], [2])


def test_tritium_estimate_runs_its_cycle_model():
    r = cli("estimate", "--engine", "vadd", "--workload", "40", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["engine"] == "vadd" and rep["cycles"] == 42 and rep["elements"] == 40
    r = cli("estimate", "--engine", "vadd", "--workload", "100")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "1..64" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def installed_env(tmp_path) -> dict:
    """The environment of a process in which vadd is an installed distribution's entry
    point, as pip would write it (a real dist-info that importlib.metadata finds on the
    path), and not in TRITIUM_ENGINES."""
    info = tmp_path / "vadd_engine-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vadd-engine\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[tritium.engines]\nvadd = vadd\n")
    env = {k: v for k, v in os.environ.items() if k != "TRITIUM_ENGINES"}
    env["PYTHONPATH"] = os.pathsep.join((str(tmp_path), env["PYTHONPATH"]))
    return env


def test_an_installed_entry_point_adds_it_without_the_variable(tmp_path):
    env = installed_env(tmp_path)
    run = [sys.executable, "-m", "tritium.cli", "estimate", "--engine", "vadd", "--workload",
           "3", "--json"]
    r = subprocess.run(run, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["cycles"] == 5
    env["PYTHONPATH"] = env["PYTHONPATH"].split(os.pathsep, 1)[1]   # not installed: unknown
    r = subprocess.run(run, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "unknown engine 'vadd'" in r.stderr


@pytest.mark.verilator
def test_its_own_run_subcommand_drives_the_served_device(served):
    r = cli("run", "vadd", "--device", served, "--n", "20", "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "vadd of 20 elements in 22 cycles: equals the golden\n"


def test_an_entry_point_engine_gets_its_run_subcommand(tmp_path):
    # the first parse knows no installed engine (start-up scans nothing); the command
    # line it refuses is parsed again with the entry points, which add `run vadd`
    env = installed_env(tmp_path)
    run = [sys.executable, "-m", "tritium.cli", "run", "vadd", "--help"]
    r = subprocess.run(run, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "check the sum against the golden model" in " ".join(r.stdout.split())
    r = subprocess.run(run[:-1] + ["--n"], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "tritium run vadd: error: argument --n: expected one argument" in r.stderr
    env["PYTHONPATH"] = env["PYTHONPATH"].split(os.pathsep, 1)[1]   # not installed
    r = subprocess.run(run, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and "invalid choice: 'vadd'" in r.stderr, r.stderr


def test_nothing_in_tritium_names_it():
    hits = subprocess.run(["grep", "-rIl", "vadd", "tritium", "engines", "hdl", "golden",
                           "sim", "host", "boards", "setup.py", "pyproject.toml"],
                          cwd=REPO, capture_output=True, text=True).stdout.split()
    assert hits == []
