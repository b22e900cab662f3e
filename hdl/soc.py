"""The device: link + command processor + a list of engine adapters and their memories.

``Soc(cfg: SocConfig)`` ports:

- ``rx``: stream of bytes from the host (UART PHY on a board, the socket bridge in
  simulation); ``tx``: stream of bytes to the host;
- ``idle``: nothing in flight anywhere (no frame being received or answered, no engine
  busy); the simulator may stop its clock while idle and no byte arrives.
- ``rx_partial``: inside a frame, waiting for more of its bytes (the simulator then
  checks its socket often instead of clocking long batches).

The SoC holds one adapter per engine of ``cfg.engines`` (:func:`adapters`), each an
:class:`EngineAdapter`: its START id and field layout, its regions (``soc_regions`` of
its config, placed by :class:`tritium.config.MemoryMap`), its counters, and an
``elaborate(bus)`` that wires the engine to the byte bus and START and returns an
:class:`EngineOut`. The SoC decodes the map (an access must lie inside one region with
that access right, and the region's engine must not hold the bus), multiplexes the bus
reads over the engines, dispatches START by engine id (an unknown id or arguments the
engine refuses: NAK 6; an engine still running: NAK 5) and reports in STATUS the flags
and result count of the engine started last. INFO (:func:`info_bytes`) holds the
config, the map, every engine's START id, field layout, regions and counters (name and
width); COUNTERS answers each engine's counters (prefixed with its name), then the
link's. RESET clears the engines, their counters, the weight CRC and the status, not
the memories.

Engines (their START fields, regions and counters: each engine's description in
``tritium.engines.NAME``, docs/protocol.md; what each region holds: the adapter):

- :class:`TmvAdapter`, the bare TMV: ``weights`` (write only; ``weight_depth`` lines of
  ``line_stride`` bytes; writing the last byte, ``line_bytes - 1``, of a line commits the
  whole line; every byte also goes through a CRC-32, STATUS ``weight_crc``),
  ``activations`` (read/write, int8), ``results`` (read only, int32). START runs
  ``rows × cols`` from weight line ``base`` in format ``fmt``; arguments outside the
  build's limits are refused, a command whose weight words would run past the end of
  the weight memory included.
- :class:`MfcAdapter`, the token core: ``weights`` (as above, the core's TMV),
  ``program`` (write only; 8 bytes per instruction, committed on its last byte), ``vmem``
  (read/write; 4 bytes per element, committed on the last), ``sregs`` (read only; 8
  bytes per register). START runs from ``entry`` to HALT; while the core runs it holds
  the bus (every access NAKed: address), so a host never races it.
- the SpGEMM engine's: :mod:`tritium.engines.spgemm.hdl.adapter`.
"""

from __future__ import annotations

import json

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.hdl import ResetInserter
from amaranth.lib import fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for, exact_log2

from tritium import protocol as P
from tritium import registry
from tritium.config import TMV_FORMATS, SocConfig

from .adapter import EngineAdapter, EngineBus, EngineOut, _any, _widen
from .link.command import CommandProcessor
from .link.deframer import Deframer
from .link.framer import Framer


class TmvAdapter(EngineAdapter):
    """The bare TMV engine: weights, activation and result memories, START adapter."""

    def elaborate(self, bus: EngineBus) -> EngineOut:
        from .ternary.matvec import TernaryMatVec

        m, proc, t, soft = bus.m, bus.proc, self.cfg, bus.soft
        tmv = TernaryMatVec(t)
        m.submodules.tmv = ResetInserter(soft)(tmv)
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


