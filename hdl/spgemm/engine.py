"""SpgemmEngine: C = A·B (CSR) under a semiring, rows dealt to P row-PEs.

Ports (``cfg = SpgemmConfig``; I = ``cfg.index_bits``, V = ``cfg.value_bits``):

- ``load``: stream ``{mem: 2, addr, data}`` writing the on-chip operand memories:
  ``mem`` 0 = A row extents, 1 = A entries, 2 = B row extents, 3 = B entries
  (:data:`MEMORIES`). A row extent is ``{start, end}`` (CSR ``indptr[r]``,
  ``indptr[r+1]``: one read gives a row's range); an entry is ``{col, value}``.
  An address beyond the memory's depth sets ``error`` and writes nothing.
- ``cmd``: stream ``{rows, b_rows, semiring}``, taken while not ``busy``: compute rows
  0..rows-1 of C = A·B, where B has ``b_rows`` rows. A semiring not built into the
  engine, or ``rows``/``b_rows`` above ``max_dim``, sets ``error`` and runs nothing.
- ``c``: stream of C's entries ``{row, col, value}``. A row's entries leave in drain order
  (see :mod:`tritium.golden.spgemm`); rows from different PEs interleave.
- ``busy``: high from the accepted ``cmd`` until the last entry of C has left.
- ``error``: sticky (cleared by reset): bad load address, bad command, or an A column
  index >= ``b_rows`` (that entry is skipped). Never a hang.
- ``counters``: :data:`COUNTERS`, each ``cfg.counter_bits`` wide, cleared by a ``cmd``
  and counting that run: ``cycles`` (busy cycles), ``products``, ``probes``,
  ``collisions``, ``merges``, ``inserts``, ``hazards`` (forwarded read-modify-writes),
  ``passes`` (extra passes of overflowing rows), ``mem_reads`` (operand words read),
  ``c_words`` (entries of C written), and stall cycles summed over PEs:
  ``stall_merge`` (a product waits for the table: collisions/refusals),
  ``stall_fetch`` (a pass has work but no product ready: memory latency between
  rows of B), ``stall_pass`` (a PE between passes: row start, drain wait, pass setup),
  ``stall_output`` (a drained entry waits for ``c``), ``idle_pe`` (a PE without a row).

Each PE: a fetcher walks A's row (extent, then per entry the entry and B's row extent,
one memory word per cycle, pipelined into a job FIFO), a streamer walks each B row one
entry per cycle and forms the product (⊗) into a :class:`HashAccumulator`. After the
pass, the PE drains the table to ``c`` and starts another pass if the row overflowed
(window scheme in :mod:`tritium.golden.spgemm`). Rows go to whichever PE is idle, lowest
index first, so a long row never holds the others. Every memory has one read port per
PE (block RAM replicated per port) and the ``load`` write port.
"""

from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from tritium.config import SPGEMM_SEMIRINGS, SpgemmConfig

from .accumulator import EVENTS, OP, SEMIRING_BITS, HashAccumulator

MEMORIES = ("a_ext", "a_ent", "b_ext", "b_ent")
COUNTERS = ("cycles", "products", "probes", "collisions", "merges", "inserts", "hazards",
            "passes", "mem_reads", "c_words", "stall_merge", "stall_fetch", "stall_pass",
            "stall_output", "idle_pe")
#: jobs (one per A entry whose B row is not empty) buffered between fetcher and streamer
JOB_DEPTH = 4


def extent_layout(cfg):
    return data.StructLayout({"start": cfg.ptr_bits, "end": cfg.ptr_bits})


def entry_layout(cfg):
    return data.StructLayout({"col": cfg.index_bits, "value": signed(cfg.value_bits)})


def load_layout(cfg):
    width = max(extent_layout(cfg).size, entry_layout(cfg).size)
    return data.StructLayout({"mem": 2, "addr": cfg.ptr_bits, "data": width})


def cmd_layout(cfg):
    dim = cfg.index_bits + 1
    return data.StructLayout({"rows": dim, "b_rows": dim, "semiring": SEMIRING_BITS})


def c_layout(cfg):
    return data.StructLayout({"row": cfg.index_bits, "col": cfg.index_bits,
                              "value": signed(cfg.value_bits)})


def counters_layout(cfg):
    return data.StructLayout({name: cfg.counter_bits for name in COUNTERS})


def memory_depths(cfg) -> dict[str, int]:
    return {"a_ext": cfg.max_dim, "a_ent": cfg.max_nnz, "b_ext": cfg.max_dim,
            "b_ent": cfg.max_nnz}


def read_signature(depth: int, layout) -> wiring.Signature:
    return wiring.Signature({"addr": Out(range(depth)), "en": Out(1), "data": In(layout)})


