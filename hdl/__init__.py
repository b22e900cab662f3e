"""Amaranth components. Each takes its config from :mod:`tritium.config`."""

from __future__ import annotations

import importlib

#: components that `tritium verilog NAME` can emit: name -> (config class path, component
#: class path, Verilog module name). Later engines add a line here.
COMPONENTS: dict[str, tuple[str, str, str]] = {
    "ternary-dot": ("tritium.engines.tmv.config:TernaryDotConfig", "tritium.engines.tmv.hdl:TernaryDot",
                    "ternary_dot"),
    "spgemm": ("tritium.engines.spgemm.config:SpgemmConfig", "tritium.engines.spgemm.hdl:SpgemmEngine",
               "spgemm"),
    "ternary-matvec": ("tritium.engines.tmv.config:TernaryConfig", "tritium.engines.tmv.hdl:TernaryMatVec",
                       "ternary_matvec"),
    "mfc": ("tritium.engines.mfc.config:MfcConfig", "tritium.engines.mfc.hdl:MfcCore", "mfc"),
}
COMPONENTS["tmv"] = COMPONENTS["ternary-matvec"]  # the short name the docs use


def resolve(path: str):
    """'package.module:Name' -> the object."""
    mod, _, name = path.partition(":")
    return getattr(importlib.import_module(mod), name)
