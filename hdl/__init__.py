"""Amaranth components. Each takes its config (an engine package's config class).

:data:`COMPONENTS` (what ``tritium verilog NAME`` emits) is read from the engines'
descriptions (``Engine.components``) when asked for: name -> (config class path,
component class path, Verilog module name). An engine's own name also names the
component built from its config class (``tmv`` = ``ternary-matvec``).
"""

from __future__ import annotations

import importlib


def components(installed: bool = False) -> dict[str, tuple[str, str, str]]:
    """Every component the registry's engines list (built-in and ``TRITIUM_ENGINES`` ones;
    with ``installed``, those of installed entry points too)."""
    from tritium import registry

    out: dict[str, tuple[str, str, str]] = {}
    for eng in registry.engines(installed=installed).values():
        for name, cfg, comp, top in eng.components:
            out[name] = (cfg, comp, top)
        own = [c for c in eng.components if c[1] == eng.config]
        if own:
            out.setdefault(eng.name, tuple(own[0][1:]))
    return out


def __getattr__(name: str):
    if name == "COMPONENTS":
        return components()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resolve(path: str):
    """'package.module:Name' -> the object."""
    mod, _, name = path.partition(":")
    return getattr(importlib.import_module(mod), name)
