"""The config base and the SoC's config: the one source of truth for widths, depths and
formulas.

Each engine's config lives in its package (``tritium.engines.NAME.config``, a
:class:`Config` subclass); this module holds what every engine shares: the base with its
JSON round trip and range-checked fields (:func:`field`), the width helpers, the memory
map builder and :class:`SocConfig`. It imports no engine at module level (engines sit
on top of it). Each config is a frozen dataclass. The same object parametrises the Amaranth component,
its golden model, its cocotb bench, the cycle model and the host-side packer, so a width,
a depth or a latency is derived here once and read everywhere else.

Configs round-trip through JSON (``cfg.to_json()`` / ``Config.from_json(text)``); the
``kind`` field names the class, so ``load_config(path)`` returns the right type. Invalid
values raise :class:`~tritium.errors.ConfigError` with the offending field and its
allowed range.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

from .errors import ConfigError

_REGISTRY: dict[str, type["Config"]] = {}


def _register(cls):
    _REGISTRY[cls.kind] = cls
    return cls


def signed_bits_for(lo: int, hi: int) -> int:
    """Smallest two's-complement width that holds every integer in [lo, hi]."""
    if lo > hi:
        raise ValueError(f"empty range [{lo}, {hi}]")
    width = 1
    while not (-(1 << (width - 1)) <= lo and hi <= (1 << (width - 1)) - 1):
        width += 1
    return width


@dataclasses.dataclass(frozen=True)
class Config:
    """Base class: JSON round trip and field validation.

    A subclass that sets its own ``kind`` is registered under it (so ``from_dict`` and
    ``load_config`` parse its dicts): an engine package outside tritium needs no call
    here. Its fields take ranges by :func:`field`."""

    kind: ClassVar[str] = "config"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            _register(cls)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            lo, hi = f.metadata.get("range", (None, None))
            if f.type in ("int", int) and (not isinstance(value, int)
                                           or isinstance(value, bool)):
                raise ConfigError(f"{self.kind}.{f.name} must be an integer, got {value!r}")
            if lo is not None and value < lo or hi is not None and value > hi:
                raise ConfigError(
                    f"{self.kind}.{f.name}={value} is out of range [{lo}, {hi}]; "
                    f"choose a value inside it")
        self.validate()

    def validate(self) -> None:
        """Cross-field checks; subclasses raise ConfigError."""

    def soc_check(self) -> None:
        """What a SoC's link asks of this engine config beyond :meth:`validate` (byte
        lanes, byte-wide data); :class:`SocConfig` calls it for each of its engines, and
        an engine config overrides it to raise ConfigError."""

    @classmethod
    def upgrade(cls, d: dict[str, Any]) -> dict[str, Any]:
        """A dict of this kind in an older layout -> the current one (:meth:`from_dict`
        calls it before checking the fields); the base has no older layout."""
        return d

    def _nested(self, name: str, cls: type["Config"], optional: bool = False) -> None:
        """Turn field ``name`` from its JSON dict into a ``cls`` config (in place) and
        check its type; ``optional`` allows None."""
        value = getattr(self, name)
        if isinstance(value, dict):
            value = cls.from_dict(value)
            object.__setattr__(self, name, value)
        if not (isinstance(value, cls) or optional and value is None):
            raise ConfigError(f"{self.kind}.{name} must be a {cls.kind} config"
                              + (" or null" if optional else ""))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Config":
        d = dict(d)
        kind = d.pop("kind", cls.kind)
        if isinstance(kind, str) and kind not in _REGISTRY:
            from tritium import registry

            registry.engines()  # imports every engine's config class, which registers it
        target = _REGISTRY.get(kind) if isinstance(kind, str) else None
        if target is None:
            raise ConfigError(f"unknown config kind {kind!r}; known kinds: {sorted(_REGISTRY)}")
        if cls is not Config and target is not cls:
            raise ConfigError(f"expected a {cls.kind!r} config, got {kind!r}")
        d = target.upgrade(d)
        names = {f.name for f in dataclasses.fields(target)}
        extra = sorted(set(d) - names)
        if extra:
            raise ConfigError(
                f"{kind} config has unknown field(s) {extra}; valid fields: {sorted(names)}")
        try:
            return target(**d)
        except TypeError as e:
            raise ConfigError(f"bad {kind} config: {e}") from None

    @classmethod
    def from_json(cls, text: str) -> "Config":
        try:
            d = json.loads(text)
        except (ValueError, RecursionError) as e:  # JSONDecodeError; too deep; huge ints
            raise ConfigError(f"config is not valid JSON ({type(e).__name__}: "
                              f"{str(e)[:120]}); fix the file") from None
        if not isinstance(d, dict):
            raise ConfigError("config JSON must be an object with a 'kind' field")
        return cls.from_dict(d)


