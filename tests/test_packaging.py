"""The wheel ships every subpackage of the repository's folders and imports on its own."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"tritium": "tritium", "hdl": "tritium/hdl", "golden": "tritium/golden",
           "sim": "tritium/sim", "host": "tritium/host", "boards": "tritium/boards"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(out), str(ROOT)], check=True,
                   capture_output=True)
    (whl,) = out.glob("tritium-*.whl")
    return whl


def test_wheel_contains_every_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, target in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.relative_to(ROOT / folder).as_posix()
            assert f"{target}/{rel}" in names, f"{folder}/{rel} missing from the wheel"


def test_wheel_imports_without_the_source_tree(wheel, tmp_path):
    zipfile.ZipFile(wheel).extractall(tmp_path)
    code = ("import tritium, tritium.engines.tmv.hdl, tritium.golden.ternary, tritium.sim.build, "
            "tritium.host, tritium.cli; print(tritium.__file__)")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith(str(tmp_path))
