"""The bare TMV engine on the SoC's byte bus (its description: :mod:`tritium.engines.tmv`).

With ``weights_dram`` the engine has no ``weights`` region: its lines are in the SoC's
DRAM (line ``base + i`` at DRAM byte ``(base + i) * line_stride``), read through a
:class:`~tritium.hdl.mem.DramWeightPort` on the SoC's DRAM arbiter.

Regions: ``weights`` (write only; ``weight_depth`` lines of ``line_stride`` bytes;
writing the last byte, ``line_bytes - 1``, of a line commits the whole line; every byte
also goes through a CRC-32, STATUS ``weight_crc``), ``activations`` (read/write, int8),
``results`` (read only, int32). START runs ``rows × cols`` from weight line ``base`` in
format ``fmt``; arguments outside the build's limits are refused, a command whose
weight words would run past the end of the weight memory included.
"""

from __future__ import annotations

from amaranth import Cat, Const, Mux, Signal
from amaranth.hdl import ResetInserter
from amaranth.lib import memory
from amaranth.utils import bits_for, exact_log2

from tritium.engines.tmv.config import TMV_FORMATS

from amaranth.lib import wiring

from tritium.hdl.adapter import EngineAdapter, EngineBus, EngineOut, _any
from tritium.hdl.mem import DramWeightPort
from .matvec import TernaryMatVec


