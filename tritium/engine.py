"""What an engine is, as the rest of tritium sees it: one :class:`Engine` description.

An engine package (``tritium.engines.tmv``, or a package outside tritium) exposes one
``ENGINE = Engine(...)`` at its top, and :mod:`tritium.registry` lists it. Everything
generic (the SoC, ``Device``, the CLI's ``serve``/``build``/``estimate``, the boards)
iterates over the registry and asks the description; no engine name appears there.

The description holds the facts both ends share, as plain data (spec layer, standard
library only):

- ``name``: the CLI name (``tritium serve --engine NAME``), the INFO key, the counter
  prefix (``NAME_COUNTER`` in COUNTERS);
- ``config``: its config class, ``"module:Class"``; the class's ``kind`` is the key of
  the engine's config dicts (``{"kind": ...}`` in a SocConfig's ``engines``);
- ``start_id`` and ``start_fields``: the START command's engine byte and its argument
  layout ``((field, bytes), ...)``, little-endian, in order;
- ``start_codes``: START fields that pick from a list, ``field -> "module:NAME"`` of the
  tuple of names by code (a format, a semiring);
- ``counters``: counter names, in COUNTERS order, unprefixed (or ``"module:NAME"`` of
  the tuple, where the engine's models keep it), and ``counter_bits`` their width: an
  int, the name of a config attribute holding it, or ``"module:NAME"`` of an int;
- ``label_fields``: the config fields that size the engine, as a board report or a
  "does not fit" message names them (:meth:`label`);
- ``excludes``: engine names it cannot sit beside on one SoC (the token core owns its
  TMV);
- ``title``: one line for help texts and generated docs; ``workload``: what the
  estimate hook's workload string means (help of ``tritium estimate --workload``);
- ``components``: what ``tritium verilog NAME`` can emit of the engine,
  ``((NAME, "module:ConfigClass", "module:ComponentClass", verilog_top), ...)``; the
  engine's own name also names the one built from its :attr:`config`.

The hooks are ``"module:attribute"`` strings, imported only when used (:meth:`hook`),
so describing an engine costs no import of Amaranth, numpy or the engine's code:

- ``adapter``: the :class:`tritium.hdl.adapter.EngineAdapter` subclass that puts it on
  the SoC's byte bus;
- ``served``: the engine config ``tritium serve --engine NAME`` serves without
  ``--config``, or a function returning it (:meth:`served_config`);
- ``driver``: a class whose methods ``Device`` gains when the connected device holds
  this engine (``dev.spgemm(A, B)``); each takes the Device as ``self``;
- ``golden``: the bit-exact model's entry point (what a driver or a test checks
  against);
- ``estimate``: ``estimate(cfg, workload: str, platform) -> dict`` of flat numbers
  (``cycles`` at least), what ``tritium estimate --engine NAME --workload W`` prints;
- ``lm_estimate``: ``estimate(model, platform, **platform_overrides) -> dict``, the
  per-token budget of a whole language model run on this engine (``tritium estimate
  --model M --core NAME``);
- ``lm_matvecs``: ``lm_matvecs(platform, shapes) -> dict``, the matvecs of one token of
  a whole model (:func:`tritium.sim.model.model_shapes`) on the unit a platform preset's
  lanes make: what the generic estimate (``tritium estimate --model M``,
  :func:`tritium.sim.model.estimate_model`) runs every matvec on (the first engine with
  one); with ``shapes`` None it only checks the platform;
- ``compare``: ``compare(quick, rng) -> [job, ...]``, the workloads ``tritium compare``
  runs on the RTL, each job a call returning one row (the model's cycles beside the
  hardware counter's, :func:`tritium.sim.model.compare_row`);
- ``rtl``: what ``tritium explore --level rtl`` runs per point: an object with
  ``capacity`` (the config fields every point's build shares, bounding its shapes) and
  ``run(point) -> dict`` (the row's RTL fields; SimulationError when the RTL disagrees
  with the golden);
- ``commands``: ``register(verb, subparsers)``, the engine's own subcommands of a verb
  (``tritium run NAME ...``, ``tritium sim NAME ...``); it adds none for a verb it does
  not know.

A missing hook is None; asking for it raises ConfigError naming the engine.
"""

