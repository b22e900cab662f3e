"""SpgemmEngine: C = A·B (CSR) under a semiring, rows dealt to P row-PEs, C written as CSR.

Ports (``cfg = SpgemmConfig``; I = ``cfg.index_bits``, V = ``cfg.value_bits``):

- ``load``: stream ``{mem: 2, addr, data}`` writing the operand memories: ``mem`` 0 = A
  row extents, 1 = A entries, 2 = B row extents, 3 = B entries (:data:`MEMORIES`). A row
  extent is ``{start, end}`` (CSR ``indptr[r]``, ``indptr[r+1]``: one read gives a row's
  range); an entry is ``{col, value}``. An address beyond the memory's depth sets
  ``error`` and writes nothing. Taken while not ``busy``.
- ``cmd``: stream ``{rows, b_rows, semiring}``, taken while not ``busy``: compute rows
  0..rows-1 of C = A·B, where B has ``b_rows`` rows. A semiring not built into the
  engine, or ``rows``/``b_rows`` above ``max_dim``, sets ``error`` and runs nothing.
- C memory (written by the run, read back through ``rd``): ``c_ext[r] = {start, end}``
  for every row r < ``rows`` and ``c_ent[start..end) = {col, value}``, the CSR layout of
  A and B (extents ``cfg.c_ptr_bits`` wide). ``c_ent`` is one bank of ``max_c_nnz``
  entries per PE at address ``k << cfg.c_bank_bits``: PE k appends the rows it computed
  to its bank, a row's entries contiguous and in drain order, rows in the order the PE
  finished them (row r's extent says where), so the PEs write C in parallel.
- ``rd``: stream ``{mem: 1, addr}`` (0 = ``c_ext`` by row, 1 = ``c_ent`` by address)
  -> ``rdata``: stream ``{data}``, one word per request, in order. Taken while not
  ``busy``; with ``cfg.operands_dram`` never taken (C is in the DRAM).
- ``dram_<memory><k>`` (only with ``cfg.operands_dram``; ``dram``: the SoC's
  DramConfig, or built alone ``cfg.standalone_dram()``, whose port the Verilog then
  exposes): PE k's reader of operand memory ``<memory>`` (:data:`MEMORIES`), a
  requester on the DRAM's native port; the memory's words are in the DRAM at
  ``cfg.dram_layout(dram.word_bytes)`` and ``load`` writes nothing to them (the host
  writes them into the DRAM). Each is a :class:`~tritium.hdl.mem.DramWeightPort`
  (reads in order, any latency; ``cfg.fetch_depth`` reads in flight, so every beat
  finds room when it arrives: the native port does not wait).
- ``dram_c<k>`` (only with ``cfg.operands_dram``): PE k's writer of C, a
  :class:`~tritium.hdl.mem.DramLineWriter`: the same CSR as the on-chip C memory
  above, at ``cfg.dram_layout``'s ``c_ext`` and ``c_ent`` (each word its stride's
  beats, every byte enabled, padding zero); a row's extent is written after its
  entries. ``busy`` stays high until the writers' last beat is accepted.
- ``mem_hold``: while high, no operand memory accepts a read request (a shared memory's
  refresh or arbitration pauses; tests drive it randomly). Tie to 0 otherwise.
- ``busy``: high from the accepted ``cmd`` until the last word of C is written.
- ``error``: sticky (cleared by reset): bad load address, bad command, an A column
  index >= ``b_rows`` (that entry is skipped), or a PE's C entries beyond ``max_c_nnz``
  (not written).
  Never a hang.
- ``counters``: :data:`COUNTERS`, each ``cfg.counter_bits`` wide, cleared by a ``cmd``
  and counting that run: ``cycles`` (busy cycles), ``products``, ``probes``,
  ``collisions``, ``merges``, ``inserts``, ``hazards`` (forwarded read-modify-writes),
  ``passes`` (extra passes of overflowing rows), ``mem_reads`` (operand words read),
  ``c_words`` (entries of C written), ``mem_writes`` (words of C written: entries and
  row extents), and PE-cycles by what the PE's product register did, summed over PEs
  (with a product merged, they add up to ``cycles · pes``): ``stall_merge`` (a product
  waits for its table: collision or refusal), ``stall_memory`` (no product, and the
  PE waits for words it requested from the operand memories: latency or bandwidth),
  ``stall_fetch`` (no product, nothing outstanding, but the fetcher holds work:
  FIFO hand-offs), ``stall_pass`` (a product waits until its table is drained and
  restarted, or the PE is between passes), ``idle_pe`` (no row); and, overlapping
  those, ``stall_output`` (a drained entry waits: the row extents' write port is busy
  with another PE's end beat; with ``operands_dram``, the PE's C writer is full).

Each PE (:class:`RowPE`) is a pipeline of four dependent reads, each a request with
credits into a FIFO, so the memory may have any latency: a pass (row, table) -> the A
extent -> each A entry -> its B row extent -> a job; the streamer walks each job's B row
one entry per cycle; ⊗ forms the product into one of the PE's two
:class:`HashAccumulator` tables. Two tables and a fetcher that runs ahead let a row's
drain and the next row's fetch overlap the merging of another row (see
docs/spgemm.md for the ordering rules that keep this exact and deadlock-free). A row
that overflows its table (window scheme in :mod:`tritium.engines.spgemm.golden`) takes its
extra passes before the PE's next row is drained. A row goes to the PE holding the
fewest rows (lowest index among equals), so short rows do not queue behind a long one.
Every operand memory has one read port per PE (block RAM replicated per port, or one
external-memory model per port).
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from tritium.engines.spgemm.config import SPGEMM_SEMIRINGS, SpgemmConfig
from tritium.engines.spgemm import COUNTERS

from tritium.hdl.dram import port_signature as dram_signature
from tritium.hdl.mem import (DramLineWriter, DramWeightPort, index_shape, local_memory, memory_depth,
                             port_signature)
from .accumulator import EVENTS, OP, SEMIRING_BITS, HashAccumulator

MEMORIES = ("a_ext", "a_ent", "b_ext", "b_ent")
#: the per-PE stall strobes (exclusive, with ``product``)
STALLS = ("stall_merge", "stall_memory", "stall_fetch", "stall_pass", "idle_pe")
#: rows a PE holds at once: a draining row, a row pending on its table, one merging
ROW_SLOTS = 4


def word_layout(cfg, word: str) -> data.StructLayout:
    """A memory word of the engine as ``cfg.word_fields[word]`` lays it out."""
    return data.StructLayout({name: signed(bits) if sign else unsigned(bits)
                              for name, bits, sign in cfg.word_fields[word]})


def extent_layout(cfg):
    return word_layout(cfg, "ext")


def c_extent_layout(cfg):
    """A row extent of C: as :func:`extent_layout`, with C's pointer width."""
    return word_layout(cfg, "c_ext")


