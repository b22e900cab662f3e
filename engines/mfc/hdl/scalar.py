"""MfcScalar: the token core's iterative scalar unit (SMUL, SDIV, SSQRT), one bit per cycle.

Ports:

- ``i``: stream ``{op, a, b, shift}`` (``op``: :data:`SCALAR_CODES`; ``a``, ``b`` the 64-bit
  register values; ``shift`` 0..63), taken while the unit is idle;
- ``o``: stream ``{value: 64}``: the result, held until taken.

Results, exactly as :mod:`tritium.engines.mfc.golden` defines them:

- ``smul``: ``wrap64((a·b) >> shift)``: a signed radix-2 shift-add multiplier (the sign
  bit of ``b`` subtracts), the 128-bit product shifted on the way out;
- ``sdiv``: ``u64(a << shift) // u64(b)``, 0 when ``b = 0``: restoring division;
- ``ssqrt``: ``isqrt(u64(a << shift))``: the digit-by-digit square root, two radicand
  bits per step.

Timing: ``i`` is taken in cycle 0, the iterations run in cycles 1..N (N = 64, 64, 32:
:data:`ITERATIONS`), ``o`` is valid from cycle N + 1. With ``o`` always ready an
operation occupies the unit for ``N + 2`` cycles, the ``scalar_cycles`` of
:class:`~tritium.engines.mfc.config.MfcConfig`.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from tritium.engines.mfc.config import MFC_SCALAR_OPS

#: operation codes on ``i.op``, in the order of MFC_SCALAR_OPS
SCALAR_CODES = {name: k for k, name in enumerate(MFC_SCALAR_OPS)}
#: iterations (one result bit each) per operation
ITERATIONS = {"smul": 64, "sdiv": 64, "ssqrt": 32}
#: cycles from taking ``i`` to ``o`` being taken, with ``o`` always ready
BUSY_CYCLES = {name: n + 2 for name, n in ITERATIONS.items()}

IN_LAYOUT = data.StructLayout({"op": 2, "a": 64, "b": 64, "shift": 6})
OUT_LAYOUT = data.StructLayout({"value": 64})


class MfcScalar(wiring.Component):
    def __init__(self):
        super().__init__({"i": In(stream.Signature(IN_LAYOUT)),
                          "o": Out(stream.Signature(OUT_LAYOUT))})

    def elaborate(self, platform):
        m = Module()
        op = Signal(2)
        left = Signal(range(65))      # iterations still to run
        busy = Signal()
        # smul: hi (signed, one guard bit over the sum) and lo (the multiplier, shifted out
        # as the product's low half fills in); sdiv: rem and quotient; ssqrt: rem and root
        hi = Signal(signed(66))
        lo = Signal(64)
        mcand = Signal(signed(64))
        den = Signal(64)
        shift = Signal(6)
        step = Signal(range(64))       # index of the iteration running now

        p = self.i.payload
        m.d.comb += self.i.ready.eq(~busy & ~self.o.valid)
        with m.If(self.i.valid & self.i.ready):
            shifted = (p.a << p.shift)[:64]
            m.d.sync += [busy.eq(1), op.eq(p.op), shift.eq(p.shift), step.eq(0),
                         mcand.eq(Mux(p.op == SCALAR_CODES["ssqrt"], 0, p.a)), den.eq(p.b),
                         hi.eq(0)]
            with m.Switch(p.op):
                with m.Case(SCALAR_CODES["smul"]):
                    m.d.sync += [lo.eq(p.b), left.eq(ITERATIONS["smul"])]
                with m.Case(SCALAR_CODES["sdiv"]):
                    m.d.sync += [lo.eq(shifted), left.eq(ITERATIONS["sdiv"])]
                with m.Default():
                    m.d.sync += [lo.eq(shifted), left.eq(ITERATIONS["ssqrt"])]

        with m.If(busy):
            m.d.sync += [left.eq(left - 1), step.eq(step + 1)]
            with m.If(left == 1):
                m.d.sync += [busy.eq(0), self.o.valid.eq(1)]
            with m.Switch(op):
                with m.Case(SCALAR_CODES["smul"]):
                    addend = Mux(lo[0], Mux(step == 63, -mcand, mcand), 0)
                    s = Signal(signed(66))
                    m.d.comb += s.eq(hi + addend)
                    m.d.sync += [hi.eq(s >> 1), lo.eq(Cat(lo[1:], s[0]))]
                with m.Case(SCALAR_CODES["sdiv"]):
                    # hi holds the (non-negative) remainder, lo the dividend/quotient
                    rem = Cat(lo[63], hi[:64])
                    fits = rem >= den
                    m.d.sync += [hi.eq(Mux(fits, rem - den, rem)),
                                 lo.eq(Cat(fits, lo[:63]))]
                with m.Default():
                    # hi: remainder, mcand: root so far, lo: radicand bits not yet used
                    rem = Cat(lo[62:64], hi[:34])
                    trial = Cat(Const(1, 2), mcand[:32])
                    fits = rem >= trial
                    m.d.sync += [hi.eq(Mux(fits, rem - trial, rem)), lo.eq(lo << 2),
                                 mcand.eq(Cat(fits, mcand[:63]))]

        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        product = Cat(lo, hi[:64]).as_signed()
        with m.Switch(op):
            with m.Case(SCALAR_CODES["smul"]):
                m.d.comb += self.o.payload.value.eq((product >> shift)[:64])
            with m.Case(SCALAR_CODES["sdiv"]):
                m.d.comb += self.o.payload.value.eq(Mux(den == 0, 0, lo))
            with m.Default():
                m.d.comb += self.o.payload.value.eq(mcand[:32])
        return m
