"""Map the repository's top-level folders onto ``tritium.*`` (README.md, Layout; the import
layers they form: docs/engines.md).

Everything else is in pyproject.toml; this file only computes the package list, so a new
subpackage (e.g. ``engines/spgemm/hdl/``) ships in wheels without being listed by hand.
"""

from setuptools import find_packages, setup

ROOTS = {"tritium": "tritium", "tritium.engines": "engines", "tritium.hdl": "hdl",
         "tritium.golden": "golden", "tritium.sim": "sim", "tritium.host": "host",
         "tritium.boards": "boards"}

packages = []
for pkg, folder in ROOTS.items():
    packages += [pkg] + [f"{pkg}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=ROOTS)
