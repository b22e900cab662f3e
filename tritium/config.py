"""Engine and SoC configurations: the one source of truth for widths, depths and formulas.

Each config is a frozen dataclass. The same object parametrises the Amaranth component,
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
import math
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
    """Base class: JSON round trip and field validation."""

    kind: ClassVar[str] = "config"

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            lo, hi = f.metadata.get("range", (None, None))
            if f.type in ("int", int) and not isinstance(value, int):
                raise ConfigError(f"{self.kind}.{f.name} must be an integer, got {value!r}")
            if lo is not None and value < lo or hi is not None and value > hi:
                raise ConfigError(
                    f"{self.kind}.{f.name}={value} is out of range [{lo}, {hi}]; "
                    f"choose a value inside it")
        self.validate()

    def validate(self) -> None:
        """Cross-field checks; subclasses raise ConfigError."""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Config":
        d = dict(d)
        kind = d.pop("kind", cls.kind)
        target = _REGISTRY.get(kind)
        if target is None:
            raise ConfigError(f"unknown config kind {kind!r}; known kinds: {sorted(_REGISTRY)}")
        if cls is not Config and target is not cls:
            raise ConfigError(f"expected a {cls.kind!r} config, got {kind!r}")
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
        except json.JSONDecodeError as e:
            raise ConfigError(f"config is not valid JSON ({e}); fix the file") from None
        if not isinstance(d, dict):
            raise ConfigError("config JSON must be an object with a 'kind' field")
        return cls.from_dict(d)


def load_config(path: str | Path) -> Config:
    """Read a config JSON file; raises ConfigError if missing or invalid."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist; pass the path of a JSON config")
    return Config.from_json(p.read_text())


def _field(default, lo=None, hi=None, doc=""):
    return dataclasses.field(default=default, metadata={"range": (lo, hi), "doc": doc})


@_register
@dataclasses.dataclass(frozen=True)
class TernaryDotConfig(Config):
    """N-lane ternary dot product: sum_k w_k * x_k with w in {-1, 0, +1}, x signed int.

    A dot product of length L arrives as ceil(L / lanes) beats; lanes past L in the last
    beat carry weight code 0 (value 0). ``max_length`` bounds L and thereby the accumulator.
    """

    kind: ClassVar[str] = "ternary-dot"

    lanes: int = _field(16, 1, 4096, "activations consumed per beat")
    max_length: int = _field(4096, 1, 1 << 24, "longest dot product, in elements")
    act_bits: int = _field(8, 2, 16, "signed activation width")
    levels_per_stage: int = _field(2, 1, 16, "adder-tree levels between pipeline registers")

    @property
    def act_min(self) -> int:
        return -(1 << (self.act_bits - 1))

    @property
    def act_max(self) -> int:
        return (1 << (self.act_bits - 1)) - 1

    @property
    def max_beats(self) -> int:
        return math.ceil(self.max_length / self.lanes)

    @property
    def acc_bits(self) -> int:
        """Accumulator width: |sum| <= max_length * 2**(act_bits-1), since -x_min = 2**(act_bits-1).

        The bound is reached by x = act_min, w = -1 on every element, so this width is exact
        (no smaller one holds every reachable sum) and overflow is impossible.
        """
        bound = self.max_length * (1 << (self.act_bits - 1))
        return signed_bits_for(-bound, bound)

    @property
    def tree_levels(self) -> int:
        return max(0, math.ceil(math.log2(self.lanes)))

    @property
    def latency(self) -> int:
        """Cycles from accepting the last beat of a vector to its result being valid.

        One register after the lane multiplexers, one after every ``levels_per_stage``
        adder levels (the last level always registered), one for the accumulator.
        """
        return 1 + math.ceil(self.tree_levels / self.levels_per_stage) + 1

    def cycles(self, length: int) -> int:
        """Cycles from the first input beat to the result, with no stalls on either side."""
        return math.ceil(length / self.lanes) - 1 + self.latency