def entry_layout(cfg):
    return word_layout(cfg, "ent")


def load_layout(cfg):
    width = max(extent_layout(cfg).size, entry_layout(cfg).size)
    return data.StructLayout({"mem": 2, "addr": cfg.ptr_bits, "data": width})


def cmd_layout(cfg):
    dim = cfg.index_bits + 1
    return data.StructLayout({"rows": dim, "b_rows": dim, "semiring": SEMIRING_BITS})


def rd_layout(cfg):
    return data.StructLayout({"mem": 1, "addr": max(cfg.index_bits, cfg.c_ptr_bits)})


def rdata_layout(cfg):
    return data.StructLayout({"data": max(c_extent_layout(cfg).size, entry_layout(cfg).size)})


def out_layout(cfg):
    """A PE's output to the C writer: an entry of its row, or (``end``) the row's end."""
    return data.StructLayout({"row": cfg.index_bits, "col": cfg.index_bits,
                              "value": signed(cfg.value_bits), "end": 1})


def counters_layout(cfg):
    return data.StructLayout({name: cfg.counter_bits for name in COUNTERS})


def memory_depths(cfg) -> dict[str, int]:
    return {"a_ext": cfg.max_dim, "a_ent": cfg.max_nnz, "b_ext": cfg.max_dim,
            "b_ent": cfg.max_nnz}


def tag_layouts(cfg) -> dict[str, data.StructLayout]:
    """What travels with each read (returned with its data): the pass's table ``t``, the
    pass's last item (``last``/``end``), reads that only carry a marker (``dummy``,
    ``skip``: an empty A row, a bad column, an empty last B row), A's value."""
    V = signed(cfg.value_bits)
    return {"a_ext": data.StructLayout({"t": 1}),
            "a_ent": data.StructLayout({"t": 1, "last": 1, "dummy": 1}),
            "b_ext": data.StructLayout({"t": 1, "last": 1, "skip": 1, "a": V}),
            "b_ent": data.StructLayout({"t": 1, "end": 1, "dummy": 1, "a": V})}


def port_signatures(cfg) -> dict[str, wiring.Signature]:
    depths, tags, words = memory_depths(cfg), tag_layouts(cfg), word_layouts(cfg)
    return {name: port_signature(depth=depths[name], width=words[name].size,
                                 tag_shape=tags[name], max_size=word_bytes(cfg, name))
            for name in MEMORIES}


def word_layouts(cfg) -> dict[str, data.StructLayout]:
    return {name: extent_layout(cfg) if name.endswith("ext") else entry_layout(cfg)
            for name in MEMORIES}


def word_bytes(cfg, name: str) -> int:
    return cfg.extent_bytes if name.endswith("ext") else cfg.entry_bytes


def product(cfg, op, a, b):
    """a ⊗ b under semiring code ``op`` (see the table in tritium.engines.spgemm.golden)."""
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


def credited_fifo(m: Module, name: str, req, resp, layout, depth: int, push=None):
    """A FIFO behind a memory port: ``resp`` data (and tag) are pushed (when ``push``,
    default always); returns (fifo, credit, outstanding): ``credit`` is high while one
    more request fits, counting requests in flight, so the always-ready response always
    finds room."""
    q = fifo.SyncFIFO(width=layout.size, depth=depth)
    m.submodules[name] = q
    out = Signal(range(depth + 1), name=f"{name}_out")
    took = req.valid & req.ready
    m.d.sync += out.eq(out + took - resp.valid)
    credit = Signal(name=f"{name}_credit")
    m.d.comb += [credit.eq(out + q.level < depth),
                 q.w_en.eq(resp.valid if push is None else resp.valid & push)]
    return q, credit, out


def walk_ranges(m: Module, name: str, req, credit, src, start, end, width: int):
    """Read every address of [start, end) of each range taken from FIFO ``src`` (its
    head's bounds are ``start``, ``end``), one request per cycle while ``credit``; an
    empty range makes one marker request at address 0. The next range is taken in the
    cycle the last address is requested. Returns (active, empty, final, issue, load):
    the caller drives the request's size and tag from ``empty``/``final`` and loads its
    per-range registers on ``load``."""
    act, empty = Signal(name=f"{name}_act"), Signal(name=f"{name}_empty")
    ptr, stop = Signal(width, name=f"{name}_ptr"), Signal(width, name=f"{name}_stop")
    final = empty | (ptr + 1 == stop)
    issue = act & credit & req.ready
    load = (~act | (issue & final)) & src.r_rdy
    m.d.comb += [req.valid.eq(act & credit), req.payload.addr.eq(Mux(empty, 0, ptr)),
                 src.r_en.eq(load)]
    with m.If(load):
        m.d.sync += [act.eq(1), ptr.eq(start), stop.eq(end), empty.eq(start == end)]
    with m.Elif(issue & final):
        m.d.sync += act.eq(0)
    with m.Elif(issue):
        m.d.sync += ptr.eq(ptr + 1)
    return act, empty, final, issue, load