class MfcAdapter(EngineAdapter):
    """The token core: weights, program, vector memory and scalar registers on the bus."""

    def elaborate(self, bus: EngineBus) -> EngineOut:
        from .mfc import MfcCore

        m, proc, c = bus.m, bus.proc, self.cfg
        core = MfcCore(c)
        m.submodules.mfc = ResetInserter(bus.soft)(core)
        crc, lines = bus.weights(c.tmv.line_bits // 8, c.tmv.line_stride, core.wload)
        bus.assemble("program", 8, 8, core.imem_w.valid, core.imem_w.payload.addr,
                     core.imem_w.payload.data)
        v_we, v_waddr, v_wdata = Signal(), Signal(16), Signal(32)
        bus.assemble("vmem", 4, 4, v_we, v_waddr, v_wdata)
        v_off, s_off = bus.offset("vmem"), bus.offset("sregs")
        m.d.comb += [core.host_we.eq(v_we), core.host_wdata.eq(v_wdata),
                     core.host_addr.eq(Mux(v_we, v_waddr, v_off[2:])),
                     core.sreg_sel.eq(s_off[3:])]
        # bus reads answer the cycle after: vmem through the core's read port, a scalar
        # register's byte from a register (its read is combinational)
        rd_sreg, rd_lane, sreg_byte = Signal(), Signal(2), Signal(8)
        with m.If(proc.bus_re):
            m.d.sync += [rd_sreg.eq(bus.hit("sregs")), rd_lane.eq(v_off[:2]),
                         sreg_byte.eq(core.sreg_rdata.word_select(s_off[:3], 8))]
        rdata = Mux(rd_sreg, sreg_byte, core.host_rdata.word_select(rd_lane, 8))

        entry = bus.fields["entry"]
        m.d.comb += [core.start.eq(bus.start), core.entry.eq(entry)]
        return EngineOut(flags=Cat(core.busy, core.done, core.error), beats=core.instructions,
                         counters=[getattr(core, n) for n, _ in self.counters()], busy=core.busy,
                         locks=core.busy, args_ok=entry < c.imem_depth, ready=~core.busy,
                         rdata=rdata, rvalid=bus.read_next_cycle(), weight_crc=crc,
                         weight_lines=lines)


def adapters(cfg: SocConfig) -> list[EngineAdapter]:
    """One adapter per engine of ``cfg``, in ``cfg.engines`` order: the class its engine's
    description names (``Engine.adapter``, :mod:`tritium.registry`)."""
    return [registry.of(e).hook("adapter")(e, cfg) for e in cfg.engines]


def counter_names(cfg: SocConfig) -> tuple[str, ...]:
    """The COUNTERS answer, in order: each engine's counters, then the link's."""
    return tuple(n for a in adapters(cfg) for n, _ in a.describe()["counters"]) + \
        P.LINK_COUNTERS


def info_bytes(cfg: SocConfig) -> bytes:
    """What INFO returns: protocol version, config, address map, counter names, and per
    engine its START id and fields, regions and counters (with widths)."""
    return json.dumps({"protocol": P.VERSION, "device": "tritium-soc",
                       "config": cfg.to_dict(), "map": cfg.address_map(),
                       "counters": list(counter_names(cfg)),
                       "engines": {a.name: a.describe() for a in adapters(cfg)}},
                      sort_keys=True, separators=(",", ":")).encode()


class Soc(wiring.Component):
    def __init__(self, cfg: SocConfig):
        self.cfg = cfg
        super().__init__({"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8)),
                          "idle": Out(1), "rx_partial": Out(1)})

    def elaborate(self, platform):
        cfg, m = self.cfg, Module()
        amap = cfg.address_map()
        info = info_bytes(cfg)
        engines = adapters(cfg)
        m.submodules.deframer = dfr = Deframer(cfg.max_payload, cfg.frame_timeout)
        m.submodules.framer = fmr = Framer()
        m.submodules.proc = proc = CommandProcessor(
            max_payload=cfg.max_payload, info=info,
            status_bytes=P.fields_size(P.STATUS_FIELDS), counter_count=len(counter_names(cfg)))
        soft = proc.soft_reset

        # ---- link plumbing ------------------------------------------------------------
        m.submodules.frame_buf = fbuf = memory.Memory(shape=8, depth=cfg.max_payload, init=[])
        fw, fr = fbuf.write_port(), fbuf.read_port()
        # FIFOs at the boundary: the top-level inputs feed only flops, so a simulator's
        # per-input-change evaluation stays small (and a board gets timing slack)
        m.submodules.rx_fifo = rxf = fifo.SyncFIFOBuffered(width=8, depth=4)
        m.submodules.tx_fifo = txf = fifo.SyncFIFOBuffered(width=8, depth=4)
        wiring.connect(m, wiring.flipped(self.rx), rxf.w_stream)
        wiring.connect(m, rxf.r_stream, dfr.i)
        wiring.connect(m, fmr.o, txf.w_stream)
        wiring.connect(m, txf.r_stream, wiring.flipped(self.tx))
        wiring.connect(m, proc.hdr, fmr.hdr)
        wiring.connect(m, proc.payload, fmr.payload)
        m.d.comb += [fw.addr.eq(dfr.buf_addr), fw.data.eq(dfr.buf_data), fw.en.eq(dfr.buf_we),
                     fr.addr.eq(proc.buf_raddr), proc.buf_rdata.eq(fr.data),
                     proc.frame.eq(dfr.frame), proc.frame_valid.eq(dfr.frame_valid),
                     dfr.release.eq(proc.release), dfr.clear.eq(soft)]

        # ---- the engines ------------------------------------------------------------------
        outs = []
        for a in engines:
            fields, pos = {}, 0
            for name, size in a.start_fields:
                fields[name] = proc.start_args[8 * pos:8 * (pos + size)]
                pos += size
            start = proc.start & (proc.start_engine == a.start_id)
            outs.append(EngineBus(m, proc, amap, start, fields))
        outs = [a.elaborate(b) for a, b in zip(engines, outs)]
        mine = [proc.start_engine == a.start_id for a in engines]
        m.d.comb += [proc.start_args_ok.eq(_any([s & o.args_ok for s, o in zip(mine, outs)])),
                     proc.start_ready.eq(_any([s & o.ready for s, o in zip(mine, outs)]))]

        # ---- address decode: one region, with the access right, of an engine not holding
        # the bus ----------------------------------------------------------------------------
        probe = EngineBus(m, proc, amap, None, {})
        ok = []
        for a, o in zip(engines, outs):
            for name in a.regions():
                r = amap[name]
                end = probe.offset(name, proc.chk_addr) + proc.chk_len
                can = Mux(proc.chk_write, int("w" in r["access"]), int("r" in r["access"]))
                ok.append(probe.hit(name, proc.chk_addr) & (end <= r["size"]) & can & ~o.locks)
        m.d.comb += proc.chk_ok.eq(_any(ok))

        # ---- bus reads: the engine whose region was read answers ------------------------
        if len(engines) == 1:
            m.d.comb += [proc.bus_rdata.eq(outs[0].rdata), proc.bus_rvalid.eq(outs[0].rvalid)]
        else:
            sel = Signal(range(len(engines)))
            with m.If(proc.bus_re):
                for k, a in enumerate(engines):
                    with m.If(_any([probe.hit(n) for n in a.regions()])):
                        m.d.sync += sel.eq(k)
            with m.Switch(sel):
                for k, o in enumerate(outs):
                    with m.Case(k):
                        m.d.comb += [proc.bus_rdata.eq(o.rdata), proc.bus_rvalid.eq(o.rvalid)]

        # ---- status: the engine started last -------------------------------------------
        if len(engines) == 1:
            flags, beats = outs[0].flags, outs[0].beats
        else:
            last = Signal(range(len(engines)))
            for k, a in enumerate(engines):
                with m.If(proc.start & mine[k]):
                    m.d.sync += last.eq(k)
            flags, beats = Signal(3), Signal(32)
            with m.Switch(last):
                for k, o in enumerate(outs):
                    with m.Case(k):
                        m.d.comb += [flags.eq(o.flags), beats.eq(o.beats)]
        crc = next((o.weight_crc for o in outs if o.weight_crc is not None), Const(0, 32))
        lines = next((o.weight_lines for o in outs if o.weight_lines is not None), Const(0, 32))

        # ---- status and counters -------------------------------------------------------
        cycles = Signal(64)
        m.d.sync += cycles.eq(Mux(soft, 0, cycles + 1))
        status = {"flags": flags, "result_beats": beats, "weight_crc": crc,
                  "weight_lines": lines, "last_seq": proc.last_seq,
                  "have_last": proc.have_last}
        m.d.comb += proc.status.eq(Cat(*[_widen(status[n], 8 * size)
                                         for n, size in P.STATUS_FIELDS]))
        link = {"frames": dfr.frames, "crc_errors": dfr.crc_errors, "timeouts": dfr.timeouts,
                "oversize": dfr.oversize, "naks": proc.naks, "duplicates": proc.duplicates,
                "cycles": cycles}
        values = [v for o in outs for v in o.counters] + [link[n] for n in P.LINK_COUNTERS]
        m.d.comb += proc.counters.eq(Cat(*[_widen(v, 64) for v in values]))
        busy = _any([o.busy for o in outs])
        m.d.comb += [self.idle.eq(proc.idle & ~dfr.busy & ~fmr.busy & ~busy &
                                  ~txf.r_rdy & ~rxf.r_rdy),
                     self.rx_partial.eq(dfr.receiving)]
        return m