def product(cfg, op, a, b):
    """a ⊗ b under semiring code ``op`` (see the table in tritium.golden.spgemm)."""
    V = cfg.value_bits
    full = a * b
    low = full[:V].as_signed()
    fixed = full[cfg.frac_bits:cfg.frac_bits + V].as_signed()
    path = (a + b)[:V].as_signed()
    inf = Mux(op == OP["min-plus"], cfg.value_max, cfg.value_min)
    absorbed = (a == inf) | (b == inf)
    return Mux(op == OP["fixed"], fixed,
               Mux((op == OP["min-plus"]) | (op == OP["max-plus"]), Mux(absorbed, inf, path),
                   Mux(op == OP["or-and"], (a & b).as_signed(), low)))


class RowPE(wiring.Component):
    """One row-PE: fetcher, streamer, ⊗, a HashAccumulator, pass control.

    ``row`` takes a row index when the PE is idle; ``o`` emits the row's C entries.
    ``op``, ``b_rows`` hold for the whole run. Memory read ports are driven through
    ``a_ext`` … ``b_ent`` (one-cycle read latency, ``en`` holds the data)."""

    def __init__(self, cfg: SpgemmConfig):
        self.cfg = cfg
        depths = memory_depths(cfg)
        layouts = {"a_ext": extent_layout(cfg), "a_ent": entry_layout(cfg),
                   "b_ext": extent_layout(cfg), "b_ent": entry_layout(cfg)}
        super().__init__({
            "row": In(stream.Signature(cfg.index_bits)),
            "o": Out(stream.Signature(c_layout(cfg))),
            "op": In(SEMIRING_BITS), "b_rows": In(cfg.index_bits + 1),
            **{name: Out(read_signature(depths[name], layouts[name])) for name in MEMORIES},
            "bad_col": Out(1), "reads": Out(range(len(MEMORIES) + 1)), "idle": Out(1),
            **{f"ev_{e}": Out(1) for e in EVENTS},
            "ev_pass": Out(1), "ev_product": Out(1), "ev_stall_merge": Out(1),
            "ev_stall_fetch": Out(1), "ev_stall_pass": Out(1), "ev_stall_output": Out(1),
        })

    def elaborate(self, platform):
        cfg, m = self.cfg, Module()
        W = cfg.window_bits
        m.submodules.acc = acc = HashAccumulator(cfg)
        m.submodules.jobs = jobs = fifo.SyncFIFO(width=cfg.value_bits + 2 * cfg.ptr_bits,
                                                 depth=JOB_DEPTH)
        job = data.StructLayout({"a": signed(cfg.value_bits), "start": cfg.ptr_bits,
                                 "end": cfg.ptr_bits})
        m.d.comb += acc.op.eq(self.op)

        row = Signal(cfg.index_bits)
        lo, limit = Signal(W), Signal(W)
        p, p_end = Signal(cfg.ptr_bits), Signal(cfg.ptr_bits)

        # ---- fetcher: A entry (F0 -> F1), B extent (F1 -> F2), job FIFO -----------------
        f1, f2, f2_a = Signal(), Signal(), Signal(signed(cfg.value_bits))
        fetching = Signal()
        credit = jobs.level + f1 + f2 < JOB_DEPTH
        f0 = fetching & (p != p_end) & credit
        m.d.comb += [self.a_ent.addr.eq(p), self.a_ent.en.eq(f0)]
        with m.If(f0):
            m.d.sync += p.eq(p + 1)
        bad = f1 & (self.a_ent.data.col >= self.b_rows)
        m.d.comb += [self.bad_col.eq(bad),
                     self.b_ext.addr.eq(self.a_ent.data.col), self.b_ext.en.eq(f1 & ~bad)]
        m.d.sync += [f1.eq(f0), f2.eq(f1 & ~bad), f2_a.eq(self.a_ent.data.value)]
        new_job = Signal(job)
        m.d.comb += [new_job.a.eq(f2_a), new_job.start.eq(self.b_ext.data.start),
                     new_job.end.eq(self.b_ext.data.end),
                     jobs.w_data.eq(new_job), jobs.w_en.eq(f2 & (new_job.start != new_job.end))]

        # ---- streamer: one B entry per cycle, product register into the table -------
        en = Signal()
        m.d.comb += en.eq(~acc.i.valid | acc.i.ready)
        have, q, q_end, a_cur = Signal(), Signal(cfg.ptr_bits), Signal(cfg.ptr_bits), \
            Signal(signed(cfg.value_bits))
        last = have & (q + 1 == q_end)
        issue = have & en
        loading = en & (~have | last) & jobs.r_rdy
        head = job(jobs.r_data)
        m.d.comb += [jobs.r_en.eq(loading), self.b_ent.addr.eq(q), self.b_ent.en.eq(issue)]
        with m.If(loading):
            m.d.sync += [have.eq(1), q.eq(head.start), q_end.eq(head.end), a_cur.eq(head.a)]
        with m.Elif(issue & last):
            m.d.sync += have.eq(0)
        with m.Elif(issue):
            m.d.sync += q.eq(q + 1)
        d_valid, d_a = Signal(), Signal(signed(cfg.value_bits))
        with m.If(en):
            m.d.sync += [d_valid.eq(issue), d_a.eq(a_cur), acc.i.valid.eq(d_valid),
                         acc.i.payload.col.eq(self.b_ent.data.col),
                         acc.i.payload.value.eq(product(cfg, self.op, d_a,
                                                        self.b_ent.data.value))]
        pipeline_empty = ~f1 & ~f2 & ~jobs.r_rdy & ~have & ~d_valid & ~acc.i.valid

        # ---- pass control ----------------------------------------------------------------
        m.d.comb += [self.o.valid.eq(acc.o.valid), acc.o.ready.eq(self.o.ready),
                     self.o.payload.row.eq(row), self.o.payload.col.eq(acc.o.payload.col),
                     self.o.payload.value.eq(acc.o.payload.value),
                     acc.lo.eq(lo), acc.limit.eq(limit)]
        with m.FSM() as fsm:
            with m.State("IDLE"):
                # the row tag travels beside acc.o, so wait until its last entry left
                m.d.comb += self.row.ready.eq(~acc.o.valid)
                with m.If(self.row.valid & ~acc.o.valid):
                    m.d.sync += [row.eq(self.row.payload), lo.eq(0), limit.eq(cfg.no_limit)]
                    m.next = "START"
            with m.State("START"):
                m.d.comb += [acc.start.eq(1), self.a_ext.addr.eq(row), self.a_ext.en.eq(1)]
                m.next = "EXTENT"
            with m.State("EXTENT"):
                m.d.sync += [p.eq(self.a_ext.data.start), p_end.eq(self.a_ext.data.end),
                             fetching.eq(1)]
                m.next = "RUN"
            with m.State("RUN"):
                with m.If((p == p_end) & pipeline_empty & acc.idle):
                    m.d.comb += acc.drain.eq(1)
                    m.d.sync += fetching.eq(0)
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                with m.If(acc.idle):
                    with m.If(acc.hi < limit):  # refused columns: resume at hi
                        m.d.sync += [lo.eq(acc.hi),
                                     limit.eq(Mux(acc.hi == lo, lo + cfg.capacity, cfg.no_limit))]
                        m.d.comb += self.ev_pass.eq(1)
                        m.next = "START"
                    with m.Elif(limit != cfg.no_limit):  # after a narrowed window
                        m.d.sync += [lo.eq(limit), limit.eq(cfg.no_limit)]
                        m.d.comb += self.ev_pass.eq(1)
                        m.next = "START"
                    with m.Else():
                        m.next = "IDLE"
        in_idle, in_run = fsm.ongoing("IDLE"), fsm.ongoing("RUN")

        m.d.comb += [
            self.idle.eq(in_idle & ~acc.o.valid),
            self.reads.eq(self.a_ext.en.as_unsigned() + self.a_ent.en + self.b_ext.en
                          + self.b_ent.en),
            *[getattr(self, f"ev_{e}").eq(getattr(acc, f"ev_{e}")) for e in EVENTS],
            self.ev_product.eq(acc.i.valid & acc.i.ready),
            self.ev_stall_merge.eq(acc.i.valid & ~acc.i.ready),
            self.ev_stall_fetch.eq(in_run & ~acc.i.valid & ~pipeline_empty),
            self.ev_stall_pass.eq(~in_idle & ~(in_run & ~pipeline_empty)),
            self.ev_stall_output.eq(acc.o.valid & ~acc.o.ready),
        ]
        return m


