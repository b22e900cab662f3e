"""Clocks beyond the board clock on an ECP5: one ``EHXPLLL`` for every extra domain.

A board build may need clocks the board oscillator does not give: the SDRAM's memory
clock and its phase-shifted copy (:class:`~tritium.boards.dram.BoardDram`), and a UART
clock that is a whole multiple of the link's baud rate (``Board.uart_clock_hz``).
:class:`Pll` makes them all from the ``sync`` clock with one PLL: each
:class:`PllOutput` drives the clock domain of that name, which the parent defines
(:meth:`PllOutput.domain_of`; a domain is defined above every module that uses it). The first output is CLKOP, the
PLL's feedback, when the feedback divider can make it (else CLKOP is feedback only); the
others are the next of CLKOS, CLKOS2, CLKOS3, in order. A domain with ``reset``
is held in reset until the PLL locks (a reset synchroniser releases it on its own
clock); without, it is reset-less (a clock only forwarded to a pin).

nextpnr derives each output's clock constraint from the dividers and the board clock's
constraint, so no constraint is written here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from amaranth import ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib.cdc import ResetSynchronizer

from tritium.errors import ConfigError

#: ECP5 EHXPLLL ranges (Lattice TN1263; the ranges LiteX's ECP5PLL searches)
VCO_HZ = (400e6, 800e6)
PFD_HZ = (10e6, 400e6)
DIVS = range(1, 129)
OUT_HZ = (3.125e6, 400e6)
#: the EHXPLLL's outputs, in the order :class:`PllOutput` lists fill them
OUTPUTS = ("OP", "OS", "OS2", "OS3")
#: how far an output may miss its frequency (the SDRAM's clock is a maximum, the UART
#: checks its own baud tolerance from the frequency reached: :func:`output_hz`)
TOLERANCE = 0.01


@dataclasses.dataclass(frozen=True)
class PllOutput:
    """One PLL output: the clock domain ``domain`` at ``hz``, shifted by ``phase_deg``
    from CLKOP; ``reset``: held in reset until lock (else reset-less)."""

    domain: str
    hz: float
    phase_deg: float = 0.0
    reset: bool = True

    def domain_of(self) -> ClockDomain:
        """The clock domain the parent of the :class:`Pll` defines for this output."""
        return ClockDomain(self.domain, reset_less=not self.reset)


def pll_params(clkin_hz: float, outputs: Sequence[tuple[float | None, float]]) -> dict:
    """EHXPLLL parameters making ``outputs`` -- (Hz, phase in degrees) for CLKOP, CLKOS,
    CLKOS2, CLKOS3 in order, at most four -- from ``clkin_hz``. CLKOP is the feedback: a
    CLKOP of None Hz is feedback only, at any frequency the outputs' range allows. Of the
    divider sets that reach every output within :data:`TOLERANCE`, the one with the
    smallest worst error (the first found of equal ones). ConfigError if none does."""
    if not 1 <= len(outputs) <= len(OUTPUTS):
        raise ConfigError(f"an ECP5 PLL has {len(OUTPUTS)} outputs; asked for {len(outputs)}")
    best, best_err = None, TOLERANCE
    for clki in DIVS:
        if not PFD_HZ[0] <= clkin_hz / clki <= PFD_HZ[1]:
            continue
        for clkop in DIVS:
            for clkfb in DIVS:
                vco = clkin_hz / clki * clkfb * clkop
                if not (VCO_HZ[0] <= vco <= VCO_HZ[1] and vco / clkop <= OUT_HZ[1]):
                    continue
                divs = [clkop] + [min(DIVS[-1], max(1, round(vco / hz))) for hz, _ in outputs[1:]]
                err = max(abs(vco / d - hz) / hz if hz is not None else 0.0
                          for d, (hz, _) in zip(divs, outputs))
                if err <= best_err and (best is None or err < best_err):
                    best, best_err = (clki, clkfb, divs), err
                    if err == 0:
                        break
            if best_err == 0:
                break
        if best_err == 0:
            break
    if best is None:
        asked = ", ".join(f"{hz / 1e6:g}" for hz, _ in outputs if hz is not None)
        raise ConfigError(f"no ECP5 PLL setting makes {asked} MHz from {clkin_hz / 1e6:g} MHz "
                          f"(each within {TOLERANCE:.0%}); choose clocks the PLL can reach "
                          "together (whole divisions of one 400-800 MHz VCO)")
    clki, clkfb, divs = best
    vco = clkin_hz / clki * clkfb * divs[0]
    p = {"p_FEEDBK_PATH": "INT_OP", "p_CLKI_DIV": clki, "p_CLKFB_DIV": clkfb,
         "a_FREQUENCY_PIN_CLKI": f"{clkin_hz / 1e6:g}",
         "a_ICP_CURRENT": "6", "a_LPF_RESISTOR": "16",
         "a_MFG_ENABLE_FILTEROPAMP": "1", "a_MFG_GMCREF_SEL": "2"}
    for name, div, (_, phase) in zip(OUTPUTS, divs, outputs):
        # the phase in eighths of a VCO period, then whole VCO periods past DIV - 1
        steps = round(phase * div / 45)
        p.update({f"p_CLK{name}_ENABLE": "ENABLED", f"p_CLK{name}_DIV": div,
                  f"p_CLK{name}_CPHASE": (steps >> 3) + div - 1,
                  f"p_CLK{name}_FPHASE": steps & 7,
                  f"a_FREQUENCY_PIN_CLK{name}": f"{vco / div / 1e6:g}"})
    return p


def output_hz(clkin_hz: float, params: dict, name: str = "OP") -> float:
    """The frequency the PLL of ``params`` makes on output ``name`` (``OP``, ``OS`` ...):
    the VCO (input / CLKI_DIV x CLKFB_DIV x CLKOP_DIV) over that output's divider."""
    vco = clkin_hz / params["p_CLKI_DIV"] * params["p_CLKFB_DIV"] * params["p_CLKOP_DIV"]
    return vco / params[f"p_CLK{name}_DIV"]


