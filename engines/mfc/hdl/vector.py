"""MfcVector: the token core's vector unit, one element per cycle through a 4-stage pipeline.

Ports (``cfg = MfcConfig``; F, Q, R its ``frac_bits``, ``quant_shift``, ``rescale_frac``):

- ``i``: stream of elements ``{op, x, y, s0, s1, first, last}``: ``op`` a vector
  :class:`~tritium.engines.mfc.golden.Op`, ``x``/``y`` the operands (``y`` for VADD/VSUB/VMUL;
  VRESCALE's result element in ``x``), ``s0``/``s1`` the scalar operands ``s32(S[c])`` /
  ``s32(S[c+1])`` (VNORM takes ``s0``'s bits as unsigned), ``first``/``last`` mark a
  vector's ends (reductions restart at ``first``);
- ``o``: stream ``{data, acc, last}`` per element: ``data`` the element result of
  :mod:`tritium.engines.mfc.golden` (VQUANT: the int8 value, sign-extended), ``acc`` the
  reduction over the vector so far, this element included (VNORM: the wrapped sum of the
  squared results, VMAXABS: max |x|, VARGMAX: the first index of the maximum), ``last`` as
  it came in.

Stages: (1) operand select, the sigmoid's clamp, segment and chord-table look-up (a ROM
of :func:`~tritium.engines.mfc.golden.sigmoid_table`), add/sub, |x|; (2) the first multiplier
(x·y, x·s0 or the chord slope times the clamped x); (3) shift, round, offset and
clamp; (4) the second multiplier (VSILU: x·sig(x), VNORM: q·q); then ``o`` is formed from
the stage-4 registers. An element taken in cycle t is on ``o`` in cycle t + 4 (``LATENCY``);
throughput one element per cycle. Back pressure on ``o`` stalls every stage together.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from tritium.config import signed_bits_for
from tritium.engines.mfc.config import MfcConfig
from tritium.engines.mfc.golden import Op, sigmoid_table

from tritium.hdl.mem import memory_depth

#: cycles from an element taken on ``i`` to its result on ``o``
LATENCY = 4
INDEX_BITS = 16


def in_layout() -> data.StructLayout:
    return data.StructLayout({"op": 5, "x": signed(32), "y": signed(32), "s0": signed(32),
                              "s1": signed(32), "first": 1, "last": 1})


def out_layout() -> data.StructLayout:
    return data.StructLayout({"data": signed(32), "acc": 64, "last": 1})


def _stage(m: Module, en, name: str, **values):
    """Registers loading ``values`` when ``en``; returns them by name."""
    regs = {}
    for key, v in values.items():
        r = Signal.like(v, name=f"{name}_{key}") if isinstance(v, Signal) else \
            Signal(v.shape(), name=f"{name}_{key}")
        with m.If(en):
            m.d.sync += r.eq(v)
        regs[key] = r
    return regs


class MfcVector(wiring.Component):
    def __init__(self, cfg: MfcConfig):
        self.cfg = cfg
        super().__init__({"i": In(stream.Signature(in_layout())),
                          "o": Out(stream.Signature(out_layout()))})

    def elaborate(self, platform):
        cfg, m = self.cfg, Module()
        F, Q, R, N = cfg.frac_bits, cfg.quant_shift, cfg.rescale_frac, cfg.norm_shift
        G, lr = cfg.sig_segments_log2, cfg.sig_range_log2
        A, B = sigmoid_table(cfg)
        lim = 1 << (F + lr)
        # the chord value stays inside int32, so VSILU's second multiplier takes 32 bits
        assert max(abs(a) for a in A) * lim // (1 << F) + max(abs(b) for b in B) < 1 << 31

        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        p = self.i.payload

        # ---- stage 1 ----------------------------------------------------------------------
        def rom(name, values):
            # a one-chord sigmoid (G = 0) has a one-entry table: built two deep so that its
            # address is one bit wide (k stays 0; the spare entry is never read)
            depth = memory_depth(len(values))
            mem = memory.Memory(shape=signed(signed_bits_for(min(values), max(values))),
                                depth=depth, init=values + values[-1:] * (depth - len(values)))
            m.submodules[name] = mem
            return mem.read_port(domain="comb")

        xc = Signal(signed(32))
        m.d.comb += xc.eq(Mux(p.x < -lim, -lim, Mux(p.x > lim - 1, lim - 1, p.x)))
        k = Signal(max(1, G))
        if G:
            m.d.comb += k.eq((xc + lim) >> (F + lr + 1 - G))
        ra, rb = rom("sig_a", A), rom("sig_b", B)
        m.d.comb += [ra.addr.eq(k), rb.addr.eq(k)]
        is_sig = (p.op == Op.VSIG) | (p.op == Op.VSILU)
        # mb is 33 bits: VNORM's factor is the unsigned 32-bit u32(S[c])
        ma, mb = Signal(signed(32)), Signal(signed(33))
        m.d.comb += [ma.eq(Mux(is_sig, ra.data, p.x)),
                     mb.eq(Mux(p.op == Op.VMUL, p.y, Mux(p.op == Op.VNORM, p.s0.as_unsigned(),
                                                          Mux(is_sig, xc, p.s0))))]
        addsub, absx = Signal(signed(32)), Signal(32)
        m.d.comb += [addsub.eq(Mux(p.op == Op.VSUB, p.x - p.y, p.x + p.y)),
                     absx.eq(Mux(p.x < 0, -p.x, p.x))]
        s1 = _stage(m, en, "s1", valid=self.i.valid, op=p.op, ma=ma, mb=mb, x=p.x,
                    b=rb.data, s1=p.s1, addsub=addsub, absx=absx, first=p.first,
                    last=p.last)

        # ---- stage 2: the first multiplier ----------------------------------------------
        prod1 = Signal(signed(65))
        m.d.comb += prod1.eq(s1["ma"] * s1["mb"])
        s2 = _stage(m, en, "s2", **{k_: v for k_, v in s1.items() if k_ not in ("ma", "mb")},
                    p=prod1)

        # ---- stage 3: shifts, offsets, rounding, clamping -----------------------------------
        P1, op2 = s2["p"], s2["op"]
        value = Signal(signed(32))
        q, qn = Signal(signed(66)), Signal(signed(66))
        m.d.comb += [q.eq((P1 + (1 << (Q - 1))) >> Q), qn.eq((P1 + (1 << (N - 1))) >> N)]
        lo32, hi32 = -(1 << 31), (1 << 31) - 1
        # products round half up: add half an LSB of the result before taking its bits
        Pr, Prr = Signal(signed(66)), Signal(signed(66))
        m.d.comb += [Pr.eq(P1 + (1 << (F - 1))), Prr.eq(P1 + (1 << (R - F) >> 1))]
        with m.Switch(op2):
            with m.Case(Op.VMUL):
                m.d.comb += value.eq(Pr[F:F + 32])
            with m.Case(Op.VAFF):
                m.d.comb += value.eq(Pr[F:F + 32] + s2["s1"])
            with m.Case(Op.VSIG, Op.VSILU):
                m.d.comb += value.eq(P1[F:F + 32] + s2["b"])
            with m.Case(Op.VQUANT):
                m.d.comb += value.eq(Mux(q < -128, -128, Mux(q > 127, 127, q)))
            with m.Case(Op.VNORM):
                m.d.comb += value.eq(Mux(qn < lo32, lo32, Mux(qn > hi32, hi32, qn)))
            with m.Case(Op.VRESCALE):
                m.d.comb += value.eq(Prr[R - F:R - F + 32])
            with m.Case(Op.VADD, Op.VSUB):
                m.d.comb += value.eq(s2["addsub"])
            with m.Default():
                m.d.comb += value.eq(s2["x"])
        s3 = _stage(m, en, "s3", valid=s2["valid"], op=op2, v=value, x=s2["x"],
                    absx=s2["absx"], first=s2["first"], last=s2["last"])

        # ---- stage 4: the second multiplier (VSILU: x·sig, VNORM: q·q) ----------------------
        prod2 = Signal(signed(65))
        m.d.comb += prod2.eq(Mux(s3["op"] == Op.VNORM, s3["v"], s3["x"]) * s3["v"] +
                             Mux(s3["op"] == Op.VSILU, 1 << (F - 1), 0))
        s4 = _stage(m, en, "s4", **s3, p=prod2)
        m.d.comb += self.o.valid.eq(s4["valid"])

        # ---- output and reductions --------------------------------------------------------
        o = self.o.payload
        m.d.comb += [o.data.eq(Mux(s4["op"] == Op.VSILU, s4["p"][F:F + 32], s4["v"])),
                     o.last.eq(s4["last"])]
        acc_sum, acc_max = Signal(64), Signal(32)
        best_x, best_i, count = Signal(signed(32)), Signal(INDEX_BITS), Signal(INDEX_BITS)
        first = s4["first"]
        cur_i = Mux(first, 0, count)
        sum_n = Signal(64)
        max_n = Signal(32)
        better = first | (s4["x"] > best_x)
        m.d.comb += [sum_n.eq(Mux(first, 0, acc_sum) + s4["p"][:64]),
                     max_n.eq(Mux(first | (s4["absx"] > acc_max), s4["absx"], acc_max))]
        bi_n = Mux(better, cur_i, best_i)
        with m.Switch(s4["op"]):
            with m.Case(Op.VNORM):
                m.d.comb += o.acc.eq(sum_n)
            with m.Case(Op.VMAXABS):
                m.d.comb += o.acc.eq(max_n)
            with m.Case(Op.VARGMAX):
                m.d.comb += o.acc.eq(bi_n)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [acc_sum.eq(sum_n), acc_max.eq(max_n), best_i.eq(bi_n),
                         best_x.eq(Mux(better, s4["x"], best_x)), count.eq(cur_i + 1)]
        return m