class SpgemmEngine(wiring.Component):
    def __init__(self, cfg: SpgemmConfig):
        self.cfg = cfg
        super().__init__({
            "load": In(stream.Signature(load_layout(cfg))),
            "cmd": In(stream.Signature(cmd_layout(cfg))),
            "c": Out(stream.Signature(c_layout(cfg))),
            "busy": Out(1), "error": Out(1),
            "counters": Out(counters_layout(cfg)),
        })

    def elaborate(self, platform):
        cfg, m = self.cfg, Module()
        depths = memory_depths(cfg)
        layouts = {"a_ext": extent_layout(cfg), "a_ent": entry_layout(cfg),
                   "b_ext": extent_layout(cfg), "b_ent": entry_layout(cfg)}
        pes = [RowPE(cfg) for _ in range(cfg.pes)]
        for k, pe in enumerate(pes):
            m.submodules[f"pe{k}"] = pe

        # ---- operand memories: the load port writes, every PE reads ------------------
        running = Signal()
        m.d.comb += self.load.ready.eq(~running)
        take_load = self.load.valid & self.load.ready
        for code, name in enumerate(MEMORIES):
            mem = memory.Memory(shape=unsigned(layouts[name].size), depth=depths[name], init=[])
            m.submodules[name] = mem
            wr = mem.write_port()
            ok = self.load.payload.addr < depths[name]
            m.d.comb += [wr.addr.eq(self.load.payload.addr), wr.data.eq(self.load.payload.data),
                         wr.en.eq(take_load & (self.load.payload.mem == code) & ok)]
            with m.If(take_load & (self.load.payload.mem == code) & ~ok):
                m.d.sync += self.error.eq(1)
            for pe in pes:
                rp = mem.read_port()
                port = getattr(pe, name)
                m.d.comb += [rp.addr.eq(port.addr), rp.en.eq(port.en), port.data.eq(rp.data)]

        # ---- command and row dealer ---------------------------------------------------
        rows, b_rows, op, next_row = (Signal(cfg.index_bits + 1), Signal(cfg.index_bits + 1),
                                      Signal(SEMIRING_BITS), Signal(cfg.index_bits + 1))
        cmd = self.cmd.payload
        built = Signal()
        m.d.comb += built.eq((cmd.semiring < len(SPGEMM_SEMIRINGS))
                             & Const(cfg.semirings, len(SPGEMM_SEMIRINGS)).bit_select(cmd.semiring, 1))
        cmd_ok = built & (cmd.rows <= cfg.max_dim) & (cmd.b_rows <= cfg.max_dim)
        m.d.comb += self.cmd.ready.eq(~running)
        start = self.cmd.valid & self.cmd.ready
        with m.If(start):
            m.d.sync += [rows.eq(Mux(cmd_ok, cmd.rows, 0)), b_rows.eq(cmd.b_rows),
                         op.eq(cmd.semiring), next_row.eq(0), running.eq(1)]
            with m.If(~cmd_ok):
                m.d.sync += self.error.eq(1)
        granted = Signal()  # a lower-index PE took the row on offer this cycle
        for pe in pes:
            offer = running & (next_row < rows) & ~granted
            m.d.comb += [pe.row.valid.eq(offer), pe.row.payload.eq(next_row),
                         pe.op.eq(op), pe.b_rows.eq(b_rows)]
            took = Signal()
            m.d.comb += took.eq(granted | (offer & pe.row.ready))
            granted = took
            with m.If(pe.bad_col):
                m.d.sync += self.error.eq(1)
        with m.If(granted):
            m.d.sync += next_row.eq(next_row + 1)

        # ---- C output: fixed priority over the PEs into one register -----------------
        en = ~self.c.valid | self.c.ready
        taken = Signal()
        for pe in pes:
            pick = pe.o.valid & ~taken
            m.d.comb += pe.o.ready.eq(en & ~taken)
            with m.If(en & pick):
                m.d.sync += self.c.payload.eq(pe.o.payload)
            t = Signal()
            m.d.comb += t.eq(taken | pe.o.valid)
            taken = t
        with m.If(en):
            m.d.sync += self.c.valid.eq(taken)

        all_idle = Signal()
        m.d.comb += all_idle.eq(sum_all([pe.idle for pe in pes], lambda a, b: a & b))
        with m.If(running & (next_row == rows) & all_idle & ~self.c.valid & ~start):
            m.d.sync += running.eq(0)
        m.d.comb += self.busy.eq(running)

        # ---- counters -------------------------------------------------------------------
        inc = {
            "cycles": running,
            "products": [pe.ev_product for pe in pes],
            "probes": [pe.ev_probe for pe in pes],
            "collisions": [pe.ev_collision for pe in pes],
            "merges": [pe.ev_merge for pe in pes],
            "inserts": [pe.ev_insert for pe in pes],
            "hazards": [pe.ev_hazard for pe in pes],
            "passes": [pe.ev_pass for pe in pes],
            "mem_reads": [pe.reads for pe in pes],
            "c_words": self.c.valid & self.c.ready,
            "stall_merge": [pe.ev_stall_merge for pe in pes],
            "stall_fetch": [pe.ev_stall_fetch for pe in pes],
            "stall_pass": [pe.ev_stall_pass for pe in pes],
            "stall_output": [pe.ev_stall_output for pe in pes],
            "idle_pe": [running & pe.idle for pe in pes],
        }
        for name in COUNTERS:
            field = getattr(self.counters, name)
            terms = inc[name] if isinstance(inc[name], list) else [inc[name]]
            step = sum_all([t.as_unsigned() if hasattr(t, "as_unsigned") else t for t in terms],
                           lambda a, b: a + b)
            with m.If(start):
                m.d.sync += field.eq(0)
            with m.Else():
                m.d.sync += field.eq(field + step)
        return m


def sum_all(terms, combine):
    out = terms[0]
    for t in terms[1:]:
        out = combine(out, t)
    return out
