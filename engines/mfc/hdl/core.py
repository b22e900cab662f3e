"""MfcCore: the MatMul-free token core: a sequencer running programs of
:mod:`tritium.engines.mfc.golden` on a scalar unit, a vector unit and the TMV engine.

Ports (``cfg = MfcConfig``, ``t = cfg.tmv``):

- ``wload``: stream ``{addr, data}`` (:func:`~tritium.engines.tmv.hdl.matvec.wload_layout`),
  always ready: one TMV weight line, straight to the engine.
- ``imem_w``: stream ``{addr, data: INSTR_BITS}``, always ready: one instruction word
  (:data:`~tritium.engines.mfc.golden.INSTR_LAYOUT`; addresses >= ``imem_depth`` are
  dropped). Write the program while the core is not busy.
- ``host_addr`` (``ceil_log2(vmem_depth) + 1`` bits), ``host_wdata`` (32, the int32's
  bits), ``host_we``: writes ``V[host_addr]`` while not busy (ignored while busy, and at addresses >= ``vmem_depth``);
  ``host_rdata``: ``V[host_addr]`` as addressed in the previous cycle (one-cycle read
  latency; a write and a read of one address in the same cycle reads the old value),
  valid while not busy.
- ``sreg_sel``, ``sreg_rdata``: ``S[sreg_sel]``, combinational.
- ``wmem`` (only with ``cfg.tmv.weights_dram``): the TMV's weight-memory requester
  (:class:`~tritium.engines.tmv.hdl.matvec.TernaryMatVec`'s ``wmem``), passed out for a
  :class:`~tritium.hdl.mem.DramWeightPort`; ``wload`` then goes nowhere.
- ``start`` (a one-cycle pulse, ignored while busy) runs from instruction ``entry``
  (``ENTRY_BITS``);
  ``busy`` from the cycle after ``start`` until the run has halted and the TMV is idle;
  ``done`` is set then and cleared by the next ``start``; ``error`` (sticky, cleared by the
  next ``start``) is set by the decode-time checks of :mod:`tritium.engines.mfc.golden`, which
  halt the run before the offending instruction.
- counters (48 bits, :data:`~tritium.engines.mfc.golden.COUNTERS`), cleared by ``start``, counting
  that run: ``cycles`` (the sequencer's cycles, from the first fetch to the end of the
  run as :meth:`~tritium.engines.mfc.golden.Machine.run` counts it), ``instructions`` (retired),
  ``tmv_busy`` (the engine and its adapter busy), ``vpu_busy``, ``scalar_busy``,
  ``wait_tmv`` (TMV/TWAIT/HALT waiting for the engine) and ``issue`` (fetch and decode).
  Each equals the golden's count exactly.

Memories (L = ``vpu_lanes``): the instruction memory (``imem_depth`` × ``INSTR_BITS``), V
(``vmem_depth`` int32 in L banks: ``vmem_depth / L`` words of L lanes, element i in lane
i mod L; two read ports and a write port with a lane enable: the vector unit reads two
operand groups and writes one result group per cycle; the host shares the ports while
the core is idle, one element at a time), ACT (two banks of ``act_elems`` int8 in
``simd``-byte words: the vector unit writes L bytes of one word, the TMV adapter reads
whole words), RES (two banks of ``res_elems`` int32 in words of ``res_word_lanes`` =
max(pe, L) lanes: the adapter writes the ``rows`` lanes of a pe-lane result beat into
its place in a word, VRESCALE reads an L-lane group),
``sregs`` 64-bit scalar
registers and the vector length VL (both kept between runs).

Sequencer, in order, one instruction at a time: fetch (the instruction memory's read
cycle), decode (checks, operand read); then SETVL/SLI retire, SMUL/SDIV/SSQRT run on
:class:`~tritium.engines.mfc.hdl.scalar.MfcScalar`, vector ops stream VL elements through
:class:`~tritium.engines.mfc.hdl.vector.MfcVector`, TMV hands its command to the adapter (waiting
while the engine is busy) and goes on, TWAIT and HALT wait for the engine.

Timing (``cfg``'s contract; the golden's :class:`~tritium.engines.mfc.golden.Timer` adds it up):
``issue_cycles`` = 2 per instruction; a vector op of length n then ``ceil(n / L) +
vpu_latency`` (group k, elements L·k ... L·k + L - 1, is read in cycle k and written in
cycle k + 5, the result of a reduction goes to S in the last cycle); a scalar op ``scalar_cycles[op]`` (iterations + 2);
a TMV keeps the engine busy for ``tmv_cycles(rows, cols, fmt)`` = the engine's
``cycles`` + 1 (the adapter's command register) from the cycle after its decode, while
the sequencer goes on. A TMV/TWAIT/HALT decoded while the engine is busy waits until
the engine is free (``wait_tmv``).

Bad programs never hang: an unknown opcode, an operand range outside its memory, a
vector operand address not a multiple of L, a scalar register index out of range, a bad TMV command or a fetch past the instruction
memory sets ``error`` and ends the run (after a TMV still in flight has finished; those
cycles count in ``tmv_busy`` but not in ``cycles``). A program that races the TMV
(:class:`~tritium.engines.mfc.golden.ProgramError`) computes whatever the hardware's order gives.
Weight lines must be packed as :func:`tritium.engines.tmv.golden.tmv_lines` packs them
(zero codes past ``cols`` in a word): the engine multiplies those padding codes with
whatever ACT holds past ``cols``, where the golden reads only the ``cols`` columns.
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from tritium.engines.mfc.config import (ENTRY_BITS, INSTR_BITS, INSTR_FIELDS, MfcConfig,
                                        field_limit)
from tritium.engines.tmv.config import TMV_FORMATS
from tritium.engines.mfc.golden import COUNTERS, INSTR_LAYOUT, SCALAR_OPS, VECTOR_OPS, Op

from tritium.engines.tmv.hdl.matvec import TernaryMatVec, wload_layout
from tritium.hdl.mem import port_signature
from .scalar import BUSY_CYCLES, SCALAR_CODES, MfcScalar
from .vector import LATENCY, MfcVector

COUNTER_BITS = 48


def imem_layout(cfg: MfcConfig) -> data.StructLayout:
    return data.StructLayout({"addr": max(1, ceil_log2(cfg.imem_depth)), "data": INSTR_BITS})


def _divmod(value, k: int):
    """``(value // k, value % k)`` for a constant ``k``: slices when k is a power of two."""
    if k & (k - 1) == 0:
        b = k.bit_length() - 1
        return value >> b, (value[:b] if b else Const(0, 1))
    return value // k, value % k


def _any(values):
    out = Const(0, 1)
    for v in values:
        out = out | v
    return out


class MfcCore(wiring.Component):
    def __init__(self, cfg: MfcConfig):
        self.cfg = cfg
        super().__init__({
            "wload": In(stream.Signature(wload_layout(cfg.tmv))),
            "imem_w": In(stream.Signature(imem_layout(cfg))),
            "host_addr": In(ceil_log2(cfg.vmem_depth) + 1), "host_wdata": In(32),
            "host_we": In(1), "host_rdata": Out(32),
            "sreg_sel": In(range(cfg.sregs)), "sreg_rdata": Out(64),
            "start": In(1), "entry": In(ENTRY_BITS),
            "busy": Out(1), "done": Out(1), "error": Out(1),
            **{name: Out(COUNTER_BITS) for name in COUNTERS},
            **({"wmem": Out(port_signature(**TernaryMatVec.mem_args(cfg.tmv)).flip())}
               if cfg.tmv.weights_dram else {}),
        })

    def elaborate(self, platform):
        cfg, m = self.cfg, Module()
        t = cfg.tmv
        S, P, L = t.simd, t.pe, cfg.vpu_lanes
        lg = L.bit_length() - 1
        W = cfg.res_word_lanes      # RES word: P lanes a TMV beat, L lanes a vector cycle
        r_depth = cfg.res_elems // W
        assert cfg.issue_cycles == 2 and cfg.vpu_latency == 1 + LATENCY and \
            cfg.scalar_cycles == BUSY_CYCLES, "MfcConfig timing out of step with the hdl"

        m.submodules.tmv = tmv = TernaryMatVec(t)
        wiring.connect(m, wiring.flipped(self.wload), tmv.wload)
        if t.weights_dram:
            wiring.connect(m, tmv.wmem, wiring.flipped(self.wmem))
        m.submodules.scalar = scal = MfcScalar()
        m.submodules.vector = vec = MfcVector(cfg)

        # ---- memories ---------------------------------------------------------------------
        m.submodules.imem = imem = memory.Memory(shape=INSTR_LAYOUT, depth=cfg.imem_depth,
                                                 init=[])
        iw, ir = imem.write_port(), imem.read_port()
        m.d.comb += [iw.addr.eq(self.imem_w.payload.addr), iw.data.eq(self.imem_w.payload.data),
                     iw.en.eq(self.imem_w.valid & (self.imem_w.payload.addr < cfg.imem_depth)),
                     self.imem_w.ready.eq(1)]
        # V in L banks, one L-lane word holding elements L·w ... L·w + L - 1
        m.submodules.vmem = vmem = memory.Memory(shape=32 * L, depth=cfg.vmem_depth // L,
                                                 init=[])
        vw, vr0, vr1 = vmem.write_port(granularity=32), vmem.read_port(), vmem.read_port()
        m.submodules.act = amem = memory.Memory(shape=8 * S, depth=2 * t.act_depth, init=[])
        aw, ar = amem.write_port(granularity=8), amem.read_port()
        m.submodules.res = rmem = memory.Memory(shape=32 * W, depth=2 * r_depth, init=[])
        rw, rr = rmem.write_port(granularity=32), rmem.read_port()
        sregs = Array(Signal(64, name=f"s{k}") for k in range(cfg.sregs))
        m.d.comb += self.sreg_rdata.eq(sregs[self.sreg_sel])

        # ---- decode -------------------------------------------------------------------------
        word = ir.data    # a view of INSTR_LAYOUT: the one decoder of the word's fields
        w_op, w_d, w_a, w_b, w_c = (word[k] if k in ("op", "d") else word.args.abc[k]
                                    for k, _ in INSTR_FIELDS)
        imm = word.args.imm
        vl = Signal(range(field_limit("a")))
        pc = Signal(ENTRY_BITS + 1)
        m.d.comb += ir.addr.eq(pc)
        bad = Signal()
        sizes = {"v": cfg.vmem_depth, "act": 2 * cfg.act_elems, "res": 2 * cfg.res_elems}
        fields = {"d": w_d, "a": w_a, "b": w_b}
        with m.Switch(w_op):
            for op in Op:
                with m.Case(op):
                    if op in SCALAR_OPS:
                        m.d.comb += bad.eq((w_d >= cfg.sregs) | (w_a >= cfg.sregs) |
                                           (w_b >= cfg.sregs) | (w_c > 63))
                    elif op == Op.SLI:
                        m.d.comb += bad.eq(w_d >= cfg.sregs)
                    elif op == Op.SADD:
                        m.d.comb += bad.eq((w_d >= cfg.sregs) | (w_a >= cfg.sregs) |
                                           (w_b >= cfg.sregs))
                    elif op == Op.TMV:
                        fmt_ok = Mux(w_c[0], int("t3" in t.formats), int("t2" in t.formats))
                        m.d.comb += bad.eq(~((w_d >= 1) & (w_d <= t.max_out) & (w_a >= 1) &
                                             (w_a <= t.max_in) & (w_b < t.weight_depth) &
                                             fmt_ok) | (w_c > 7))
                    elif op in VECTOR_OPS:
                        spec = VECTOR_OPS[op]
                        checks = [fields[k] + vl > sizes[spec[k]]
                                  for k in ("d", "a", "b") if k in spec]
                        if lg:   # MfcConfig.aligned
                            checks += [fields[k][:lg] != 0 for k in ("d", "a", "b")
                                       if k in spec]
                        if "c" in spec:
                            checks.append(w_c + (spec["c"] in ("sr2", "sk")) >= cfg.sregs)
                        m.d.comb += bad.eq(_any(checks))
            with m.Default():
                m.d.comb += bad.eq(1)

        # the instruction in execution (decode's fields, held for the later states)
        op_r, d_r, a_r, b_r, c_r = (Signal(width, name=f"{name}_r")
                                     for name, width in INSTR_FIELDS)
        s0_r, s1_r = Signal(32), Signal(32)
        in_decode = Signal()
        f_op, f_d, f_a, f_b, f_c = (Mux(in_decode, w, r) for w, r in
                                    ((w_op, op_r), (w_d, d_r), (w_a, a_r), (w_b, b_r),
                                     (w_c, c_r)))

        # ---- TMV adapter: command register, ACT blocks in, result beats to RES ----------------
        tbusy = Signal()
        tmv_last = tmv.o.valid & tmv.o.payload.last
        idle_next = ~tbusy | tmv_last
        issue_tmv = Signal()
        cmd_pending, have = Signal(), Signal()
        blocks_left = Signal(range(t.act_depth + 1))
        next_block = Signal(range(2 * t.act_depth + 1))
        res_idx = Signal(range(2 * cfg.res_elems // P + 1))    # result beats written
        c = tmv.cmd.payload
        m.d.comb += tmv.cmd.valid.eq(cmd_pending)
        with m.If(tmv.cmd.valid & tmv.cmd.ready):
            m.d.sync += cmd_pending.eq(0)
        advance = ~have | tmv.act.ready
        m.d.comb += [tmv.act.payload.eq(ar.data), tmv.act.valid.eq(have),
                     ar.addr.eq(next_block), ar.en.eq(advance)]
        with m.If(tbusy & advance):
            m.d.sync += have.eq(blocks_left != 0)
            with m.If(blocks_left != 0):
                m.d.sync += [blocks_left.eq(blocks_left - 1), next_block.eq(next_block + 1)]
        # a beat's lanes past ``rows`` are not written: RES keeps its old values there
        rows_left = Signal(range(t.max_out + 1))
        lane_en = Cat(rows_left > k for k in range(P))
        # beat b holds elements P·b ...: word P·b // W, from lane P·b % W (P divides W)
        r_word, r_beat = _divmod(res_idx, W // P)
        m.d.comb += [tmv.o.ready.eq(1), rw.addr.eq(r_word),
                     rw.data.eq(tmv.o.payload.y.as_value().replicate(W // P)),
                     rw.en.eq(Mux(tmv.o.valid, lane_en << (r_beat * P), 0))]
        with m.If(tmv.o.valid):
            m.d.sync += [res_idx.eq(res_idx + 1),
                         rows_left.eq(Mux(rows_left > P, rows_left - P, 0))]
            with m.If(tmv.o.payload.last):
                m.d.sync += tbusy.eq(0)
        with m.If(issue_tmv):
            m.d.sync += [tbusy.eq(1), cmd_pending.eq(1), have.eq(0),
                         c.rows.eq(f_d), c.cols.eq(f_a), c.base.eq(f_b), c.fmt.eq(f_c[0]),
                         c.load_x.eq(1), rows_left.eq(f_d),
                         blocks_left.eq(_divmod(f_a + (S - 1), S)[0]),
                         next_block.eq(Mux(f_c[1], t.act_depth, 0)),
                         res_idx.eq(Mux(f_c[2], cfg.res_elems // P, 0))]
        assert TMV_FORMATS == ("t2", "t3")

        # ---- vector datapath: element reads, the unit, result writes --------------------------
        # a vector op runs in groups of L elements (operand addresses are multiples of L)
        cnt = Signal(range(field_limit("a") + cfg.vpu_latency))   # cycles into the op: group read
        j = Signal(range(field_limit("a") + 1))                   # groups written
        in_vector = Signal()
        groups = Signal(range(field_limit("a") + 1))
        m.d.comb += groups.eq((vl + (L - 1)) >> lg)
        e_valid, e_first, e_last = Signal(), Signal(), Signal()
        e_mask = Signal(L)
        e_sel = Signal(max(1, ceil_log2(W // L)))
        left = Signal(range(field_limit("a") + 1))   # elements from this group on
        m.d.comb += left.eq(vl - (cnt << lg))
        src = (a_r >> lg) + cnt                       # V word of the group
        r_word_rd, r_sel = _divmod((a_r >> lg) + cnt, W // L)   # RES word, its L-lane group
        issue_el = in_vector & (cnt < groups)
        m.d.sync += [e_valid.eq(issue_el), e_first.eq(cnt == 0), e_last.eq(cnt + 1 == groups),
                     e_mask.eq(Cat(left > k for k in range(L))), e_sel.eq(r_sel)]
        m.d.comb += [vr1.addr.eq((b_r >> lg) + cnt), rr.addr.eq(r_word_rd)]
        vp = vec.i.payload
        m.d.comb += [vec.i.valid.eq(e_valid), vp.op.eq(op_r), vp.y.eq(vr1.data),
                     vp.x.eq(Mux(op_r == Op.VRESCALE, rr.data.word_select(e_sel, 32 * L),
                                 vr0.data)),
                     vp.s0.eq(s0_r), vp.s1.eq(s1_r), vp.mask.eq(e_mask), vp.first.eq(e_first),
                     vp.last.eq(e_last), vec.o.ready.eq(1)]
        dest = (d_r >> lg) + j    # V word of the group written
        writes_v = _any([op_r == op for op, spec in VECTOR_OPS.items() if spec.get("d") == "v"])
        reduces = _any([op_r == op for op, spec in VECTOR_OPS.items()
                        if spec.get("c") in ("sw", "sk")])
        # "sk" ops (VNORM) read S[c] and write their reduction to S[c+1]
        red_reg = c_r + _any([op_r == op for op, spec in VECTOR_OPS.items()
                              if spec.get("c") == "sk"])
        # VQUANT's L bytes go to one ACT word (L divides S and the address)
        a_word, a_byte = _divmod(d_r + (j << lg), S)
        q_bytes = Cat(vec.o.payload.data[k][:8] for k in range(L))
        m.d.comb += [aw.addr.eq(a_word), aw.data.eq(q_bytes.replicate(S // L)),
                     aw.en.eq(Mux(vec.o.valid & (op_r == Op.VQUANT),
                                  vec.o.payload.mask << a_byte, 0))]
        with m.If(vec.o.valid):
            m.d.sync += j.eq(j + 1)
            with m.If(reduces & vec.o.payload.last):
                m.d.sync += sregs[red_reg].eq(vec.o.payload.acc)
        busy = Signal()
        host_word, host_lane = _divmod(self.host_addr, L)
        host_lane_r = Signal.like(host_lane)        # the lane read in the previous cycle
        m.d.sync += host_lane_r.eq(host_lane)
        m.d.comb += [
            vw.addr.eq(Mux(busy, dest, host_word)),
            vw.data.eq(Mux(busy, vec.o.payload.data.as_value(), self.host_wdata.replicate(L))),
            vw.en.eq(Mux(busy, Mux(vec.o.valid & writes_v, vec.o.payload.mask, 0),
                         Mux(self.host_we & (self.host_addr < cfg.vmem_depth),
                             Const(1, L) << host_lane, 0))),
            vr0.addr.eq(Mux(in_vector, src, host_word)),
            self.host_rdata.eq(vr0.data.word_select(host_lane_r, 32)),
        ]

        # ---- scalar unit ------------------------------------------------------------------
        sa_r, sb_r = Signal(64), Signal(64)
        scal_pending = Signal()
        sp = scal.i.payload
        m.d.comb += [scal.i.valid.eq(scal_pending), sp.a.eq(sa_r), sp.b.eq(sb_r),
                     sp.shift.eq(c_r[:6]), scal.o.ready.eq(1)]
        with m.Switch(op_r):
            for op, name in SCALAR_OPS.items():
                with m.Case(op):
                    m.d.comb += sp.op.eq(SCALAR_CODES[name])
        with m.If(scal.i.valid & scal.i.ready):
            m.d.sync += scal_pending.eq(0)

        # ---- sequencer ----------------------------------------------------------------------
        in_fetch, in_wait, in_scalar = Signal(), Signal(), Signal()
        fetch_ok = in_fetch & (pc < cfg.imem_depth)
        retire = Signal()  # decode of a good instruction

        def go_on():
            m.d.sync += pc.eq(pc + 1)
            m.next = "FETCH"

        def proceed():
            """TMV/TWAIT/HALT once the engine is free next cycle."""
            with m.If(f_op == Op.HALT):
                m.d.sync += self.done.eq(1)
                m.next = "IDLE"
            with m.Else():
                m.d.comb += issue_tmv.eq(f_op == Op.TMV)
                go_on()

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [pc.eq(self.entry), self.error.eq(0), self.done.eq(0)]
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.comb += in_fetch.eq(1)
                with m.If(pc >= cfg.imem_depth):
                    m.d.sync += self.error.eq(1)
                    m.next = "DRAIN"
                with m.Else():
                    m.next = "DECODE"
            with m.State("DECODE"):
                m.d.comb += in_decode.eq(1)
                m.d.sync += [op_r.eq(w_op), d_r.eq(w_d), a_r.eq(w_a), b_r.eq(w_b), c_r.eq(w_c),
                             sa_r.eq(sregs[w_a]), sb_r.eq(sregs[w_b]),
                             s0_r.eq(sregs[w_c]), s1_r.eq(sregs[w_c + 1]),
                             cnt.eq(0), j.eq(0)]
                with m.If(bad):
                    m.d.sync += self.error.eq(1)
                    m.next = "DRAIN"
                with m.Else():
                    m.d.comb += retire.eq(1)
                    with m.Switch(w_op):
                        with m.Case(Op.HALT, Op.TWAIT, Op.TMV):
                            with m.If(idle_next):
                                proceed()
                            with m.Else():
                                m.next = "WAIT"
                        with m.Case(Op.SETVL):
                            m.d.sync += vl.eq(w_a)
                            go_on()
                        with m.Case(Op.SLI):
                            m.d.sync += sregs[w_d].eq(imm)
                            go_on()
                        with m.Case(Op.SADD):
                            m.d.sync += sregs[w_d].eq(sregs[w_a] + sregs[w_b])
                            go_on()
                        with m.Case(*SCALAR_OPS):
                            m.d.sync += scal_pending.eq(1)
                            m.next = "SCALAR"
                        with m.Default():
                            with m.If(_any([w_op == op for op, spec in VECTOR_OPS.items()
                                            if spec.get("c") == "sw"]) & (vl == 0)):
                                m.d.sync += sregs[w_c].eq(0)
                            with m.If(_any([w_op == op for op, spec in VECTOR_OPS.items()
                                            if spec.get("c") == "sk"]) & (vl == 0)):
                                m.d.sync += sregs[w_c + 1].eq(0)
                            m.next = "VECTOR"
            with m.State("WAIT"):
                m.d.comb += in_wait.eq(1)
                with m.If(idle_next):
                    proceed()
            with m.State("SCALAR"):
                m.d.comb += in_scalar.eq(1)
                with m.If(scal.o.valid):
                    m.d.sync += sregs[d_r].eq(scal.o.payload.value)
                    go_on()
            with m.State("VECTOR"):
                m.d.comb += in_vector.eq(1)
                m.d.sync += cnt.eq(cnt + 1)
                with m.If(cnt == groups + (cfg.vpu_latency - 1)):
                    go_on()
            with m.State("DRAIN"):
                with m.If(~tbusy):
                    m.d.sync += self.done.eq(1)
                    m.next = "IDLE"
        m.d.comb += [busy.eq(~fsm.ongoing("IDLE")), self.busy.eq(busy)]

        # ---- counters -------------------------------------------------------------------------
        in_seq = fetch_ok | in_decode | in_wait | in_scalar | in_vector
        count = {"cycles": in_seq, "instructions": retire, "tmv_busy": tbusy,
                 "vpu_busy": in_vector, "scalar_busy": in_scalar, "wait_tmv": in_wait,
                 "issue": fetch_ok | in_decode}
        assert set(count) == set(COUNTERS)
        for name, cond in count.items():
            ctr = getattr(self, name)
            with m.If(self.start & ~busy):
                m.d.sync += ctr.eq(0)
            with m.Elif(cond):
                m.d.sync += ctr.eq(ctr + 1)
        return m
