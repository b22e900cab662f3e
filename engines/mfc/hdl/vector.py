"""MfcVector: the token core's vector unit, ``cfg.vpu_lanes`` elements a cycle through a
4-stage pipeline.

Ports (``cfg = MfcConfig``; F, Q, R its ``frac_bits``, ``quant_shift``, ``rescale_frac``;
L = ``vpu_lanes``): one beat is a group of up to L consecutive elements of a vector,
element ``base + k`` in lane k.

- ``i``: stream of groups ``{op, x[L], y[L], s0, s1, mask, first, last}``: ``op`` a vector
  :class:`~tritium.engines.mfc.golden.Op`, ``x``/``y`` the operands (``y`` for
  VADD/VSUB/VMUL; VRESCALE's result elements in ``x``), ``s0``/``s1`` the scalar
  operands ``s32(S[c])`` / ``s32(S[c+1])`` (VNORM takes ``s0``'s bits as unsigned),
  ``mask`` the lanes that hold elements (a prefix: all L but in a vector's last, part-full
  group), ``first``/``last`` mark a vector's first and last group (reductions restart at
  ``first``);
- ``o``: stream ``{data[L], acc, mask, last}`` per group: ``data`` the element results
  of :mod:`tritium.engines.mfc.golden` (VQUANT: the int8 value, sign-extended), ``acc``
  the reduction over the vector so far, this group's masked lanes included (VNORM: the
  wrapped sum of the squared results, VMAXABS: max |x|, VARGMAX: the first index of the
  maximum: within a group the lowest lane wins a tie, across groups only a strictly
  larger value replaces the best so far, so it is the golden's ``argmax``), ``mask`` and
  ``last`` as they came in.

Stages, per lane: (1) operand select, the sigmoid's clamp, segment and chord-table look-up
(a ROM of :func:`~tritium.engines.mfc.golden.sigmoid_table` per lane), add/sub, |x|; (2)
the first multiplier (x·y, x·s0 or the chord slope times the clamped x); (3) shift,
round, offset and clamp; (4) the second multiplier (VSILU: x·sig(x), VNORM: q·q); then
``o`` is formed from the stage-4 registers, the lanes' reductions combined (an adder tree
of the squares, a max tree, an argmax tree). A group taken in cycle t is on ``o`` in cycle
t + 4 (``LATENCY``); throughput one group per cycle. Back pressure on ``o`` stalls every
stage together.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from tritium.config import signed_bits_for
from tritium.engines.mfc.config import INSTR_FIELDS, MfcConfig
from tritium.engines.mfc.golden import Op, sigmoid_table

from tritium.hdl.mem import memory_depth

#: cycles from a group taken on ``i`` to its result on ``o``
LATENCY = 4
#: VARGMAX's element index: as wide as the vector length (the ``a`` field)
INDEX_BITS = dict(INSTR_FIELDS)["a"]


def in_layout(cfg: MfcConfig) -> data.StructLayout:
    L = cfg.vpu_lanes
    return data.StructLayout({"op": 5, "x": data.ArrayLayout(signed(32), L),
                              "y": data.ArrayLayout(signed(32), L), "s0": signed(32),
                              "s1": signed(32), "mask": L, "first": 1, "last": 1})


def out_layout(cfg: MfcConfig) -> data.StructLayout:
    return data.StructLayout({"data": data.ArrayLayout(signed(32), cfg.vpu_lanes),
                              "acc": 64, "mask": cfg.vpu_lanes, "last": 1})


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


def _tree(items, combine):
    """Reduce ``items`` pairwise (a balanced tree; ``combine(left, right)``, left lower)."""
    while len(items) > 1:
        items = [combine(items[k], items[k + 1]) if k + 1 < len(items) else items[k]
                 for k in range(0, len(items), 2)]
    return items[0]


class MfcVector(wiring.Component):
    def __init__(self, cfg: MfcConfig):
        self.cfg = cfg
        super().__init__({"i": In(stream.Signature(in_layout(cfg))),
                          "o": Out(stream.Signature(out_layout(cfg)))})

    def elaborate(self, platform):
        cfg, m = self.cfg, Module()
        F, L = cfg.frac_bits, cfg.vpu_lanes
        A, B = sigmoid_table(cfg)
        # the chord value stays inside int32, so VSILU's second multiplier takes 32 bits
        assert max(abs(a) for a in A) * (1 << (F + cfg.sig_range_log2)) // (1 << F) + \
            max(abs(b) for b in B) < 1 << 31

        en = Signal()
        m.d.comb += [en.eq(~self.o.valid | self.o.ready), self.i.ready.eq(en)]
        p = self.i.payload
        # the group's shared fields, staged beside the lanes
        g = dict(valid=self.i.valid, op=p.op, s1=p.s1, mask=p.mask, first=p.first,
                 last=p.last)
        for name in ("s1", "s2", "s3", "s4"):
            g = _stage(m, en, f"{name}g", **g)
        lanes = [self._lane(m, en, k, p.op, p.x[k], p.y[k], p.s0, p.s1) for k in range(L)]
        m.d.comb += self.o.valid.eq(g["valid"])

        # ---- output and reductions --------------------------------------------------------
        o = self.o.payload
        m.d.comb += [o.last.eq(g["last"]), o.mask.eq(g["mask"])]
        for k, s4 in enumerate(lanes):
            m.d.comb += o.data[k].eq(Mux(g["op"] == Op.VSILU, s4["p"][F:F + 32], s4["v"]))
        acc_sum, acc_max = Signal(64), Signal(32)
        best_x, best_i, count = Signal(signed(32)), Signal(INDEX_BITS), Signal(INDEX_BITS)
        first, mask = g["first"], g["mask"]
        cur_i = Mux(first, 0, count)
        # masked lanes add 0 to the sum and |x| = 0 to the max; the argmax's lane 0 always
        # holds an element, and a later lane wins only if it holds one and is larger
        group_sum = _tree([Mux(mask[k], s4["p"][:64], 0) for k, s4 in enumerate(lanes)],
                          lambda a, b: (a + b)[:64])
        group_max = _tree([Mux(mask[k], s4["absx"], 0) for k, s4 in enumerate(lanes)],
                          lambda a, b: Mux(b > a, b, a))

        def pick(left, right):
            take = right[2] & (right[0] > left[0])
            return (Mux(take, right[0], left[0]), Mux(take, right[1], left[1]),
                    left[2] | right[2])

        gx, gi, _ = _tree([(s4["x"], Const(k, max(1, (L - 1).bit_length())), mask[k])
                           for k, s4 in enumerate(lanes)], pick)
        sum_n, max_n = Signal(64), Signal(32)
        gx_s = Signal(signed(32))
        m.d.comb += [sum_n.eq(Mux(first, 0, acc_sum) + group_sum),
                     max_n.eq(Mux(first | (group_max > acc_max), group_max, acc_max)),
                     gx_s.eq(gx)]
        better = first | (gx_s > best_x)
        bi_n = Mux(better, cur_i + gi, best_i)
        with m.Switch(g["op"]):
            with m.Case(Op.VNORM):
                m.d.comb += o.acc.eq(sum_n)
            with m.Case(Op.VMAXABS):
                m.d.comb += o.acc.eq(max_n)
            with m.Case(Op.VARGMAX):
                m.d.comb += o.acc.eq(bi_n)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [acc_sum.eq(sum_n), acc_max.eq(max_n), best_i.eq(bi_n),
                         best_x.eq(Mux(better, gx_s, best_x)), count.eq(cur_i + L)]
        return m

    def _lane(self, m: Module, en, k: int, op, x, y, s0, s1) -> dict:
        """One lane's four stages; returns its stage-4 registers (``v`` the element result,
        ``p`` the second product, ``x`` and ``absx`` the operand)."""
        cfg = self.cfg
        F, Q, R, N = cfg.frac_bits, cfg.quant_shift, cfg.rescale_frac, cfg.norm_shift
        G, lr = cfg.sig_segments_log2, cfg.sig_range_log2
        A, B = sigmoid_table(cfg)
        lim = 1 << (F + lr)
        name = f"l{k}"

        # ---- stage 1 ----------------------------------------------------------------------
        def rom(rname, values):
            # a one-chord sigmoid (G = 0) has a one-entry table: built two deep so that its
            # address is one bit wide (k stays 0; the spare entry is never read)
            depth = memory_depth(len(values))
            mem = memory.Memory(shape=signed(signed_bits_for(min(values), max(values))),
                                depth=depth, init=values + values[-1:] * (depth - len(values)))
            m.submodules[f"{name}_{rname}"] = mem
            return mem.read_port(domain="comb")

        xc = Signal(signed(32), name=f"{name}_xc")
        m.d.comb += xc.eq(Mux(x < -lim, -lim, Mux(x > lim - 1, lim - 1, x)))
        seg = Signal(max(1, G), name=f"{name}_seg")
        if G:
            m.d.comb += seg.eq((xc + lim) >> (F + lr + 1 - G))
        ra, rb = rom("sig_a", A), rom("sig_b", B)
        m.d.comb += [ra.addr.eq(seg), rb.addr.eq(seg)]
        is_sig = (op == Op.VSIG) | (op == Op.VSILU)
        # mb is 33 bits: VNORM's factor is the unsigned 32-bit u32(S[c])
        ma, mb = Signal(signed(32), name=f"{name}_ma"), Signal(signed(33), name=f"{name}_mb")
        m.d.comb += [ma.eq(Mux(is_sig, ra.data, x)),
                     mb.eq(Mux(op == Op.VMUL, y, Mux(op == Op.VNORM, s0.as_unsigned(),
                                                     Mux(is_sig, xc, s0))))]
        addsub, absx = Signal(signed(32), name=f"{name}_addsub"), Signal(32, name=f"{name}_absx")
        m.d.comb += [addsub.eq(Mux(op == Op.VSUB, x - y, x + y)),
                     absx.eq(Mux(x < 0, -x, x))]
        s1r = _stage(m, en, f"{name}s1", op=op, ma=ma, mb=mb, x=x, b=rb.data, s1=s1,
                     addsub=addsub, absx=absx)

        # ---- stage 2: the first multiplier ----------------------------------------------
        prod1 = Signal(signed(65), name=f"{name}_prod1")
        m.d.comb += prod1.eq(s1r["ma"] * s1r["mb"])
        s2 = _stage(m, en, f"{name}s2", **{k_: v for k_, v in s1r.items()
                                            if k_ not in ("ma", "mb")}, p=prod1)

        # ---- stage 3: shifts, offsets, rounding, clamping -----------------------------------
        P1, op2 = s2["p"], s2["op"]
        value = Signal(signed(32), name=f"{name}_value")
        q, qn = Signal(signed(66), name=f"{name}_q"), Signal(signed(66), name=f"{name}_qn")
        m.d.comb += [q.eq((P1 + (1 << (Q - 1))) >> Q), qn.eq((P1 + (1 << (N - 1))) >> N)]
        lo32, hi32 = -(1 << 31), (1 << 31) - 1
        # products round half up: add half an LSB of the result before taking its bits
        Pr, Prr = Signal(signed(66), name=f"{name}_pr"), Signal(signed(66), name=f"{name}_prr")
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
        s3 = _stage(m, en, f"{name}s3", op=op2, v=value, x=s2["x"], absx=s2["absx"])

        # ---- stage 4: the second multiplier (VSILU: x·sig, VNORM: q·q) ----------------------
        prod2 = Signal(signed(65), name=f"{name}_prod2")
        m.d.comb += prod2.eq(Mux(s3["op"] == Op.VNORM, s3["v"], s3["x"]) * s3["v"] +
                             Mux(s3["op"] == Op.VSILU, 1 << (F - 1), 0))
        return _stage(m, en, f"{name}s4", v=s3["v"], x=s3["x"], absx=s3["absx"], p=prod2)