from __future__ import annotations

import dataclasses
import importlib

from tritium.errors import ConfigError

#: the hooks an Engine may name (see the module docstring)
HOOKS = ("adapter", "served", "driver", "golden", "estimate", "lm_estimate", "lm_matvecs",
         "compare", "rtl", "commands")


def load(path: str):
    """``"package.module:name"`` -> the object (the module imported now)."""
    mod, _, name = path.partition(":")
    try:
        obj = importlib.import_module(mod)
    except ImportError as e:
        raise ConfigError(f"cannot import {mod!r} ({e}); install the package that provides "
                          "it or fix the engine's description") from None
    for part in filter(None, name.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"{mod!r} has no {name!r} (from {path!r}); fix the engine's "
                              "description") from None
    return obj


@dataclasses.dataclass(frozen=True)
class Engine:
    """One engine's description (see the module docstring for every field)."""

    name: str
    config: str
    start_id: int
    start_fields: tuple[tuple[str, int], ...]
    counters: tuple[str, ...] | str
    counter_bits: int | str
    start_codes: tuple[tuple[str, str], ...] = ()
    title: str = ""
    workload: str = ""
    label_fields: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    components: tuple[tuple[str, str, str, str], ...] = ()
    adapter: str | None = None
    served: str | None = None
    driver: str | None = None
    golden: str | None = None
    estimate: str | None = None
    lm_estimate: str | None = None
    lm_matvecs: str | None = None
    compare: str | None = None
    rtl: str | None = None
    commands: str | None = None

    def __post_init__(self):
        if not self.name.isidentifier():
            raise ConfigError(f"engine name {self.name!r}: use a Python identifier (it names "
                              "Device methods, INFO keys and counter prefixes)")
        if not 1 <= self.start_id <= 255:
            raise ConfigError(f"engine {self.name}: START id {self.start_id} must be 1..255 "
                              "(one byte)")

    def hook(self, what: str):
        """The object hook ``what`` (one of :data:`HOOKS`) names, imported now."""
        path = getattr(self, what)
        if path is None:
            raise ConfigError(f"engine {self.name} has no {what}; its package does not "
                              f"provide one")
        return load(path)

    def served_config(self):
        obj = self.hook("served")
        return obj() if callable(obj) else obj

    def config_class(self):
        return load(self.config)

    @property
    def kind(self) -> str:
        """The config kind (``kind`` of :attr:`config`'s class)."""
        return self.config_class().kind

    def counter_widths(self, cfg) -> tuple[tuple[str, int], ...]:
        """``(name, bits)`` of each counter of the engine built from ``cfg``."""
        bits = self.counter_bits
        if isinstance(bits, str):
            bits = load(bits) if ":" in bits else getattr(cfg, bits)
        return tuple((n, bits) for n in self.counter_names())

    def counter_names(self) -> tuple[str, ...]:
        names = self.counters
        return tuple(load(names) if isinstance(names, str) else names)

    def regions(self, cfg) -> tuple[tuple[str, int, str], ...]:
        """``(name, bytes, access)`` of the engine's regions on the device bus
        (``cfg.soc_regions()``)."""
        return tuple(cfg.soc_regions())

    def label(self, cfg) -> str:
        """``name (field=value ...)`` of :attr:`label_fields` (dotted: nested configs)."""
        def value(path):
            v = cfg
            for part in path.split("."):
                v = getattr(v, part)
            return v
        return f"{self.name} ({' '.join(f'{f}={value(f)}' for f in self.label_fields)})"

    def codes(self) -> dict[str, tuple[str, ...]]:
        """field -> the names its codes stand for (:attr:`start_codes`), imported now."""
        return {f: tuple(load(path)) for f, path in self.start_codes}

    def start_size(self) -> int:
        return sum(size for _, size in self.start_fields)

    def describe(self, cfg) -> dict:
        """This engine's INFO entry: START id, fields, regions, counters (prefixed)."""
        return {"start": self.start_id, "fields": [list(f) for f in self.start_fields],
                "regions": [name for name, _, _ in self.regions(cfg)],
                "counters": [[f"{self.name}_{n}", b] for n, b in self.counter_widths(cfg)]}