def load_config(path: str | Path) -> Config:
    """Read a config JSON file; raises ConfigError if missing or invalid."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist; pass the path of a JSON config")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {p} ({e}); pass a UTF-8 JSON file") \
            from None
    return Config.from_json(text)


def _field(default, lo=None, hi=None, doc=""):
    return dataclasses.field(default=default, metadata={"range": (lo, hi), "doc": doc})


#: a config field with its allowed range [lo, hi] and help text (the CLI's config options)
field = _field


def pow2_ceil(n: int) -> int:
    """Smallest power of two >= n (1 for n <= 1)."""
    return 1 << max(0, (n - 1).bit_length())


class MemoryMap:
    """A byte address map under construction: regions placed in the order added, each
    aligned to its size rounded up to a power of two (so decoding a region is a compare of
    the address's high bits), at the next free aligned base or at a given ``base``.

    :meth:`add` raises ConfigError for a name used twice, an empty region, a base that is
    not aligned, a region overlapping one already placed, or one ending past
    ``addr_bits`` of address space. :meth:`regions` is ``name -> {base, size, access}``.
    """

    def __init__(self, addr_bits: int = 32):
        self.addr_bits = addr_bits
        self._regions: dict[str, dict[str, int | str]] = {}
        self._next = 0

    def add(self, name: str, size: int, access: str, base: int | None = None) -> int:
        if name in self._regions:
            raise ConfigError(f"memory map: region {name!r} is defined twice; give each "
                              "region of the device its own name")
        if size < 1 or set(access) - set("rw") or not access:
            raise ConfigError(f"memory map: region {name!r} needs a size >= 1 and access "
                              f"'r', 'w' or 'rw' (got size {size}, access {access!r})")
        span = pow2_ceil(size)
        if base is None:
            base = -(-self._next // span) * span
        elif base % span:
            raise ConfigError(f"memory map: region {name!r} at {base:#x} is not aligned to "
                              f"its span {span:#x}; put it at a multiple of {span:#x}")
        for other, r in self._regions.items():
            if base < r["base"] + pow2_ceil(r["size"]) and r["base"] < base + span:
                raise ConfigError(f"memory map: region {name!r} [{base:#x}, {base + span:#x}) "
                                  f"overlaps {other!r} at {r['base']:#x}; move one of them")
        if base + span > 1 << self.addr_bits:
            raise ConfigError(f"memory map: region {name!r} ends at {base + span:#x}, past the "
                              f"{self.addr_bits}-bit bus; make the engine's memories smaller")
        self._regions[name] = {"base": base, "size": size, "access": access}
        self._next = max(self._next, base + span)
        return base

    def regions(self) -> dict[str, dict[str, int | str]]:
        return {k: dict(v) for k, v in self._regions.items()}


def _default_engines() -> tuple:
    from tritium import registry

    return (registry.get(registry.default_name()).served_config(),)


def uart_divisor(clock_hz: float, baud: int) -> int:
    """Clocks per bit of a UART on a ``clock_hz`` clock at ``baud``: the nearest whole
    number (the UART's own check of the rate it then reaches:
    :func:`tritium.hdl.link.uart.check_baud`)."""
    return max(1, round(clock_hz / baud))


@dataclasses.dataclass(frozen=True)
class SocConfig(Config):
    """The device: link (framer, command processor) + engines + their memories.

    ``engines`` is the tuple of engine configs the device holds, at most one of each
    engine of :mod:`tritium.registry` and none beside one its description ``excludes``
    (any engine's config, built in or from outside tritium; dicts in JSON), e.g.
    ``SocConfig(engines=(SpgemmConfig(),))``. Without it: the engine ``tritium serve``
    serves by default, in its served config (:func:`served_soc`). An empty tuple, an
    unknown kind, a kind twice or an excluded pair raise ConfigError.

    JSON of the older layout, which named the engines as fields by engine name
    (``{"kind": "soc", "tmv": {...}, "mfc": null}``), still loads (:meth:`upgrade`).

    The byte address map (:meth:`address_map`) is derived from the engines' regions here,
    once (each engine config's ``soc_regions``, placed by :class:`MemoryMap` in engine
    order): the hardware decodes it, the device reports it in INFO, the host reads it
    from there. What the link's memories ask of an engine (byte lanes, byte-wide
    activations) the engine config's ``soc_check()`` checks.
    """

    kind: ClassVar[str] = "soc"

    engines: tuple = dataclasses.field(default_factory=_default_engines)
    max_payload: int = _field(1024, 16, 65535, "largest frame payload, bytes")
    frame_timeout: int = _field(20_000, 64, 1 << 30,
                                "cycles without a byte before a partial frame is dropped")
    clock_hz: int = _field(25_000_000, 1, 1 << 31, "system clock, Hz")
    baud: int = _field(115_200, 300, 12_000_000, "UART baud rate (boards)")
    #: the device's DRAM (:class:`tritium.dram.DramConfig`), None: on-chip memories only.
    #: With it, the map gains a read/write ``dram`` region of the DRAM's size, after the
    #: engines' regions (docs/memory.md)
    dram: "DramConfig | None" = None

    def __post_init__(self):
        # the DRAM config class registers itself (kind "dram") when tritium.dram is
        # imported, which the package does: this module cannot import it back
        self._nested("dram", _REGISTRY["dram"], optional=True)
        from tritium import registry

        known = registry.engines()  # loads every engine's config class: its dicts parse
        kinds_known = ", ".join(registry.kinds())
        engines = self.engines
        if not isinstance(engines, (tuple, list)):
            raise ConfigError("soc.engines must be a list of engine configs "
                              f"(kinds {kinds_known})")
        engines = tuple(Config.from_dict(e) if isinstance(e, dict) else e for e in engines)
        if not engines:
            raise ConfigError("soc: no engine; give engines=(...) with at least one of "
                              f"{kinds_known}")
        kinds = [getattr(e, "kind", type(e).__name__) for e in engines]
        bad = [k for k in kinds if k not in registry.kinds()]
        if bad or len(set(kinds)) != len(kinds):
            raise ConfigError(f"soc.engines {kinds}: give at most one of each of "
                              f"{kinds_known}")
        names = {registry.by_kind(k).name for k in kinds}
        for name in names:
            clash = names.intersection(known[name].excludes)
            if clash:
                raise ConfigError(f"soc.engines: not both {name} and "
                                  f"{', '.join(sorted(clash))} ({name} excludes them: "
                                  f"{known[name].title}); drop one of them")
        object.__setattr__(self, "engines", engines)
        super().__post_init__()

    @classmethod
    def upgrade(cls, d: dict[str, Any]) -> dict[str, Any]:
        """The older layout named each engine as a field, by its engine name, null when
        absent, and a token core's file held the core's TMV as well (``"tmv": {...},
        "mfc": {...}``): each non-null one becomes an engine config, but one that another
        of them excludes is dropped (all null: no engine, which SocConfig refuses). Beside
        an ``engines`` list (files written while both existed) they must name the same
        configs; ConfigError otherwise."""
        from tritium import registry

        fields = {f.name for f in dataclasses.fields(cls)}
        legacy = {n: d.pop(n) for n in [k for k in d if k not in fields]
                  if n in registry.names()}
        legacy_keys = bool(legacy)
        legacy = {n: registry.get(n).config_class().from_dict(v)
                  for n, v in legacy.items() if v is not None}
        excluded = {x for n in legacy for x in registry.get(n).excludes}
        engines = [c for n, c in legacy.items() if n not in excluded]
        if d.get("engines"):
            given = [Config.from_dict(e) if isinstance(e, dict) else e for e in d["engines"]]
            if any(c not in given for c in engines):
                raise ConfigError(f"soc: the fields {sorted(legacy)} and 'engines' name "
                                  "different engine configs; give the engines list only")
        elif legacy_keys:
            d["engines"] = engines  # all null: no engine, refused as such
        return d

    @property
    def engine_kinds(self) -> tuple[str, ...]:
        return tuple(e.kind for e in self.engines)

    def engine_config(self, kind: str):
        """The engine config of ``kind`` (a config class's ``kind``), or None."""
        return next((e for e in self.engines if e.kind == kind), None)

    def replace_engine(self, cfg: Config) -> "SocConfig":
        """This SoC with its engine of ``cfg``'s kind replaced by ``cfg``; ConfigError if
        it holds none of that kind."""
        if self.engine_config(cfg.kind) is None:
            raise ConfigError(f"soc: no {cfg.kind} engine to replace (it holds "
                              f"{', '.join(self.engine_kinds)}); add it to engines instead")
        return dataclasses.replace(self, engines=tuple(
            cfg if e.kind == cfg.kind else e for e in self.engines))

    @property
    def tmv(self):
        """The device's weight-streaming matrix-vector engine: the ``tmv`` attribute of
        the first engine config that has one (an engine config may name the one it holds
        so; the weight-line sizes below read it); None without one."""
        return next((e.tmv for e in self.engines if getattr(e, "tmv", None) is not None),
                    None)

    def validate(self) -> None:
        for e in self.engines:
            # an engine's TMV (the bare engine itself, or the one a token core holds)
            t = getattr(e, "tmv", None)
            if t is not None and t.weights_dram:
                name = e.kind if t is e else f"{e.kind}.tmv"
                lines = t.weight_depth * t.line_stride
                if self.dram is None:
                    raise ConfigError(f"soc: {name}.weights_dram=1 needs a DRAM; set "
                                      "soc.dram (e.g. `tritium serve --dram ideal`)")
                if lines > self.dram.size_bytes or t.line_stride % self.dram.word_bytes:
                    raise ConfigError(
                        f"soc: {name}'s {t.weight_depth} weight lines of {t.line_stride} "
                        f"bytes must fit the {self.dram.size_bytes}-byte DRAM in whole "
                        f"{self.dram.word_bytes}-byte beats; lower {name}.weight_depth")
            e.soc_check()

    def to_dict(self):
        d = super().to_dict()
        d["engines"] = [e.to_dict() for e in self.engines]
        d["dram"] = None if self.dram is None else self.dram.to_dict()
        return d

    @property
    def line_bytes(self) -> int:
        return self.tmv.line_bits // 8

    @property
    def line_stride(self) -> int:
        """Bytes of address space per weight line (a power of two; bytes past
        ``line_bytes`` are ignored)."""
        return self.tmv.line_stride

    def address_map(self) -> dict[str, dict[str, int | str]]:
        """name -> {base, size, access}: every engine's regions, power-of-two aligned, in
        engine order (:class:`MemoryMap`)."""
        mm = MemoryMap()
        for e in self.engines:
            for name, size, access in e.soc_regions():
                mm.add(name, size, access)
        if self.dram is not None:
            mm.add(DRAM_REGION, self.dram.size_bytes, "rw")
        return mm.regions()


#: the address-map region of the device's DRAM (SocConfig.dram)
DRAM_REGION = "dram"


def served_soc(engine: str) -> SocConfig:
    """The SoC ``tritium serve --engine engine`` serves without ``--config``: that engine
    alone, in the config its description names (``Engine.served``). ConfigError for an
    unknown engine."""
    from tritium import registry

    return SocConfig(engines=(registry.get(engine).served_config(),))
