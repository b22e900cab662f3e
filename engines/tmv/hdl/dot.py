"""TernaryDot: an N-lane ternary dot-product unit.

Ports (``cfg = TernaryDotConfig``, N = ``cfg.lanes``, A = ``cfg.act_bits``):

- ``i``: stream of beats ``{w: N x 2-bit codes, x: N x signed(A), last: 1}``; a dot product
  of length L is ceil(L/N) beats, the final one with ``last`` set. Lanes past L carry
  the zero-weight code.
- ``o``: stream of ``signed(cfg.acc_bits)`` results, one per ``last`` beat.
- ``error``: sticky; set when a beat with the invalid code 0b11 is accepted (that lane
  counts as weight 0, so the pipeline never stalls or hangs on it). Cleared by reset.

Timing: one beat per cycle (throughput N MACs/cycle); the result of a vector is valid
``cfg.latency`` cycles after its last beat is accepted, so a length-L dot takes
``cfg.cycles(L) = ceil(L/N) - 1 + cfg.latency`` cycles unstalled. Back pressure on ``o``
stalls the whole pipeline (``i.ready`` follows ``o.ready`` combinationally when ``o``
holds a result), so no result is ever dropped.

Accumulator: ``cfg.acc_bits`` wide, enough for |sum| <= max_length * 2**(A-1); a vector
longer than ``cfg.max_length`` is the host's error (checked there), not the hardware's.
"""

from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from tritium.engines.tmv.config import TernaryDotConfig
from tritium.golden.ternary import CODE_INVALID, CODE_NEG, CODE_POS


def beat_layout(cfg: TernaryDotConfig) -> data.StructLayout:
    return data.StructLayout({
        "w": data.ArrayLayout(2, cfg.lanes),
        "x": data.ArrayLayout(signed(cfg.act_bits), cfg.lanes),
        "last": 1,
    })


def ternary_products(codes, xs):
    """Per-lane ternary 'products' as multiplexers: +x, -x or 0. Invalid code gives 0.

    Decoded bit by bit (code = weight + 1: 0b10 -> +x, 0b00 -> -x): comparing a 2-bit
    value with 0 would come out of yosys as a logical NOT that Verilator flags.
    """
    assert (CODE_POS, CODE_NEG) == (0b10, 0b00)
    return [Mux(c[1] & ~c[0], x, Mux(~(c[1] | c[0]), -x, 0)) for c, x in zip(codes, xs)]


def adder_tree(m: Module, domain: str, enable, terms, levels_per_stage: int, name: str,
               out_shape=None):
    """Pairwise adder tree with a register after every ``levels_per_stage`` levels and
    after the last one. Returns (sum, number_of_register_stages). Widths grow one bit per
    level, so no level can overflow. Registers load when ``enable`` is high. The final
    register takes ``out_shape`` if given (sign-extended), so a following accumulator
    adds operands of equal width."""
    # Pad to a power of two with zeros: yosys folds them away into explicit sign
    # extensions, so every emitted adder has operands of equal width (lint-clean).
    level, stages = list(terms), 0
    while len(level) & (len(level) - 1):
        level.append(Const(0, level[0].shape()))
    depth = 0
    while len(level) > 1:
        nxt = [level[k] + level[k + 1] for k in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        depth += 1
        if depth % levels_per_stage == 0 or len(nxt) == 1:
            regs = []
            for k, v in enumerate(nxt):
                shape = out_shape if (len(nxt) == 1 and out_shape is not None) else v.shape()
                r = Signal(shape, name=f"{name}_l{depth}_{k}")
                m.d[domain] += r.eq(Mux(enable, v, r))
                regs.append(r)
            nxt, stages = regs, stages + 1
        level = nxt
    return level[0], stages


class TernaryDot(wiring.Component):
    def __init__(self, cfg: TernaryDotConfig):
        self.cfg = cfg
        super().__init__({
            "i": In(stream.Signature(beat_layout(cfg))),
            "o": Out(stream.Signature(signed(cfg.acc_bits))),
            "error": Out(1),
        })

    def elaborate(self, platform):
        cfg, m = self.cfg, Module()
        en = Signal()  # the whole pipeline advances when the output slot is free
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        take = self.i.valid & en

        # Stage 0: lane multiplexers.
        # With a single lane there is no tree to widen the term, so the product register
        # itself takes the accumulator's width (keeps the accumulator add lint-clean).
        pshape = signed(cfg.acc_bits if cfg.lanes == 1 else cfg.act_bits + 1)
        prods = [Signal(pshape, name=f"p{k}") for k in range(cfg.lanes)]
        v0, last0 = Signal(), Signal()
        with m.If(en):
            m.d.sync += [p.eq(q) for p, q in
                         zip(prods, ternary_products(self.i.payload.w, self.i.payload.x))]
            m.d.sync += [v0.eq(self.i.valid), last0.eq(self.i.payload.last)]
        with m.If(take & any_code(self.i.payload.w, CODE_INVALID)):
            m.d.sync += self.error.eq(1)

        # Adder tree; valid/last travel beside it through the same number of registers.
        total, stages = adder_tree(m, "sync", en, prods, cfg.levels_per_stage, "sum",
                                   out_shape=signed(cfg.acc_bits))
        v, last = v0, last0
        for s in range(stages):
            vr, lr = Signal(name=f"v{s + 1}"), Signal(name=f"last{s + 1}")
            with m.If(en):
                m.d.sync += [vr.eq(v), lr.eq(last)]
            v, last = vr, lr
        assert 1 + stages + 1 == cfg.latency, "config latency formula out of step with hdl"

        # Accumulator and output register.
        acc = Signal(signed(cfg.acc_bits))
        acc_next = Signal(signed(cfg.acc_bits))
        m.d.comb += acc_next.eq(acc + total)
        with m.If(en):
            m.d.sync += self.o.valid.eq(v & last)
            with m.If(v):
                with m.If(last):
                    m.d.sync += [self.o.payload.eq(acc_next), acc.eq(0)]
                with m.Else():
                    m.d.sync += acc.eq(acc_next)
        return m


def any_code(codes, value):
    """1 if any lane's code equals ``value``."""
    hits = [c == value for c in codes]
    out = hits[0]
    for h in hits[1:]:
        out = out | h
    return out
