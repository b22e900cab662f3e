"""TernaryMatVec (TMV): y = W·x with ternary W, ``simd`` columns × ``pe`` rows per cycle.

Ports (``cfg = TernaryConfig``; S = ``cfg.simd``, P = ``cfg.pe``, A = ``cfg.act_bits``):

- ``wload``: stream ``{addr, data: cfg.line_bits}``, always ready: writes one weight line.
- ``wmem`` (only with ``cfg.weights_dram``): the weight memory is outside the engine; this
  is the requester side of its :func:`tritium.hdl.mem.port_signature` (the SoC adapter
  puts a :class:`~tritium.hdl.mem.DramWeightPort` behind it). Responses may come after
  any latency: the engine requests a word only while its weight FIFO has room for every
  word in flight (credits), so a slow or variable memory costs time, never data. Built
  alone it is a top-level port (``wmem__req__*``, ``wmem__resp__*``, ``wmem__w__*``: the
  ``wload`` writes, passed on); the always-ready ``resp`` has no ready wire.
  Lines hold words of P×S codes in :func:`tritium.engines.tmv.golden.tile_tmv` order, packed
  ``t2`` or ``t3`` into the low bytes (:func:`tritium.engines.tmv.golden.tmv_lines`).
- ``act``: stream ``{x: S × signed(A)}``: activation blocks (columns past ``cols`` are
  don't-care), taken only by commands with ``load_x`` set (below).
- ``cmd``: stream ``{rows, cols, base, fmt, load_x}``: compute ``rows`` results of a
  ``rows × cols`` matrix stored from line ``base``; ``fmt`` 0 = t2, 1 = t3. With
  ``load_x`` the command takes ceil(cols/S) blocks from ``act`` while it computes its
  first P rows and keeps them in the activation buffer; without, it reuses the buffer.
- ``o``: stream ``{y: P × int32, last}``: one beat per P rows (lanes past ``rows`` read 0),
  ``last`` on a command's final beat.
- ``error``: sticky, cleared by reset (see bad input).
- counters (48 bits, from reset): ``busy_cycles`` (a command anywhere in the engine),
  ``mac_slots`` (P·S per weight word taken), ``stall_input`` (a word waits for an ``act``
  block), ``stall_output`` (``o`` back-pressure holds the datapath), ``stall_memory`` (the
  datapath could take a word but memory has not delivered it; includes the fill).

Timing: one weight word per cycle when the memory delivers one (every
``k = cfg.transfer_cycles(fmt)`` cycles for a bandwidth-limited external memory), so
a ``rows × cols`` command is busy for

    cycles(rows, cols, fmt) = (ceil(rows/P)·ceil(cols/S) - 1)·k + cfg.latency

cycles without stalls (``cfg.cycles``); a new command is accepted in the cycle the
previous one issues its last word, so back-to-back commands run without a bubble and
only the first pays the latency. Back pressure on ``o`` stalls the datapath (never drops
a result); the memory is never back-pressured: a word is requested only when the weight
FIFO (``cfg.fifo_depth``) has room for it.

Accumulators are ``cfg.acc_bits`` wide, from |y| <= max_in·2**(A-1) (proof in
:class:`~tritium.engines.tmv.config.TernaryConfig`), so no overflow is possible.

Lanes multiplex without negation: weight -1 selects ~x (= -x - 1) and each PE counts its
-1 lanes in a small popcount tree added at the accumulator, so the lane logic is one LUT
per bit and the adder tree is A bits wide at its leaves.

Bad input never hangs the engine; it sets ``error``:
- a command with rows/cols outside [1, max_out]/[1, max_in] or a format the build lacks
  is dropped (no results, no ``act`` blocks taken);
- a weight word at an address >= ``weight_depth`` is read from the wrapped address;
- a t2 code 0b11 counts as weight 0; a t3 byte above 242 decodes as ``byte - 243``.
Results after an error are whatever those rules give (the golden mirrors them); the host
(:func:`tritium.engines.tmv.golden.check_tmv_command`) raises before sending such input.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from tritium.engines.tmv.config import TernaryConfig
from tritium.engines.tmv import COUNTER_BITS, COUNTERS
from tritium.golden.ternary import CODE_INVALID, T3_PER_BYTE
from tritium.engines.tmv.golden import TMV_FORMAT_CODES

from tritium.hdl.mem import (BlockRAM, ExternalMemoryModel, index_shape, memory_depth,
                             port_signature)
from .dot import adder_tree


def _bits(n: int) -> int:
    return max(1, n.bit_length())


def cmd_layout(cfg: TernaryConfig) -> data.StructLayout:
    # one spare bit above each limit, so an oversized request is seen (and refused)
    # rather than wrapped into range
    return data.StructLayout({
        "rows": _bits(cfg.max_out) + 1, "cols": _bits(cfg.max_in) + 1,
        "base": _bits(cfg.weight_depth) + 1, "fmt": 1, "load_x": 1})


def wload_layout(cfg: TernaryConfig) -> data.StructLayout:
    return data.StructLayout({"addr": index_shape(cfg.weight_depth),
                              "data": cfg.line_bits})


def act_layout(cfg: TernaryConfig) -> data.StructLayout:
    return data.StructLayout({"x": data.ArrayLayout(signed(cfg.act_bits), cfg.simd)})


def result_layout(cfg: TernaryConfig) -> data.StructLayout:
    return data.StructLayout({"y": data.ArrayLayout(signed(32), cfg.pe), "last": 1})


def tag_layout(cfg: TernaryConfig) -> data.StructLayout:
    """What travels with each weight word: its activation block, whether it closes a row
    block (emit) and the command (end), whether it takes its block from ``act``."""
    return data.StructLayout({"cb": index_shape(cfg.act_depth), "last_col": 1, "end": 1,
                              "from_stream": 1, "fmt": 1})


def t3_decode(m: Module, byte, *, registered: bool = True, name: str = "t3"):
    """Base-3 digits of ``byte`` (8 bits): five 2-bit codes, least significant first.

    Radix-4 conversion: the top four bits go through one table (0..15 -> three digits);
    then each lower bit pair is shifted in, most significant pair first: every digit so
    far becomes 4·digit + carry, a 4-input table to (digit, carry out) -- one LUT4 per
    output bit, a ripple of at most five tables. The carry out of the fifth digit is
    dropped, so a byte above 242 decodes as ``byte - 243``. With ``registered``, a
    register (free running, ``sync``) follows each bit pair: latency 2 cycles.
    """
    digits = [_table(m, byte[4:8], [(v // 3 ** k) % 3 for v in range(16)], f"{name}_h{k}")
              for k in range(3)]
    low = byte[:4]
    for pair in (1, 0):
        carry, nxt = low[2 * pair:2 * pair + 2], []
        for k in range(min(len(digits) + 1, T3_PER_BYTE)):
            # 4·digit + carry; a new top digit starts from 0, so it sees the carry alone
            u = Cat(carry, digits[k]) if k < len(digits) else carry
            size = 1 << len(u)
            nxt.append(_table(m, u, [v % 3 for v in range(size)], f"{name}_p{pair}d{k}"))
            carry = _table(m, u, [min(3, v // 3) for v in range(size)], f"{name}_p{pair}c{k}")
        digits = nxt
        if registered:
            digits = [_reg(m, d, f"{name}_r{pair}_{k}") for k, d in enumerate(digits)]
            low = _reg(m, low, f"{name}_low{pair}")
    return digits


def _table(m: Module, sel, table, name: str, width: int = 2):
    out = Signal(width, name=name)
    with m.Switch(sel):
        for k, v in enumerate(table):
            with m.Case(k):
                m.d.comb += out.eq(v)
    return out


def _reg(m: Module, value, name: str, en=None, shape=None):
    """A register of ``value`` (loading only when ``en``, if given)."""
    value = Value.cast(value)
    r = Signal(shape if shape is not None else value.shape(), name=name)
    m.d.sync += r.eq(value if en is None else Mux(en, value, r))
    return r


class TernaryMatVec(wiring.Component):
    def __init__(self, cfg: TernaryConfig):
        self.cfg = cfg
        super().__init__({
            "wload": In(stream.Signature(wload_layout(cfg))),
            "act": In(stream.Signature(act_layout(cfg))),
            "cmd": In(stream.Signature(cmd_layout(cfg))),
            "o": Out(stream.Signature(result_layout(cfg))),
            "error": Out(1),
            **{name: Out(COUNTER_BITS) for name in COUNTERS},
            # weights in DRAM: the weight memory is outside (a DramWeightPort), this
            # port is its requester side
            **({"wmem": Out(port_signature(**self.mem_args(cfg)).flip())}
               if cfg.weights_dram else {}),
        })

    @staticmethod
    def mem_args(cfg: TernaryConfig) -> dict:
        """The weight memory port's shape (:func:`tritium.hdl.mem.port_signature`)."""
        return dict(depth=cfg.weight_depth, width=cfg.line_bits, tag_shape=tag_layout(cfg),
                    max_size=max(cfg.word_bytes(f) for f in cfg.formats))

    def elaborate(self, platform):
        cfg, m = self.cfg, Module()
        S, P = cfg.simd, cfg.pe
        tag = tag_layout(cfg)
        t3 = TMV_FORMAT_CODES["t3"]
        errors = []  # conditions that set the sticky error flag

        # ---- weight memory ---------------------------------------------------------------
        mem_args = self.mem_args(cfg)
        if cfg.weights_dram:
            mem = self.wmem
        else:
            if cfg.external_memory:
                mem = ExternalMemoryModel(latency=cfg.mem_latency,
                                          bytes_per_cycle=cfg.mem_bytes_per_cycle, **mem_args)
            else:
                mem = BlockRAM(**mem_args)
            m.submodules.mem = mem
        m.d.comb += [mem.w.valid.eq(self.wload.valid), mem.w.payload.eq(self.wload.payload),
                     self.wload.ready.eq(1)]

        # ---- sequencer: one read request per weight word ---------------------------------
        cmd = self.cmd.payload
        running = Signal()
        c_rows, c_cols = Signal.like(cmd.rows), Signal.like(cmd.cols)
        c_fmt, c_load = Signal(), Signal()
        row = Signal(range(cfg.max_out + 1))  # first row of the current row block
        col = Signal(range(cfg.max_in + 1))   # first column of the current column block
        cb = Signal(index_shape(cfg.act_depth))
        first_rb = Signal()  # in the first row block (row == 0)
        addr = Signal(_bits(cfg.weight_depth) + 1 + _bits(cfg.words(cfg.max_out, cfg.max_in)))
        last_col = Signal()
        last_row = Signal()
        m.d.comb += [last_col.eq(col + Const(S, len(col)) >= c_cols),
                     last_row.eq(row + Const(P, len(row)) >= c_rows)]
        last_word = last_col & last_row

        inflight = Signal(range(cfg.fifo_depth + 1))  # requested, not yet taken
        pop = Signal()
        req = mem.req
        m.d.comb += req.valid.eq(running & (inflight < cfg.fifo_depth))
        issue = req.valid & req.ready
        m.d.sync += inflight.eq(inflight + issue - pop)
        m.d.comb += [
            req.payload.addr.eq(addr),
            req.payload.size.eq(Mux(c_fmt, cfg.word_bytes("t3") if cfg.has_t3 else 0,
                                    cfg.word_bytes("t2") if cfg.has_t2 else 0)),
            req.payload.tag.cb.eq(cb), req.payload.tag.last_col.eq(last_col),
            req.payload.tag.end.eq(last_word), req.payload.tag.fmt.eq(c_fmt),
            req.payload.tag.from_stream.eq(c_load & first_rb),
        ]
        errors.append(issue & (addr >= cfg.weight_depth))

        m.d.comb += self.cmd.ready.eq(~running | (issue & last_word))
        accept = self.cmd.valid & self.cmd.ready
        fmt_ok = Mux(cmd.fmt == t3, cfg.has_t3, cfg.has_t2)
        cmd_ok = ((cmd.rows != 0) & (cmd.rows <= cfg.max_out) & (cmd.cols != 0)
                  & (cmd.cols <= cfg.max_in) & fmt_ok)
        errors.append(accept & ~cmd_ok)
        with m.If(accept):
            m.d.sync += [running.eq(cmd_ok), c_rows.eq(cmd.rows), c_cols.eq(cmd.cols),
                         c_fmt.eq(cmd.fmt), c_load.eq(cmd.load_x), row.eq(0), col.eq(0),
                         cb.eq(0), first_rb.eq(1), addr.eq(cmd.base)]
        with m.Elif(issue):
            m.d.sync += addr.eq(addr + 1)
            with m.If(last_col):
                m.d.sync += [col.eq(0), cb.eq(0), first_rb.eq(0),
                             row.eq(row + Const(P, len(row)))]
            with m.Else():
                m.d.sync += [col.eq(col + Const(S, len(col))), cb.eq(cb + 1)]
            with m.If(last_word):
                m.d.sync += running.eq(0)

        # ---- memory data -> (t3 decode) -> codes, free running, into the FIFO ------------
        rv = Signal()
        rtag = Signal(tag)
        rdata = Signal(cfg.line_bits)
        m.d.sync += [rv.eq(mem.resp.valid), rtag.eq(mem.resp.payload.tag),
                     rdata.eq(mem.resp.payload.data)]
        n = cfg.word_codes
        codes2 = [rdata[2 * k:2 * k + 2] for k in range(n)] if cfg.has_t2 else None
        bad = Const(0)
        if cfg.has_t3:
            nbytes = cfg.word_bytes("t3")
            raw = rdata[:8 * nbytes]
            codes3 = [c for b in range(nbytes)
                      for c in t3_decode(m, raw[8 * b:8 * b + 8], name=f"t3b{b}")][:n]
            # the t2 codes, raw bytes, valid bit and tag ride beside the decoder's registers
            for s in range(2):
                rv, rtag, raw = (_reg(m, rv, f"dv{s}"), tag(_reg(m, rtag, f"dtag{s}")),
                                 _reg(m, raw, f"draw{s}"))
                if codes2 is not None:
                    codes2 = [_reg(m, c, f"d{s}c{k}") for k, c in enumerate(codes2)]
            # Cat(...).any(), not an `|` chain: a chain of simd·pe terms nests one Python
            # expression per term and overflows the recursion limit at wide builds
            bad3 = Cat(*[raw[8 * b:8 * b + 8] > 3 ** T3_PER_BYTE - 1
                         for b in range(nbytes)]).any()
            codes = codes3 if codes2 is None else [Mux(rtag.fmt == t3, c3, c2)
                                                   for c2, c3 in zip(codes2, codes3)]
            bad = bad | (rtag.fmt == t3) & bad3
        else:
            codes = codes2
        if cfg.has_t2:
            inv2 = Cat(*[c == CODE_INVALID for c in codes2]).any()
            bad = bad | (rtag.fmt != t3) & inv2
        errors.append(rv & bad)
        assert 1 + 2 * cfg.has_t3 == cfg.decode_stages, "config decode_stages out of step"

        m.submodules.wfifo = wfifo = fifo.SyncFIFO(width=2 * n + tag.size, depth=cfg.fifo_depth)
        m.d.comb += [wfifo.w_en.eq(rv), wfifo.w_data.eq(Cat(*codes, rtag))]
        f_codes = wfifo.r_data[:2 * n]
        f_tag = tag(wfifo.r_data[2 * n:])

        # ---- datapath: global enable, stalled only by the result register ----------------
        en = Signal()
        m.d.comb += en.eq(~self.o.valid | self.o.ready)
        need_act = f_tag.from_stream
        m.d.comb += [pop.eq(en & wfifo.r_rdy & (~need_act | self.act.valid)),
                     self.act.ready.eq(en & wfifo.r_rdy & need_act), wfifo.r_en.eq(pop)]

        m.submodules.xbuf = xbuf = memory.Memory(shape=act_layout(cfg).size,
                                                 depth=memory_depth(cfg.act_depth), init=[])
        xw, xr = xbuf.write_port(), xbuf.read_port()
        m.d.comb += [xw.addr.eq(f_tag.cb), xw.data.eq(self.act.payload),
                     xw.en.eq(pop & need_act), xr.addr.eq(f_tag.cb), xr.en.eq(en)]

        # stage 0: take the word; the activation block comes from the stream or the buffer
        v0, tag0 = Signal(), Signal(tag)
        codes0 = Signal(2 * n)
        x0 = Signal(act_layout(cfg))
        with m.If(en):
            m.d.sync += [v0.eq(pop), tag0.eq(f_tag), codes0.eq(f_codes),
                         x0.eq(self.act.payload)]
        x = act_layout(cfg)(Mux(tag0.from_stream, x0.as_value(), xr.data)).x

        # stage 1: lane multiplexers: +x, ~x (= -x - 1) or 0, and the -1 flags
        v1, tag1 = Signal(), Signal(tag)
        prods = [[Signal(signed(cfg.act_bits), name=f"p{p}_{s}") for s in range(S)]
                 for p in range(P)]
        negs = [[Signal(name=f"n{p}_{s}") for s in range(S)] for p in range(P)]
        with m.If(en):
            m.d.sync += [v1.eq(v0), tag1.eq(tag0)]
            for p in range(P):
                for s in range(S):
                    c = codes0[2 * (p * S + s):2 * (p * S + s) + 2]
                    pos, neg = c[1] & ~c[0], ~(c[1] | c[0])  # 0b10 = +1, 0b00 = -1
                    m.d.sync += [prods[p][s].eq(Mux(pos, x[s], Mux(neg, ~x[s], 0))),
                                 negs[p][s].eq(neg)]

        # adder trees (sum of lanes, count of -1 lanes); valid/tag ride beside them
        acc_shape = signed(cfg.acc_bits)
        sums, counts, stages = [], [], 0
        for p in range(P):
            total, stages = adder_tree(m, "sync", en, prods[p], cfg.levels_per_stage,
                                       f"sum{p}", out_shape=acc_shape)
            count, cstages = adder_tree(m, "sync", en, negs[p], cfg.levels_per_stage,
                                        f"neg{p}")
            assert cstages == stages
            if stages == 0:  # one lane: no tree, register the term anyway
                total = _reg(m, total, f"sum{p}_r", en, acc_shape)
                count = _reg(m, count, f"neg{p}_r", en)
            sums.append(total)
            counts.append(count)
        stages = max(stages, 1)
        assert stages == cfg.tree_stages, "config tree_stages out of step with hdl"
        v, tg, valids = v1, tag1, [v0, v1]
        for s in range(stages):
            v, tg = _reg(m, v, f"tv{s}", en), tag(_reg(m, tg, f"ttag{s}", en))
            valids.append(v)

        # accumulators and the result register
        with m.If(en):
            m.d.sync += [self.o.valid.eq(v & tg.last_col), self.o.payload.last.eq(tg.end)]
        for p in range(P):
            acc = Signal(acc_shape, name=f"acc{p}")
            nxt = Signal(acc_shape, name=f"acc{p}_next")
            # the count of -1 lanes, as a non-negative signed term
            count = Cat(counts[p], Const(0, cfg.acc_bits - len(counts[p]))).as_signed()
            m.d.comb += nxt.eq(acc + sums[p] + count)
            with m.If(en & v):
                with m.If(tg.last_col):
                    m.d.sync += [self.o.payload.y[p].eq(nxt), acc.eq(0)]
                with m.Else():
                    m.d.sync += acc.eq(nxt)

        # ---- error flag and counters --------------------------------------------------------
        err = Cat(*errors).any()
        with m.If(err):
            m.d.sync += self.error.eq(1)
        busy = Signal()
        m.d.comb += busy.eq(running | (inflight != 0) | Cat(*valids).any() | self.o.valid)
        for name, cond, step in (
                ("busy_cycles", busy, 1),
                ("mac_slots", pop, n),
                ("stall_output", busy & ~en, 1),
                ("stall_memory", en & ~wfifo.r_rdy & (running | (inflight != 0)), 1),
                ("stall_input", en & wfifo.r_rdy & need_act & ~self.act.valid, 1)):
            counter = getattr(self, name)
            with m.If(cond):
                m.d.sync += counter.eq(counter + step)
        return m

