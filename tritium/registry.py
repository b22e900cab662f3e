"""The one list of engines: built in, installed, and named in the environment.

:func:`engines` returns every :class:`~tritium.engine.Engine` in this order:

1. the built-in engine packages, :data:`BUILTIN`;
2. every entry point of the group ``tritium.engines`` (``importlib.metadata``); its value
   is a module (or ``module:attribute``) whose ``ENGINE`` is the description, e.g. in a
   package's pyproject.toml ``[project.entry-points."tritium.engines"] myengine = "myengine"``;
3. the modules listed in the environment variable :data:`ENV` (``TRITIUM_ENGINES=
   pkg.mod,other.mod``), which reaches a served subprocess as well.

A module named twice counts once. Two engines with the same name, START id or config
kind raise ConfigError naming both modules. Loading an engine's description imports its
package's top module and its config class (spec layer: both light), so that config
dicts of its kind parse (:meth:`tritium.config.Config.from_dict`).
"""

from __future__ import annotations

import functools
import importlib
import os

from tritium.engine import Engine, load
from tritium.errors import ConfigError

#: the built-in engines' packages, in the order the CLI lists them (the first is the
#: default of ``tritium serve``)
BUILTIN = ("tritium.engines.tmv", "tritium.engines.mfc", "tritium.engines.spgemm")
#: environment variable: comma-separated engine modules to add
ENV = "TRITIUM_ENGINES"
#: entry-point group of installed engine packages
GROUP = "tritium.engines"


@functools.lru_cache(maxsize=None)
def _installed() -> tuple[str, ...]:
    # scanning the installed distributions takes tens of ms: once per process (a package
    # installed meanwhile is seen by the next process)
    from importlib.metadata import entry_points

    return tuple(ep.value for ep in entry_points(group=GROUP))


def _sources(installed: bool = True) -> list[str]:
    found = list(BUILTIN) + (list(_installed()) if installed else [])
    found += [m.strip() for m in os.environ.get(ENV, "").split(",") if m.strip()]
    return list(dict.fromkeys(found))


@functools.lru_cache(maxsize=None)
def _load(sources: tuple[str, ...]) -> dict[str, Engine]:
    out: dict[str, Engine] = {}
    seen: dict[tuple, str] = {}
    for src in sources:
        obj = load(src) if ":" in src else _module(src)
        eng = getattr(obj, "ENGINE", obj)
        if not isinstance(eng, Engine):
            raise ConfigError(f"engine module {src!r} has no ENGINE = tritium.engine.Engine(...)"
                              f"; give it one or drop it from {ENV}")
        for key in (("name", eng.name), ("START id", eng.start_id), ("kind", eng.kind)):
            if key in seen:
                raise ConfigError(f"engines {seen[key]!r} and {src!r} have the same {key[0]} "
                                  f"{key[1]!r}; give each engine its own")
            seen[key] = src
        out[eng.name] = eng
    return out


def _module(name: str):
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ConfigError(f"engine module {name!r} cannot be imported ({e}); install it, put "
                          f"it on PYTHONPATH, or drop it from {ENV}") from None


def engines(installed: bool = True) -> dict[str, Engine]:
    """name -> Engine, every engine known now (see the module docstring); without
    ``installed``, the built-in and :data:`ENV` ones only (no scan of the installed
    distributions, which costs a command's start-up tens of ms)."""
    return _load(tuple(_sources(installed)))


def default_name() -> str:
    """What ``tritium serve`` serves without ``--engine``: the first built-in engine."""
    return _module(BUILTIN[0]).ENGINE.name


def builtin() -> dict[str, Engine]:
    """module -> Engine of the built-in engines only (:data:`BUILTIN`)."""
    return {mod: _module(mod).ENGINE for mod in BUILTIN}


def names() -> tuple[str, ...]:
    return tuple(engines())


def get(name: str) -> Engine:
    """The engine called ``name``; ConfigError listing the known ones otherwise."""
    known = engines()
    if name not in known:
        raise ConfigError(f"unknown engine {name!r}; choose one of {', '.join(known)} (an "
                          f"engine outside tritium is added by {ENV}=its.module)")
    return known[name]


def by_kind(kind: str) -> Engine:
    """The engine whose config kind is ``kind``; ConfigError otherwise."""
    for eng in engines().values():
        if eng.kind == kind:
            return eng
    raise ConfigError(f"no engine takes a config of kind {kind!r}; the engines' kinds are "
                      f"{', '.join(e.kind for e in engines().values())}")


def of(cfg) -> Engine:
    """The engine of the engine config ``cfg``."""
    return by_kind(cfg.kind)


def kinds() -> tuple[str, ...]:
    return tuple(e.kind for e in engines().values())
