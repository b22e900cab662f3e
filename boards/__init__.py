"""Board tops and the open FPGA flow (yosys / nextpnr from the YoWASP wheels).

A board is one small module in this package defining ``BOARD = Board(...)``: its
amaranth-boards platform, the UART and reset resources, the openFPGALoader board name and
a default :class:`~tritium.config.SocConfig` sized to fit the part. :data:`BOARDS` lists
the modules; :func:`get_board` looks one up by name. The board clock is read from the
platform's default clock resource, never written here a second time.

``BoardTop`` (:mod:`.top`) wires clock, reset, UART and ``Soc``; :mod:`.flow` builds it
(Verilog, synthesis, place and route, bitstream) and parses the reports (:mod:`.report`).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from tritium import registry
from tritium.config import Config, SocConfig, served_soc
from tritium.errors import ConfigError, TritiumError

#: board modules of this package, by board name (one file per board)
BOARDS = {
    "ulx3s-85f": "ulx3s_85f",
    "ulx3s-12f": "ulx3s_12f",
    "icebreaker": "icebreaker",
    "arty-a7-35": "arty_a7_35",
}

#: nextpnr's placement seed unless one is given: ``tritium build --seed``'s default and
#: every explore build's, so that ``tritium build --config`` of an explored row places it
#: the same way
DEFAULT_SEED = 1


class BoardError(TritiumError):
    """A board build or programming step failed for a reason the user can act on."""


class UnknownBoardError(BoardError, ConfigError):
    """The board name is not in the registry."""


class DoesNotFitError(BoardError):
    """The design needs more of some resource than the part has."""


class TimingError(BoardError):
    """Place and route met no timing closure at the board clock."""


@dataclasses.dataclass(frozen=True)
class Board:
    """One board: how to build for it and what to put on it.

    ``platform``: the amaranth-boards platform class; ``reset``: the resource name of a
    reset button (or None: power-on reset only); ``uart``: the UART resource name;
    ``engine`` and ``max_payload``: the default SoC for the part (the rest of
    :class:`SocConfig` at its defaults, the clock from the platform); ``engine`` is the
    engine config sized for the part, given as its JSON dict (``"kind"`` picks the
    engine's config class through the registry) and held as that config;
    ``openfpgaloader``: the ``-b`` board name; ``bitstream``: True when the open flow
    can place, route and pack for the part (False: Verilog + constraints only);
    ``dram``: the :data:`tritium.dram.PARTS` name of the board's SDRAM when the build
    puts a controller on it (boards/dram.py), else None; the default SoC then has it as
    its DRAM (``SocConfig.dram``, the whole part). ``baud``: the default SoC's link rate
    (None: :class:`SocConfig`'s); ``uart_clock_hz``: the clock the UART runs from when the
    board clock cannot divide ``baud`` closely enough (a PLL output: boards/clocks.py),
    None: the SoC clock.
    """

    name: str
    part: str
    platform: type
    engine: Any
    max_payload: int
    openfpgaloader: str
    reset: str | None = None
    uart: str = "uart"
    bitstream: bool = True
    dram: str | None = None
    baud: int | None = None
    uart_clock_hz: int | None = None

    def __post_init__(self):
        if isinstance(self.engine, dict):
            object.__setattr__(self, "engine", Config.from_dict(self.engine))

    def make_platform(self):
        cls = self.platform
        if self.reset is not None:  # the platform's own domain logic ORs it with power-on reset
            cls = type(cls.__name__, (cls,), {"default_rst": self.reset})
        return cls()

    @property
    def clock_hz(self) -> int:
        return int(self.platform().default_clk_frequency)

    def default_config(self, engine: str | None = None) -> SocConfig:
        """The board's SoC with ``engine`` (a registry name), at the board's payload,
        clock, baud and DRAM: the board's own engine config (``engine``) when it is of
        that engine or no engine is given, else the one the served device has
        (:func:`tritium.config.served_soc`)."""
        from tritium.dram import DramConfig

        board = {"max_payload": self.max_payload, "clock_hz": self.clock_hz,
                 "dram": DramConfig(part=self.dram) if self.dram is not None else None}
        if self.baud is not None:
            board["baud"] = self.baud
        if engine is None or registry.of(self.engine).name == engine:
            return SocConfig(engines=(self.engine,), **board)
        return dataclasses.replace(served_soc(engine), **board)

    def dram_config(self, cfg: SocConfig | None = None, tester: bool = False):
        """The DRAM the board build puts a controller on: the SoC's own (``cfg.dram``, which
        must be the board's part; the SoC's DRAM port drives it), else with ``tester``
        the board's whole part (driven by the built-in tester), else None. ConfigError
        for a DRAM or a tester on a board without one."""
        from tritium.dram import DramConfig

        own = getattr(cfg, "dram", None) if cfg is not None else None
        if self.dram is None:
            if own is not None or tester:
                raise ConfigError(f"{self.name} has no SDRAM the build can drive; drop "
                                  "soc.dram (and the DRAM tester) for this board")
            return None
        if own is not None and own.part != self.dram:
            raise ConfigError(f"dram.part={own.part!r}, but {self.name} carries "
                              f"{self.dram!r}; use dram.part={self.dram!r}")
        if own is not None and tester:
            raise ConfigError("the DRAM tester drives the controller in place of the SoC; "
                              "build it with a SoC without dram (--dram tester does that)")
        return own or (DramConfig(part=self.dram) if tester else None)

    def config_for(self, cfg: SocConfig | None) -> SocConfig:
        """``cfg`` (or the board default) with the board's clock: the UART divisor and the
        timing target derive from it."""
        cfg = cfg or self.default_config()
        if cfg.clock_hz != self.clock_hz:
            cfg = dataclasses.replace(cfg, clock_hz=self.clock_hz)
        return cfg


def get_board(name: str) -> Board:
    mod = BOARDS.get(name)
    if mod is None:
        raise UnknownBoardError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}")
    return importlib.import_module(f"{__name__}.{mod}").BOARD
