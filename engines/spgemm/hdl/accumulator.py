"""HashAccumulator: one row's partial products merged into a hash table, one per cycle.

Ports (``cfg = SpgemmConfig``; I = ``cfg.index_bits``, V = ``cfg.value_bits``,
W = ``cfg.window_bits``):

- ``i``: stream of products ``{col: I, value: signed(V)}``.
- ``o``: stream of drained entries ``{col, value}``, in insertion order (first touch of
  each column in the pass), only those inside the pass's window.
- ``op``: the ⊕ of the semiring (its command code, :data:`tritium.engines.spgemm.config.SPGEMM_SEMIRINGS`);
  held constant while a row is merged.
- ``start`` (pulse, while idle): begin a pass over the column window [``lo``, ``limit``).
- ``drain`` (pulse, while idle): emit the pass's entries and clear the table.
- ``hi``: the window's current upper bound (``limit`` lowered by refused columns).
- ``idle``: no product in flight and not draining (``o`` may still hold the last beat).
- event strobes, one bit each per cycle: ``ev_probe`` (a slot read for a product),
  ``ev_collision`` (the slot held another column, probe the next), ``ev_merge`` (a
  product merged: hit or insert), ``ev_insert``, ``ev_hazard`` (the slot read was stale
  and the previous cycle's write was forwarded), ``ev_refuse`` (table full).

Table: ``cfg.slots`` slots of {used, col, value} in one simple dual-port RAM (one read,
one write port), and a list of the used slots (``cfg.capacity`` deep) that the drain
walks, so a drain costs one cycle per entry, not per slot.

Pipeline and timing: a product is registered (R, its slot hashed), then its slot is
read (the read issued as it leaves R), then in S1 the entry is compared and written
back. Read-modify-write hazards: the only write a read can miss is the one S1 performs
in the same cycle; S1 keeps that write in a forwarding register and uses it instead of
the RAM data when the slots match, so the same column on consecutive cycles merges at
full rate and never loses an update. A collision re-issues the read at slot+1 from S1
in the same cycle and holds R (one cycle per extra probe); a refusal holds R for one
cycle so the next product is checked against the lowered ``hi``. Products are therefore
merged strictly in order: the table and every statistic equal the sequential model of
:func:`tritium.engines.spgemm.golden.accumulate_row`, whatever the stalls. Throughput: one
product per cycle plus one cycle per collision and per refusal. A drain takes
``entries + 3`` cycles without back pressure on ``o``.

Products outside [lo, hi) are consumed without a probe. Bad input cannot hang it: a
probe for a new column always ends at a free slot since ``capacity < slots``.

Reset in the middle of a pass (the SoC's RESET during a run): the table's RAM keeps its
used slots while the list of them is lost, so the first cycles after such a reset sweep
every slot clear (``slots`` cycles, ``idle`` low and no product taken meanwhile). A
reset-less flag records whether the table may hold used slots (set by an insert, cleared
by a finished drain or the sweep), so a reset between passes, or at power-up, costs
nothing and every run's cycles stay those of the model.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from tritium.engines.spgemm.config import SPGEMM_SEMIRINGS, SpgemmConfig
from tritium.engines.spgemm.golden import HASH_MULTIPLIER, HASH_WORD_BITS

SEMIRING_BITS = 3
OP = {name: k for k, name in enumerate(SPGEMM_SEMIRINGS)}
EVENTS = ("probe", "collision", "merge", "insert", "hazard", "refuse")


def pair_layout(cfg: SpgemmConfig) -> data.StructLayout:
    return data.StructLayout({"col": cfg.index_bits, "value": signed(cfg.value_bits)})


def hash_slot(cfg: SpgemmConfig, col):
    """Knuth's multiplicative hash, as :func:`tritium.engines.spgemm.golden.hash_slot`: the top
    ``hash_bits`` of the low 32 bits of col·0x9E3779B9 (a constant multiply: adders)."""
    product = (col * Const(HASH_MULTIPLIER, HASH_WORD_BITS))[:HASH_WORD_BITS]
    return product[HASH_WORD_BITS - cfg.hash_bits:]


def merge(op, x, y, width: int):
    """x ⊕ y under semiring code ``op`` (wrapping add, min, max, or)."""
    total = (x + y)[:width].as_signed()
    return Mux(op == OP["min-plus"], Mux(x < y, x, y),
               Mux(op == OP["max-plus"], Mux(x > y, x, y),
                   Mux(op == OP["or-and"], (x | y).as_signed(), total)))


class HashAccumulator(wiring.Component):
    def __init__(self, cfg: SpgemmConfig):
        self.cfg = cfg
        W = cfg.window_bits
        super().__init__({
            "i": In(stream.Signature(pair_layout(cfg))),
            "o": Out(stream.Signature(pair_layout(cfg))),
            "op": In(SEMIRING_BITS),
            "start": In(1), "lo": In(W), "limit": In(W),
            "drain": In(1),
            "hi": Out(W), "idle": Out(1),
            **{f"ev_{e}": Out(1) for e in EVENTS},
        })

    def elaborate(self, platform):
        cfg, m = self.cfg, Module()
        H, I, V, W = cfg.hash_bits, cfg.index_bits, cfg.value_bits, cfg.window_bits
        entry = data.StructLayout({"used": 1, "col": I, "value": signed(V)})
        m.submodules.table = table = memory.Memory(shape=entry, depth=cfg.slots, init=[])
        m.submodules.used = used = memory.Memory(shape=unsigned(H), depth=cfg.capacity, init=[])
        rd, wr = table.read_port(), table.write_port()
        lrd, lwr = used.read_port(), used.write_port()

        lo = Signal(W)
        count = Signal(range(cfg.capacity + 1))
        draining = Signal()
        # the table may hold used slots (kept through a reset), and the sweep after one
        dirty = Signal(reset_less=True)
        settled, sweep = Signal(), Signal(range(cfg.slots))
        sweeping = Signal()
        m.d.comb += sweeping.eq(dirty & ~settled)
        with m.If(~sweeping):
            m.d.sync += settled.eq(1)

        # ---- R: the product and its slot --------------------------------------------
        r_valid, r_col, r_val, r_slot = Signal(), Signal(I), Signal(signed(V)), Signal(H)
        # ---- S1: the product whose slot data arrives this cycle ---------------------
        s_valid, s_col, s_val, s_slot = Signal(), Signal(I), Signal(signed(V)), Signal(H)
        f_valid, f_slot, f_entry = Signal(), Signal(H), Signal(entry)  # last cycle's write

        forwarded = Signal()
        seen = Signal(entry)
        m.d.comb += [forwarded.eq(f_valid & (f_slot == s_slot)),
                     seen.eq(Mux(forwarded, f_entry.as_value(), rd.data.as_value()))]
        hit = s_valid & seen.used & (seen.col == s_col)
        collide = s_valid & seen.used & (seen.col != s_col)
        free = s_valid & ~seen.used
        full = count == cfg.capacity
        insert = free & ~full
        refuse = free & full

        r_in_window = (r_col >= lo) & (r_col < self.hi)
        r_leaves = r_valid & ~collide & ~refuse
        issue = r_leaves & r_in_window
        m.d.comb += self.i.ready.eq(~draining & ~sweeping & (~r_valid | r_leaves))
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [r_col.eq(self.i.payload.col), r_val.eq(self.i.payload.value),
                         r_slot.eq(hash_slot(cfg, self.i.payload.col))]
        with m.If(self.i.ready):
            m.d.sync += r_valid.eq(self.i.valid)

        # S1 either resolves its product or re-probes the next slot; never waits.
        with m.If(collide):
            m.d.sync += s_slot.eq(s_slot + 1)
        with m.Else():
            m.d.sync += [s_valid.eq(issue), s_col.eq(r_col), s_val.eq(r_val),
                         s_slot.eq(r_slot)]
        with m.If(refuse):
            m.d.sync += self.hi.eq(s_col)

        write = Signal()
        m.d.comb += [write.eq(hit | insert), wr.addr.eq(s_slot), wr.en.eq(write),
                     wr.data.used.eq(1), wr.data.col.eq(s_col),
                     wr.data.value.eq(Mux(hit, merge(self.op, seen.value, s_val, V), s_val)),
                     lwr.addr.eq(count), lwr.data.eq(s_slot), lwr.en.eq(insert)]
        with m.If(insert):
            m.d.sync += [count.eq(count + 1), dirty.eq(1)]

        # ---- drain: walk the used-slot list; D1 reads the slot, D2 emits and clears ---
        en = Signal()  # the drain pipeline advances when the output register is free
        m.d.comb += en.eq(~self.o.valid | self.o.ready)
        d_k = Signal(range(cfg.capacity + 1))
        d1, d2, d2_slot = Signal(), Signal(), Signal(H)
        d_issue = draining & (d_k < count) & en
        m.d.comb += [lrd.addr.eq(d_k), lrd.en.eq(en)]
        with m.If(draining):
            m.d.comb += [rd.addr.eq(lrd.data), rd.en.eq(en)]
        with m.Else():
            m.d.comb += rd.addr.eq(Mux(collide, s_slot + 1, r_slot))
        with m.If(en):
            m.d.sync += [d1.eq(d_issue), d2.eq(d1), d2_slot.eq(lrd.data),
                         self.o.payload.col.eq(rd.data.col),
                         self.o.payload.value.eq(rd.data.value),
                         self.o.valid.eq(d2 & (Cat(rd.data.col, Const(0, W - I)) < self.hi))]
            with m.If(d_issue):
                m.d.sync += d_k.eq(d_k + 1)
        with m.If(d2 & en):  # clear the slot as its entry leaves
            m.d.comb += [wr.addr.eq(d2_slot), wr.en.eq(1), wr.data.eq(0)]
        with m.If(sweeping):
            m.d.comb += [wr.addr.eq(sweep), wr.en.eq(1), wr.data.eq(0)]
            m.d.sync += sweep.eq(sweep + 1)
            with m.If(sweep == cfg.slots - 1):
                m.d.sync += dirty.eq(0)
        m.d.sync += [f_valid.eq(wr.en), f_slot.eq(wr.addr), f_entry.eq(wr.data)]

        with m.If(draining & (d_k == count) & ~d1 & ~d2):
            m.d.sync += [draining.eq(0), count.eq(0), d_k.eq(0), dirty.eq(0)]
        with m.If(self.drain):
            m.d.sync += [draining.eq(1), d_k.eq(0)]
        with m.If(self.start):
            m.d.sync += [lo.eq(self.lo), self.hi.eq(self.limit)]

        m.d.comb += [
            self.idle.eq(~r_valid & ~s_valid & ~draining & ~sweeping),
            self.ev_probe.eq(issue | collide), self.ev_collision.eq(collide),
            self.ev_merge.eq(write), self.ev_insert.eq(insert),
            self.ev_hazard.eq(s_valid & forwarded), self.ev_refuse.eq(refuse),
        ]
        return m