def plan(clkin_hz: float, outputs: Sequence[PllOutput]
         ) -> tuple[dict, dict[str, float], dict[str, str]]:
    """The :func:`pll_params` for ``outputs``, the frequency each of their domains gets
    and the PLL output each is on (``OP``, ``OS`` ...). The first output is CLKOP when the
    feedback divider can make it; else CLKOP is feedback only and the outputs take CLKOS
    on (an input-divider step of 10 MHz or more leaves CLKOP at multiples of 12.5 MHz
    from a 25 MHz clock: 60 MHz needs a secondary output). ConfigError for a domain
    named twice or clocks the PLL cannot make."""
    names = [o.domain for o in outputs]
    if len(set(names)) != len(names):
        raise ConfigError(f"PLL outputs name a domain twice: {names}")
    asked = [(o.hz, o.phase_deg) for o in outputs]
    try:
        params, pins = pll_params(clkin_hz, asked), OUTPUTS
    except ConfigError:
        if len(outputs) == len(OUTPUTS):
            raise
        params, pins = pll_params(clkin_hz, [(None, 0.0)] + asked), OUTPUTS[1:]
    on = dict(zip(names, pins))
    return params, {d: output_hz(clkin_hz, params, n) for d, n in on.items()}, on


class Pll(Elaboratable):
    """One EHXPLLL on the ``sync`` clock (``clkin_hz``) making ``outputs`` (see the
    module docstring); ``params``, ``hz``, ``pins``: its :func:`plan`."""

    def __init__(self, clkin_hz: float, outputs: Sequence[PllOutput]):
        self.clkin_hz, self.outputs = clkin_hz, tuple(outputs)
        self.params, self.hz, self.pins = plan(clkin_hz, outputs)

    def elaborate(self, platform):
        m = Module()
        locked = Signal(name="pll_locked")
        clocks = {}
        for o in self.outputs:
            name = self.pins[o.domain]
            clocks[f"o_CLK{name}"] = clk = Signal(name=f"{o.domain}_clk")
            m.d.comb += ClockSignal(o.domain).eq(clk)
            if o.reset:
                m.submodules[f"{o.domain}_reset"] = ResetSynchronizer(~locked, domain=o.domain)
        m.submodules.pll = Instance(
            "EHXPLLL", i_CLKI=ClockSignal("sync"), i_RST=0, i_STDBY=0, i_PHASESEL0=0,
            i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0,
            i_ENCLKOP=0, i_ENCLKOS=0, i_ENCLKOS2=0, i_ENCLKOS3=0, o_LOCK=locked,
            **clocks, **self.params)
        return m