class RowPE(wiring.Component):
    """One row-PE: fetcher, streamer, ⊗, two HashAccumulators, pass control.

    ``row`` takes a row index when the PE has room for one; ``o`` emits each row's C
    entries (drain order) and then its end beat, rows in the order taken. ``op``,
    ``b_rows`` hold for the whole run. The four operand memories are read through
    ``<name>_req`` / ``<name>_resp`` (:func:`tritium.hdl.mem.port_signature`).
    Event strobes count over both tables (2 bits)."""

    def __init__(self, cfg: SpgemmConfig):
        self.cfg = cfg
        ports = port_signatures(cfg)
        super().__init__({
            "row": In(stream.Signature(cfg.index_bits)),
            "o": Out(stream.Signature(out_layout(cfg))),
            "op": In(SEMIRING_BITS), "b_rows": In(cfg.index_bits + 1),
            **{f"{name}_req": Out(ports[name].members["req"].signature)
               for name in MEMORIES},
            **{f"{name}_resp": In(ports[name].members["resp"].signature)
               for name in MEMORIES},
            "bad_col": Out(1), "reads": Out(range(len(MEMORIES) + 1)), "idle": Out(1),
            "load": Out(range(ROW_SLOTS + 1)),
            **{f"ev_{e}": Out(2) for e in EVENTS},
            "ev_pass": Out(1), "ev_product": Out(1), "ev_stall_output": Out(1),
            **{f"ev_{s}": Out(1) for s in STALLS},
        })

    def elaborate(self, platform):
        cfg, m = self.cfg, Module()
        I, V, W, D = cfg.index_bits, cfg.value_bits, cfg.window_bits, cfg.fetch_depth
        accs = [HashAccumulator(cfg) for _ in range(2)]
        for t, acc in enumerate(accs):
            m.submodules[f"acc{t}"] = acc
            m.d.comb += acc.op.eq(self.op)
        req = {name: getattr(self, f"{name}_req") for name in MEMORIES}
        resp = {name: getattr(self, f"{name}_resp") for name in MEMORIES}
        tags = tag_layouts(cfg)
        real_reads = []  # one strobe per accepted read that moves a word

        # ---- passes: {row, t} from the sequencer, in fetch order ---------------------
        pass_layout = data.StructLayout({"row": I, "t": 1})
        m.submodules.passes = passes = fifo.SyncFIFO(width=pass_layout.size, depth=2)
        pass_in = Signal(pass_layout)
        m.d.comb += passes.w_data.eq(pass_in)

        # ---- X: the pass's A row extent ---------------------------------------------------
        xl = data.StructLayout({"ext": extent_layout(cfg), "t": 1})
        xq, x_credit, x_out = credited_fifo(m, "xq", req["a_ext"], resp["a_ext"], xl, D)
        head = pass_layout(passes.r_data)
        m.d.comb += [req["a_ext"].valid.eq(passes.r_rdy & x_credit),
                     req["a_ext"].payload.addr.eq(head.row),
                     req["a_ext"].payload.size.eq(cfg.extent_bytes),
                     req["a_ext"].payload.tag.t.eq(head.t),
                     passes.r_en.eq(req["a_ext"].valid & req["a_ext"].ready)]
        real_reads.append(passes.r_en)
        x_in = Signal(xl)
        m.d.comb += [x_in.ext.eq(resp["a_ext"].payload.data),
                     x_in.t.eq(resp["a_ext"].payload.tag.t),
                     xq.w_data.eq(x_in)]

        # ---- A: each entry of the A row (an empty row: one marker read) ------------------
        al = data.StructLayout({"ent": entry_layout(cfg), "tag": tags["a_ent"]})
        aq, a_credit, a_out = credited_fifo(m, "aq", req["a_ent"], resp["a_ent"], al, D)
        x_head = xl(xq.r_data)
        a_t = Signal()
        a_act, a_empty, a_last, a_issue, a_load = walk_ranges(
            m, "a_walk", req["a_ent"], a_credit, xq, x_head.ext.start, x_head.ext.end,
            cfg.ptr_bits)
        m.d.comb += [req["a_ent"].payload.size.eq(Mux(a_empty, 0, cfg.entry_bytes)),
                     req["a_ent"].payload.tag.t.eq(a_t),
                     req["a_ent"].payload.tag.last.eq(a_last),
                     req["a_ent"].payload.tag.dummy.eq(a_empty)]
        real_reads.append(a_issue & ~a_empty)
        with m.If(a_load):
            m.d.sync += a_t.eq(x_head.t)
        a_in = Signal(al)
        m.d.comb += [a_in.ent.eq(resp["a_ent"].payload.data),
                     a_in.tag.eq(resp["a_ent"].payload.tag),
                     aq.w_data.eq(a_in)]

        # ---- B extents: one per A entry -> a job (B range, A value, table, last) ---------
        job = data.StructLayout({"a": signed(V), "start": cfg.ptr_bits, "end": cfg.ptr_bits,
                                 "t": 1, "last": 1})
        b_ext_tag = resp["b_ext"].payload.tag
        b_ext_data = extent_layout(cfg)(resp["b_ext"].payload.data)
        keep = ~b_ext_tag.skip & (b_ext_data.start != b_ext_data.end)
        jq, j_credit, j_out = credited_fifo(m, "jq", req["b_ext"], resp["b_ext"], job, D,
                                            push=keep | b_ext_tag.last)
        a_head = al(aq.r_data)
        bad = aq.r_rdy & ~a_head.tag.dummy & (a_head.ent.col >= self.b_rows)
        skip = a_head.tag.dummy | bad
        m.d.comb += [req["b_ext"].valid.eq(aq.r_rdy & j_credit),
                     req["b_ext"].payload.addr.eq(Mux(skip, 0, a_head.ent.col)),
                     req["b_ext"].payload.size.eq(Mux(skip, 0, cfg.extent_bytes)),
                     req["b_ext"].payload.tag.t.eq(a_head.tag.t),
                     req["b_ext"].payload.tag.last.eq(a_head.tag.last),
                     req["b_ext"].payload.tag.skip.eq(skip),
                     req["b_ext"].payload.tag.a.eq(a_head.ent.value),
                     aq.r_en.eq(req["b_ext"].valid & req["b_ext"].ready),
                     self.bad_col.eq(bad & aq.r_en)]
        real_reads.append(aq.r_en & ~skip)
        new_job = Signal(job)
        m.d.comb += [new_job.a.eq(b_ext_tag.a), new_job.t.eq(b_ext_tag.t),
                     new_job.last.eq(b_ext_tag.last),
                     new_job.start.eq(Mux(keep, b_ext_data.start, 0)),
                     new_job.end.eq(Mux(keep, b_ext_data.end, 0)), jq.w_data.eq(new_job)]

        # ---- streamer: one B entry per cycle (an empty last job: one marker read) -------
        pl = data.StructLayout({"ent": entry_layout(cfg), "tag": tags["b_ent"]})
        pq, p_credit, p_out = credited_fifo(m, "pq", req["b_ent"], resp["b_ent"], pl, D)
        j_head = job(jq.r_data)
        s_a, s_t, s_last = Signal(signed(V)), Signal(), Signal()
        s_act, s_empty, s_final, s_issue, s_load = walk_ranges(
            m, "b_walk", req["b_ent"], p_credit, jq, j_head.start, j_head.end, cfg.ptr_bits)
        m.d.comb += [req["b_ent"].payload.size.eq(Mux(s_empty, 0, cfg.entry_bytes)),
                     req["b_ent"].payload.tag.t.eq(s_t),
                     req["b_ent"].payload.tag.end.eq(s_last & s_final),
                     req["b_ent"].payload.tag.dummy.eq(s_empty),
                     req["b_ent"].payload.tag.a.eq(s_a)]
        real_reads.append(s_issue & ~s_empty)
        with m.If(s_load):
            m.d.sync += [s_a.eq(j_head.a), s_t.eq(j_head.t), s_last.eq(j_head.last)]
        p_in = Signal(pl)
        m.d.comb += [p_in.ent.eq(resp["b_ent"].payload.data),
                     p_in.tag.eq(resp["b_ent"].payload.tag),
                     pq.w_data.eq(p_in)]

        # ---- product register -> the pass's table -----------------------------------------
        # per table: the current pass (started), its end marker seen (streamed)
        cur_v = [Signal(name=f"cur_v{t}") for t in range(2)]
        cur_row = [Signal(I, name=f"cur_row{t}") for t in range(2)]
        lo = [Signal(W, name=f"lo{t}") for t in range(2)]
        lim = [Signal(W, name=f"lim{t}") for t in range(2)]
        streamed = [Signal(name=f"streamed{t}") for t in range(2)]
        accepting = [cur_v[t] & ~streamed[t] for t in range(2)]

        r_valid, r_t, r_col, r_val, r_end, r_dummy = (Signal(), Signal(), Signal(I),
                                                      Signal(signed(V)), Signal(), Signal())
        r_acc = Mux(r_t, accepting[1], accepting[0])
        r_ready = Mux(r_t, accs[1].i.ready, accs[0].i.ready)
        r_go = ~r_valid | (r_acc & (r_dummy | r_ready))
        p_head = pl(pq.r_data)
        m.d.comb += pq.r_en.eq(r_go & pq.r_rdy)
        with m.If(r_go):
            m.d.sync += [r_valid.eq(pq.r_rdy), r_t.eq(p_head.tag.t), r_col.eq(p_head.ent.col),
                         r_val.eq(product(cfg, self.op, p_head.tag.a, p_head.ent.value)),
                         r_end.eq(p_head.tag.end), r_dummy.eq(p_head.tag.dummy)]
        for t, acc in enumerate(accs):
            m.d.comb += [acc.i.valid.eq(r_valid & ~r_dummy & (r_t == t) & accepting[t]),
                         acc.i.payload.col.eq(r_col), acc.i.payload.value.eq(r_val)]
        ends = r_valid & r_go & r_end  # the pass's last product leaves (or its marker)

        # ---- sequencer: which pass enters the fetcher, when tables drain and restart ------
        # Rule (no deadlock, exact order): a pass is issued for a free table (it starts at
        # once), or for the table of the oldest row once that row's current pass is
        # merged (the replay of the same row, or the next row); the latter's products
        # wait in the product register until the table is drained and restarted. The
        # oldest row drains first; ``order`` keeps the tables of the rows in flight.
        decided = [Signal(name=f"decided{t}") for t in range(2)]
        drain_on = [Signal(name=f"drain_on{t}") for t in range(2)]
        pend_v = [Signal(name=f"pend_v{t}") for t in range(2)]
        pend_new = [Signal(name=f"pend_new{t}") for t in range(2)]
        pend_row = [Signal(I, name=f"pend_row{t}") for t in range(2)]
        pend_lo = [Signal(W, name=f"pend_lo{t}") for t in range(2)]
        pend_lim = [Signal(W, name=f"pend_lim{t}") for t in range(2)]
        order = Signal(ROW_SLOTS)
        count = Signal(range(ROW_SLOTS + 1))
        h = order[0]
        push, pop, push_t = Signal(), Signal(), Signal()

        replay, nlo, nlim = [], [], []
        for t, acc in enumerate(accs):
            narrowed = acc.hi < lim[t]
            replay.append(narrowed | (lim[t] != cfg.no_limit))
            nlo.append(Mux(narrowed, acc.hi, lim[t]))
            nlim.append(Mux(narrowed & (acc.hi == lo[t]), lo[t] + cfg.capacity, cfg.no_limit))

        # issue: the head's replay, else a new row on a free table, else on the head's
        is_head = [(count != 0) & (h == t) for t in range(2)]
        want_replay = [is_head[t] & decided[t] & replay[t] & ~pend_v[t] for t in range(2)]
        free = [~cur_v[t] & ~pend_v[t] for t in range(2)]
        behind = [is_head[t] & decided[t] & ~replay[t] & ~pend_v[t] for t in range(2)]
        room = passes.w_rdy & (count < ROW_SLOTS)
        do_replay = Signal(2)
        do_free = Signal(2)
        do_behind = Signal(2)
        with m.If(passes.w_rdy & want_replay[0]):
            m.d.comb += do_replay[0].eq(1)
        with m.Elif(passes.w_rdy & want_replay[1]):
            m.d.comb += do_replay[1].eq(1)
        with m.Elif(room & self.row.valid & free[0]):
            m.d.comb += do_free[0].eq(1)
        with m.Elif(room & self.row.valid & free[1]):
            m.d.comb += do_free[1].eq(1)
        with m.Elif(room & self.row.valid & behind[0]):
            m.d.comb += do_behind[0].eq(1)
        with m.Elif(room & self.row.valid & behind[1]):
            m.d.comb += do_behind[1].eq(1)
        take_row = (do_free | do_behind).any()
        m.d.comb += [self.row.ready.eq(take_row), passes.w_en.eq(take_row | do_replay.any()),
                     pass_in.row.eq(Mux(do_replay.any(), Mux(do_replay[1], cur_row[1],
                                                             cur_row[0]), self.row.payload)),
                     pass_in.t.eq(do_replay[1] | do_free[1] | do_behind[1]),
                     self.ev_pass.eq(do_replay.any()),
                     push.eq(take_row), push_t.eq(do_free[1] | do_behind[1])]

        # the output: the head table's drained entries, then the row's end beat
        hacc_o_valid = Mux(h, accs[1].o.valid, accs[0].o.valid)
        end_beat = Signal()
        for t, acc in enumerate(accs):
            merged = cur_v[t] & streamed[t] & acc.idle & ~drain_on[t]
            drained = drain_on[t] & acc.idle & ~acc.o.valid
            with m.If(ends & (r_t == t)):
                m.d.sync += streamed[t].eq(1)
            with m.If(merged):
                m.d.sync += decided[t].eq(1)
            with m.If(merged & is_head[t] & decided[t]):
                m.d.comb += acc.drain.eq(1)
                m.d.sync += drain_on[t].eq(1)
            m.d.comb += acc.o.ready.eq(is_head[t] & self.o.ready)
            restart = Signal(name=f"restart{t}")  # the pending pass takes the table
            done = is_head[t] & drained & ~replay[t]
            m.d.comb += restart.eq(is_head[t] & drained & pend_v[t] & (replay[t] | self.o.ready))
            with m.If(done):
                m.d.comb += end_beat.eq(1)
                with m.If(self.o.ready):
                    m.d.comb += pop.eq(1)
                    m.d.sync += cur_v[t].eq(0)
            with m.If(done | (is_head[t] & drained & replay[t] & pend_v[t])):
                m.d.sync += [decided[t].eq(0), drain_on[t].eq(0)]
            with m.If(restart | do_free[t]):
                m.d.comb += [acc.start.eq(1),
                             acc.lo.eq(Mux(do_free[t], 0, pend_lo[t])),
                             acc.limit.eq(Mux(do_free[t], cfg.no_limit, pend_lim[t]))]
                m.d.sync += [cur_v[t].eq(1), streamed[t].eq(0), decided[t].eq(0),
                             drain_on[t].eq(0), pend_v[t].eq(0),
                             cur_row[t].eq(Mux(do_free[t], self.row.payload,
                                               Mux(pend_new[t], pend_row[t], cur_row[t]))),
                             lo[t].eq(Mux(do_free[t], 0, pend_lo[t])),
                             lim[t].eq(Mux(do_free[t], cfg.no_limit, pend_lim[t]))]
            with m.If(do_replay[t]):
                m.d.sync += [pend_v[t].eq(1), pend_new[t].eq(0), pend_lo[t].eq(nlo[t]),
                             pend_lim[t].eq(nlim[t])]
            with m.If(do_behind[t]):
                m.d.sync += [pend_v[t].eq(1), pend_new[t].eq(1), pend_row[t].eq(self.row.payload),
                             pend_lo[t].eq(0), pend_lim[t].eq(cfg.no_limit)]
        m.d.comb += [
            self.o.valid.eq(hacc_o_valid | end_beat),
            self.o.payload.end.eq(end_beat),
            self.o.payload.row.eq(Mux(h, cur_row[1], cur_row[0])),
            self.o.payload.col.eq(Mux(h, accs[1].o.payload.col, accs[0].o.payload.col)),
            self.o.payload.value.eq(Mux(h, accs[1].o.payload.value, accs[0].o.payload.value)),
        ]

        # order of the rows in flight: push at the tail, pop at the head
        tail = Signal(range(ROW_SLOTS + 1))
        m.d.comb += tail.eq(count - pop)
        shifted = Mux(pop, order >> 1, order)
        m.d.sync += order.eq(Cat(*[Mux(push & (tail == k), push_t, shifted[k])
                                   for k in range(ROW_SLOTS)]))
        m.d.sync += count.eq(count + push - pop)

        # ---- events and stall attribution -------------------------------------------------
        outstanding = (x_out != 0) | (a_out != 0) | (j_out != 0) | (p_out != 0) | \
            Cat(*[r.valid & ~r.ready for r in req.values()]).any()
        fetching = passes.r_rdy | xq.r_rdy | a_act | aq.r_rdy | jq.r_rdy | s_act | pq.r_rdy
        holds_product = r_valid & ~r_dummy & r_acc  # merged now, or held by the table
        waiting = r_valid & ~r_acc  # the table has not restarted for this pass yet
        empty = ~holds_product & ~waiting
        has_row = count != 0
        m.d.comb += [
            self.idle.eq(~has_row), self.load.eq(count),
            self.reads.eq(sum(s.as_unsigned() for s in real_reads)),
            *[getattr(self, f"ev_{e}").eq(getattr(accs[0], f"ev_{e}") + getattr(accs[1], f"ev_{e}"))
              for e in EVENTS],
            self.ev_product.eq(holds_product & r_ready),
            self.ev_stall_merge.eq(holds_product & ~r_ready),
            self.ev_stall_pass.eq(waiting | empty & has_row & ~outstanding & ~fetching),
            self.ev_stall_memory.eq(empty & has_row & outstanding),
            self.ev_stall_fetch.eq(empty & has_row & ~outstanding & fetching),
            self.ev_idle_pe.eq(empty & ~has_row),
            self.ev_stall_output.eq(hacc_o_valid & ~self.o.ready),
        ]
        return m