class TmvAdapter(EngineAdapter):
    """The bare TMV engine: weights, activation and result memories, START adapter."""

    def elaborate(self, bus: EngineBus) -> EngineOut:
        m, proc, t, soft = bus.m, bus.proc, self.cfg, bus.soft
        tmv = TernaryMatVec(t)
        m.submodules.tmv = ResetInserter(soft)(tmv)
        if t.weights_dram:
            # weight line a is the line_stride bytes at DRAM byte a * line_stride; the
            # host loads them over the dram region and proves them with the CRC command
            m.submodules.wport = wport = DramWeightPort(
                dram=bus.dram, stride=t.line_stride, outstanding=t.fifo_depth + 1,
                **TernaryMatVec.mem_args(t))
            wiring.connect(m, tmv.wmem, wport.mem)
            wiring.connect(m, wport.dram, bus.dram_port())
            # RESET mid-run: the engine restarts empty, the port drops the beats the
            # controller still returns for it
            m.d.comb += wport.flush.eq(soft)
            m.d.comb += tmv.wload.valid.eq(0)
            crc = lines = None
        else:
            crc, lines = bus.weights(t.line_bits // 8, t.line_stride, tmv.wload)
        wdata = bus.wdata
        # ---- activations: S int8 lanes per word --------------------------------------
        S, Pe = t.simd, t.pe
        s_bits = exact_log2(S)
        m.submodules.act_mem = amem = memory.Memory(shape=8 * S, depth=t.act_depth, init=[])
        aw = amem.write_port(granularity=8)
        a_bus = amem.read_port()
        a_eng = amem.read_port()
        a_off = bus.offset("activations")
        m.d.comb += [aw.addr.eq(a_off >> s_bits), aw.data.eq(wdata.replicate(S)),
                     aw.en.eq(Mux(bus.written("activations"),
                                  (Const(1, S) << a_off[:s_bits]) if s_bits else 1, 0)),
                     a_bus.addr.eq(a_off >> s_bits)]

        # ---- results: P int32 lanes per word ------------------------------------------
        rb = exact_log2(Pe * 4)
        r_depth = -(-t.max_out // Pe)
        m.submodules.res_mem = rmem = memory.Memory(shape=32 * Pe, depth=r_depth, init=[])
        rw, r_bus = rmem.write_port(), rmem.read_port()
        r_off = bus.offset("results")
        m.d.comb += r_bus.addr.eq(r_off >> rb)

        # bus reads: the byte lane is chosen the cycle after the read
        rd_lane = Signal(max(s_bits, rb, 1))
        rd_act = Signal()
        with m.If(proc.bus_re):
            m.d.sync += [rd_act.eq(bus.hit("activations")),
                         rd_lane.eq(Mux(bus.hit("activations"), a_off[:s_bits] if s_bits else 0,
                                        r_off[:rb]))]
        act_byte = a_bus.data.word_select(rd_lane[:s_bits], 8) if s_bits else a_bus.data
        rdata = Mux(rd_act, act_byte, r_bus.data.word_select(rd_lane[:rb], 8))

        # ---- START --------------------------------------------------------------------
        fields = bus.fields
        fmt_ok = _any([fields["fmt"] == k for k, f in enumerate(TMV_FORMATS) if f in t.formats])
        # the command's words (TernaryConfig.words) must end inside the weight memory;
        # rows/cols are range-checked beside it, so their low bits suffice here
        row_bits, col_bits = bits_for(t.max_out), bits_for(t.max_in)
        words = ((fields["rows"][:row_bits] + t.pe - 1) >> exact_log2(t.pe)) * \
            ((fields["cols"][:col_bits] + t.simd - 1) >> s_bits)
        args_ok = ((fields["rows"] >= 1) & (fields["rows"] <= t.max_out) &
                   (fields["cols"] >= 1) & (fields["cols"] <= t.max_in) &
                   (fields["base"] + words <= t.weight_depth) & fmt_ok)
        busy, done = Signal(), Signal()
        cmd_pending = Signal()
        blocks_left = Signal(range(t.act_depth + 1))
        next_block = Signal(range(t.act_depth + 1))
        have = Signal()
        res_idx = Signal(range(r_depth + 1))
        result_beats = Signal(32)
        c = tmv.cmd.payload
        with m.If(bus.start):
            m.d.sync += [busy.eq(1), done.eq(0), cmd_pending.eq(1), res_idx.eq(0),
                         c.rows.eq(fields["rows"]), c.cols.eq(fields["cols"]),
                         c.base.eq(fields["base"]), c.fmt.eq(fields["fmt"]), c.load_x.eq(1),
                         blocks_left.eq((fields["cols"] + S - 1) >> s_bits), next_block.eq(0),
                         have.eq(0)]
        m.d.comb += tmv.cmd.valid.eq(cmd_pending)
        with m.If(tmv.cmd.valid & tmv.cmd.ready):
            m.d.sync += cmd_pending.eq(0)
        # activation blocks: a_eng holds block `next_block - 1` while `have`
        m.d.comb += [tmv.act.payload.eq(a_eng.data), tmv.act.valid.eq(have)]
        advance = ~have | tmv.act.ready
        m.d.comb += [a_eng.addr.eq(next_block), a_eng.en.eq(advance)]
        with m.If(busy & advance & ~bus.start):
            m.d.sync += have.eq(blocks_left != 0)
            with m.If(blocks_left != 0):
                m.d.sync += [blocks_left.eq(blocks_left - 1), next_block.eq(next_block + 1)]
        # results
        m.d.comb += [tmv.o.ready.eq(1), rw.addr.eq(res_idx), rw.data.eq(tmv.o.payload.y),
                     rw.en.eq(tmv.o.valid)]
        with m.If(tmv.o.valid):
            m.d.sync += [res_idx.eq(res_idx + 1), result_beats.eq(result_beats + 1)]
            with m.If(tmv.o.payload.last):
                m.d.sync += [busy.eq(0), done.eq(1)]
        with m.If(soft):
            m.d.sync += [busy.eq(0), done.eq(0), cmd_pending.eq(0), have.eq(0),
                         result_beats.eq(0)]

        return EngineOut(flags=Cat(busy, done, tmv.error), beats=result_beats,
                         counters=[getattr(tmv, n) for n, _ in self.counters()], busy=busy,
                         locks=Const(0, 1), args_ok=args_ok, ready=~busy, rdata=rdata,
                         rvalid=bus.read_next_cycle(), weight_crc=crc, weight_lines=lines)