class SpgemmEngine(wiring.Component):
    def __init__(self, cfg: SpgemmConfig, dram=None):
        if cfg.operands_dram and dram is None:
            dram = cfg.standalone_dram()  # built alone: ports shaped for the smallest fit
        self.cfg, self.dram = cfg, dram if cfg.operands_dram else None
        readers = {}
        if cfg.operands_dram:
            readers = {f"dram_{name}{k}": Out(dram_signature(dram).flip())
                       for name in (*MEMORIES, "c") for k in range(cfg.pes)}
            # dram_flush (held): the operand readers and C's writers stop asking the
            # DRAM for more; dram_idle: none of them has a beat in flight. The adapter
            # resets the engine only then (a reset with a write's data still queued, or
            # a read's beats still owed, would leave the arbiter waiting for ever)
            readers["dram_flush"] = In(1)
            readers["dram_idle"] = Out(1)
        super().__init__({**readers,
            "load": In(stream.Signature(load_layout(cfg))),
            "cmd": In(stream.Signature(cmd_layout(cfg))),
            "rd": In(stream.Signature(rd_layout(cfg))),
            "rdata": Out(stream.Signature(rdata_layout(cfg))),
            "mem_hold": In(1),
            "busy": Out(1), "error": Out(1),
            "counters": Out(counters_layout(cfg)),
        })

    def elaborate(self, platform):
        cfg, m = self.cfg, Module()
        depths = memory_depths(cfg)
        pes = [RowPE(cfg) for _ in range(cfg.pes)]
        for k, pe in enumerate(pes):
            m.submodules[f"pe{k}"] = pe

        # ---- operand memories: the load port writes every copy, each PE reads its own ---
        running = Signal()
        idle = []  # the DRAM readers' and writers' quiet, for dram_idle
        m.d.comb += self.load.ready.eq(~running)
        take_load = self.load.valid & self.load.ready
        ports = port_signatures(cfg)
        for code, name in enumerate(MEMORIES):
            ok = self.load.payload.addr < depths[name]
            here = take_load & (self.load.payload.mem == code)
            with m.If(here & ~ok):
                m.d.sync += self.error.eq(1)
            sig = ports[name]
            for k, pe in enumerate(pes):
                kw = dict(depth=depths[name], width=word_layouts(cfg)[name].size,
                          tag_shape=tag_layouts(cfg)[name], max_size=word_bytes(cfg, name))
                preq, presp = getattr(pe, f"{name}_req"), getattr(pe, f"{name}_resp")
                if cfg.operands_dram:
                    base, stride, n = cfg.dram_layout(self.dram.word_bytes)[name]
                    # the reader's lines count from the DRAM's start: its depth covers
                    # the memory's base, added to each request's address
                    kw["depth"] = base // stride + n
                    mem = DramWeightPort(dram=self.dram, stride=stride,
                                         outstanding=cfg.fetch_depth, **kw)
                    wiring.connect(m, wiring.flipped(getattr(self, f"dram_{name}{k}")), mem.dram)
                    m.d.comb += mem.flush.eq(self.dram_flush)
                    idle.append(mem.idle)
                    m.d.comb += [mem.mem.req.payload.addr.eq(preq.payload.addr + base // stride),
                                 mem.mem.req.payload.size.eq(preq.payload.size),
                                 mem.mem.req.payload.tag.eq(preq.payload.tag)]
                    m.submodules[f"{name}{k}"] = mem
                    mem = mem.mem
                else:
                    mem = local_memory(latency=cfg.mem_latency,
                                       bytes_per_cycle=cfg.mem_bytes_per_cycle, **kw)
                    m.submodules[f"{name}{k}"] = mem
                    m.d.comb += mem.req.payload.eq(preq.payload)
                m.d.comb += [mem.w.valid.eq(0 if cfg.operands_dram else here & ok),
                             mem.w.payload.addr.eq(self.load.payload.addr),
                             mem.w.payload.data.eq(self.load.payload.data),
                             mem.req.valid.eq(preq.valid & ~self.mem_hold),
                             preq.ready.eq(mem.req.ready & ~self.mem_hold),
                             presp.valid.eq(mem.resp.valid), presp.payload.eq(mem.resp.payload)]

        # ---- command and row dealer ---------------------------------------------------
        rows, b_rows, op, next_row = (Signal(cfg.index_bits + 1), Signal(cfg.index_bits + 1),
                                      Signal(SEMIRING_BITS), Signal(cfg.index_bits + 1))
        cmd = self.cmd.payload
        built = Signal()
        built_mask = Const(cfg.semirings, len(SPGEMM_SEMIRINGS))
        m.d.comb += built.eq((cmd.semiring < len(SPGEMM_SEMIRINGS))
                             & built_mask.bit_select(cmd.semiring, 1))
        cmd_ok = built & (cmd.rows <= cfg.max_dim) & (cmd.b_rows <= cfg.max_dim)
        m.d.comb += self.cmd.ready.eq(~running)
        start = self.cmd.valid & self.cmd.ready
        with m.If(start):
            m.d.sync += [rows.eq(Mux(cmd_ok, cmd.rows, 0)), b_rows.eq(cmd.b_rows),
                         op.eq(cmd.semiring), next_row.eq(0), running.eq(1)]
            with m.If(~cmd_ok):
                m.d.sync += self.error.eq(1)
        # a row goes to the PE holding the fewest rows (lowest index among them), so rows
        # do not queue behind a long one while another PE has room
        fewest = Signal(range(ROW_SLOTS + 1))
        m.d.comb += fewest.eq(sum_all([pe.load for pe in pes],
                                      lambda a, b: Mux(a < b, a, b)))
        granted = Signal()  # a lower-index PE took the row on offer this cycle
        for pe in pes:
            offer = running & (next_row < rows) & ~granted & (pe.load == fewest)
            m.d.comb += [pe.row.valid.eq(offer), pe.row.payload.eq(next_row),
                         pe.op.eq(op), pe.b_rows.eq(b_rows)]
            took = Signal()
            m.d.comb += took.eq(granted | (offer & pe.row.ready))
            granted = took
            with m.If(pe.bad_col):
                m.d.sync += self.error.eq(1)
        with m.If(granted):
            m.d.sync += next_row.eq(next_row + 1)

        if cfg.operands_dram:
            c_words, ext_words, writers_busy = self.dram_c_writer(m, pes, start)
            m.d.comb += self.dram_idle.eq(Cat(*idle).all() & ~writers_busy)
        else:
            c_words, ext_words = self.onchip_c_writer(m, pes, start, running)
            writers_busy = Const(0)

        all_idle = Signal()
        m.d.comb += all_idle.eq(Cat(*[pe.idle for pe in pes]).all())
        with m.If(running & (next_row == rows) & all_idle & ~writers_busy & ~start):
            m.d.sync += running.eq(0)
        m.d.comb += self.busy.eq(running)

        # ---- counters -------------------------------------------------------------------
        inc = {
            "cycles": [running],
            "products": [pe.ev_product for pe in pes],
            **{e + "s" if e in ("probe", "collision", "merge", "insert", "hazard") else e:
               [getattr(pe, f"ev_{e}") for pe in pes] for e in EVENTS if e != "refuse"},
            "passes": [pe.ev_pass for pe in pes],
            "mem_reads": [pe.reads for pe in pes],
            "c_words": c_words,
            "mem_writes": [*c_words, *ext_words],
            **{s: [running & getattr(pe, f"ev_{s}") for pe in pes] for s in STALLS},
            "stall_output": [pe.ev_stall_output for pe in pes],
        }
        for name in COUNTERS:
            field = getattr(self.counters, name)
            step = sum_all([t.as_unsigned() for t in inc[name]], lambda a, b: a + b)
            with m.If(start):
                m.d.sync += field.eq(0)
            with m.Else():
                m.d.sync += field.eq(field + step)
        return m

    def onchip_c_writer(self, m, pes, start, running):
        """C in on-chip memories, read back through ``rd``/``rdata``; returns the per-PE
        entry strobes and the row-extent write strobes."""
        cfg = self.cfg
        # ---- C writer: each PE appends its rows' entries to its own bank; the row
        # extents share one memory, an end beat per cycle (lowest PE index first) ------
        ext, ent = c_extent_layout(cfg), entry_layout(cfg)
        m.submodules.c_ext = c_ext = memory.Memory(shape=unsigned(ext.size),
                                                   depth=memory_depth(cfg.max_dim), init=[])
        ext_w = c_ext.write_port()
        banks, c_words = [], []
        ended = Signal()  # a lower-index PE writes its end beat this cycle
        for k, pe in enumerate(pes):
            bank = memory.Memory(shape=unsigned(ent.size), depth=memory_depth(cfg.max_c_nnz),
                                 init=[])
            m.submodules[f"c_ent{k}"] = bank
            banks.append(bank)
            w = bank.write_port()
            wp = Signal(range(cfg.max_c_nnz + 1), name=f"wp{k}")
            row_start = Signal.like(wp, name=f"row_start{k}")
            beat = pe.o.payload
            grant = pe.o.valid & beat.end & ~ended
            word = Signal(name=f"c_word{k}")
            fits = wp < cfg.max_c_nnz
            new_ent = Signal(ent, name=f"new_ent{k}")
            m.d.comb += [pe.o.ready.eq(~beat.end | ~ended), word.eq(pe.o.valid & ~beat.end & fits),
                         new_ent.col.eq(beat.col), new_ent.value.eq(beat.value),
                         w.addr.eq(wp), w.data.eq(new_ent), w.en.eq(word)]
            c_words.append(word)
            with m.If(pe.o.valid & ~beat.end & ~fits):
                m.d.sync += self.error.eq(1)
            with m.If(word):
                m.d.sync += wp.eq(wp + 1)
            with m.If(grant):
                new_ext = Signal(ext, name=f"new_ext{k}")
                base = k << cfg.c_bank_bits
                m.d.comb += [new_ext.start.eq(base + row_start), new_ext.end.eq(base + wp),
                             ext_w.addr.eq(beat.row), ext_w.data.eq(new_ext), ext_w.en.eq(1)]
                m.d.sync += row_start.eq(wp)
            with m.If(start):
                m.d.sync += [wp.eq(0), row_start.eq(0)]
            nxt = Signal(name=f"ended{k}")
            m.d.comb += nxt.eq(ended | grant)
            ended = nxt

        # ---- read-back of C (while idle): one request in flight --------------------------
        ext_r = c_ext.read_port()
        ent_r = [bank.read_port() for bank in banks]
        pending, which, bank_of = Signal(), Signal(), Signal(index_shape(cfg.pes))
        addr = self.rd.payload.addr
        m.d.comb += [self.rd.ready.eq(~running & ~pending & ~self.rdata.valid),
                     ext_r.addr.eq(addr), *[r.addr.eq(addr[:cfg.c_bank_bits]) for r in ent_r]]
        take_rd = self.rd.valid & self.rd.ready
        m.d.sync += pending.eq(take_rd)
        with m.If(take_rd):
            m.d.sync += [which.eq(self.rd.payload.mem),
                         bank_of.eq(addr[cfg.c_bank_bits:] if cfg.pes > 1 else 0)]
        with m.If(pending):
            ent_data = Signal(ent.size)
            # the last bank as the default: every bank_of pattern is covered (CASEINCOMPLETE
            # when pes is not a power of two, or is 1)
            with m.Switch(bank_of):
                for k, r in enumerate(ent_r[:-1]):
                    with m.Case(k):
                        m.d.comb += ent_data.eq(r.data)
                with m.Default():
                    m.d.comb += ent_data.eq(ent_r[-1].data)
            m.d.sync += [self.rdata.valid.eq(1),
                         self.rdata.payload.data.eq(Mux(which, ent_data, ext_r.data))]
        with m.Elif(self.rdata.ready):
            m.d.sync += self.rdata.valid.eq(0)

        return c_words, [ext_w.en]

    def dram_c_writer(self, m, pes, start):
        """C in the DRAM at ``cfg.dram_layout``: PE k's entries and row extents go, in
        the order the PE drains them, through its own line writer (port ``dram_c<k>``),
        which back-pressures the PE (``stall_output``). Returns the per-PE entry
        strobes, the per-PE row-extent strobes and the writers' busy."""
        cfg, dram = self.cfg, self.dram
        lay = cfg.dram_layout(dram.word_bytes)
        ext, ent = c_extent_layout(cfg), entry_layout(cfg)
        beats = {n: lay[n][1] // dram.word_bytes for n in ("c_ext", "c_ent")}
        base = {n: lay[n][0] // dram.word_bytes for n in ("c_ext", "c_ent")}
        width = max(ext.size, ent.size)
        m.d.comb += [self.rd.ready.eq(0), self.rdata.valid.eq(0)]
        c_words, ext_words, busy = [], [], []
        for k, pe in enumerate(pes):
            wr = DramLineWriter(dram=dram, width=width, max_beats=max(beats.values()))
            m.submodules[f"c_writer{k}"] = wr
            m.d.comb += wr.flush.eq(self.dram_flush)
            wiring.connect(m, wr.dram, wiring.flipped(getattr(self, f"dram_c{k}")))
            wp = Signal(range(cfg.max_c_nnz + 1), name=f"wp{k}")
            row_start = Signal.like(wp, name=f"row_start{k}")
            beat = pe.o.payload
            fits = wp < cfg.max_c_nnz
            is_ent = pe.o.valid & ~beat.end
            new_ent, new_ext = Signal(ent, name=f"new_ent{k}"), Signal(ext, name=f"new_ext{k}")
            bank = k << cfg.c_bank_bits
            m.d.comb += [new_ent.col.eq(beat.col), new_ent.value.eq(beat.value),
                         new_ext.start.eq(bank + row_start), new_ext.end.eq(bank + wp)]
            # an entry past the bank is dropped (the error flag says so), never waited on
            m.d.comb += [wr.w.valid.eq(pe.o.valid & (beat.end | fits)),
                         pe.o.ready.eq(wr.w.ready | (is_ent & ~fits))]
            with m.If(beat.end):
                m.d.comb += [wr.w.payload.addr.eq(base["c_ext"] + beat.row * beats["c_ext"]),
                             wr.w.payload.beats.eq(beats["c_ext"]),
                             wr.w.payload.data.eq(new_ext)]
            with m.Else():
                m.d.comb += [wr.w.payload.addr.eq(base["c_ent"] + (bank + wp) * beats["c_ent"]),
                             wr.w.payload.beats.eq(beats["c_ent"]),
                             wr.w.payload.data.eq(new_ent)]
            taken = wr.w.valid & wr.w.ready
            word, end = Signal(name=f"c_word{k}"), Signal(name=f"c_end{k}")
            m.d.comb += [word.eq(taken & ~beat.end), end.eq(taken & beat.end)]
            with m.If(is_ent & ~fits):
                m.d.sync += self.error.eq(1)
            with m.If(word):
                m.d.sync += wp.eq(wp + 1)
            with m.If(end):
                m.d.sync += row_start.eq(wp)
            with m.If(start):
                m.d.sync += [wp.eq(0), row_start.eq(0)]
            c_words.append(word)
            ext_words.append(end)
            busy.append(wr.busy)
        return c_words, ext_words, Cat(*busy).any()


def sum_all(terms, combine):
    out = terms[0]
    for t in terms[1:]:
        out = combine(out, t)
    return out
