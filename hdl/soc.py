"""The device: link + command processor + the TMV engine and its memories.

``Soc(cfg: SocConfig)`` ports:

- ``rx``: stream of bytes from the host (UART PHY on a board, the socket bridge in
  simulation); ``tx``: stream of bytes to the host;
- ``idle``: nothing in flight anywhere (no frame being received or answered, engine
  idle); the simulator may stop its clock while idle and no byte arrives.
- ``rx_partial``: inside a frame, waiting for more of its bytes (the simulator then
  checks its socket often instead of clocking long batches).

Byte address map (``cfg.address_map()``; the device reports it in INFO):

- ``weights`` (write only): ``weight_depth`` lines of ``line_stride`` bytes; writing the
  last byte (``line_bytes - 1``) of a line commits the whole line to the engine's weight
  memory, so hosts write whole lines. Every byte written here also goes through a
  CRC-32, reported in STATUS (``weight_crc``) so the host can prove a load arrived intact.
- ``activations`` (read/write): ``max_in`` int8 values for the next matvec.
- ``results`` (read only): int32 results of the last matvec, row order.

START (engine 1 = TMV, ``TMV_START_FIELDS``): runs ``rows × cols`` from weight line
``base`` in format ``fmt`` on the activations; arguments outside the build's limits are
refused (NAK 6) before the engine sees them, a command whose weight words would run
past the end of the weight memory included. RESET clears the engine, its counters, the
weight CRC and the status, not the memories.

With ``cfg.mfc`` set the device is the token core instead (engine 2 = MFC,
``MFC_START_FIELDS``): the regions are ``weights`` (as above, the core's TMV),
``program`` (write only; 8 bytes per instruction, the word committed on its last byte),
``vmem`` (read/write; 4 bytes per element, committed on the last) and ``sregs`` (read
only; 8 bytes per scalar register). START runs the program from ``entry`` to HALT;
while the core runs, every memory access is refused (NAK address), so a host can never
race it. The counters are the core's per-unit counters (``mfc_*``).

Adding an engine: give it a START id, its argument fields, its regions in
``SocConfig.address_map`` and its counters; the command processor is generic.
"""

from __future__ import annotations

import json

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.hdl import ResetInserter
from amaranth.lib import fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for, exact_log2

from tritium.config import TMV_FORMATS, SocConfig, pow2_ceil
from tritium import protocol as P

from .link.command import CommandProcessor
from .link.deframer import CRC32, Deframer
from .link.framer import Framer
from .ternary.matvec import COUNTERS as TMV_COUNTERS
from .ternary.matvec import TernaryMatVec

def counter_names(cfg: SocConfig) -> tuple[str, ...]:
    """The COUNTERS answer, in order: the engine's counters, then the link's."""
    if cfg.engine == "mfc":
        from tritium.golden.mfc import COUNTERS as MFC_COUNTERS
        return tuple(f"mfc_{c}" for c in MFC_COUNTERS) + P.LINK_COUNTERS
    return tuple(f"tmv_{c}" for c in TMV_COUNTERS) + P.LINK_COUNTERS


def info_bytes(cfg: SocConfig) -> bytes:
    """What INFO returns: protocol version, config, address map, counter names."""
    engine = {"tmv": P.ENGINE_TMV, "mfc": P.ENGINE_MFC}[cfg.engine]
    return json.dumps({"protocol": P.VERSION, "device": "tritium-soc",
                       "config": cfg.to_dict(), "map": cfg.address_map(),
                       "counters": list(counter_names(cfg)), "engines": {cfg.engine: engine}},
                      sort_keys=True, separators=(",", ":")).encode()


class Soc(wiring.Component):
    def __init__(self, cfg: SocConfig):
        self.cfg = cfg
        super().__init__({"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8)),
                          "idle": Out(1), "rx_partial": Out(1)})

    def elaborate(self, platform):
        cfg, t, m = self.cfg, self.cfg.tmv, Module()
        amap = cfg.address_map()
        info = info_bytes(cfg)
        m.submodules.deframer = dfr = Deframer(cfg.max_payload, cfg.frame_timeout)
        m.submodules.framer = fmr = Framer()
        m.submodules.proc = proc = CommandProcessor(
            max_payload=cfg.max_payload, info=info,
            status_bytes=P.fields_size(P.STATUS_FIELDS), counter_count=len(counter_names(cfg)))
        soft = proc.soft_reset
        if cfg.engine == "mfc":
            from .mfc import MfcCore
            engine = MfcCore(cfg.mfc)
            m.submodules.mfc = ResetInserter(soft)(engine)
        else:
            engine = TernaryMatVec(t)
            m.submodules.tmv = ResetInserter(soft)(engine)

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

        # ---- address decode -----------------------------------------------------------
        def span(r):
            return pow2_ceil(r["size"])

        def region_hit(addr, r):
            return (addr >> exact_log2(span(r))) == (r["base"] >> exact_log2(span(r)))

        def offset(addr, r):
            return addr[:exact_log2(span(r))] if span(r) > 1 else Const(0, 1)

        ok = []
        for r in amap.values():
            end = offset(proc.chk_addr, r) + proc.chk_len
            can = Mux(proc.chk_write, int("w" in r["access"]), int("r" in r["access"]))
            ok.append(region_hit(proc.chk_addr, r) & (end <= r["size"]) & can)
        # the token core owns its memories while it runs
        locked = engine.busy if cfg.engine == "mfc" else Const(0, 1)
        m.d.comb += proc.chk_ok.eq(_any(ok) & ~locked)

        addr, wdata = proc.bus_addr, proc.bus_wdata
        wr_region = {name: proc.bus_we & region_hit(addr, r) for name, r in amap.items()}

        # ---- weights: byte writes assemble lines; CRC over every byte ------------------
        wr = amap["weights"]
        stride_bits = exact_log2(cfg.line_stride)
        line_reg = Signal(8 * cfg.line_bytes)
        byte_in_line = offset(addr, wr)[:stride_bits] if stride_bits else Const(0, 1)
        line_no = offset(addr, wr)[stride_bits:]
        m.submodules.wcrc = wcrc = CRC32(data_width=8).create()
        weight_lines = Signal(32)
        m.d.comb += [wcrc.data.eq(wdata), wcrc.valid.eq(wr_region["weights"]), wcrc.start.eq(soft)]
        m.d.sync += engine.wload.valid.eq(0)
        with m.If(wr_region["weights"] & (byte_in_line < cfg.line_bytes)):
            m.d.sync += line_reg.word_select(byte_in_line, 8).eq(wdata)
            with m.If(byte_in_line == cfg.line_bytes - 1):
                # the engine's wload port is always ready (TernaryMatVec contract)
                m.d.sync += [engine.wload.valid.eq(1), engine.wload.payload.addr.eq(line_no),
                             engine.wload.payload.data.eq(
                                 Cat(line_reg[:8 * (cfg.line_bytes - 1)], wdata)),
                             weight_lines.eq(weight_lines + 1)]
        with m.If(soft):
            m.d.sync += weight_lines.eq(0)

        ctx = _Bus(m, proc, amap, wr_region, offset, region_hit)
        if cfg.engine == "mfc":
            flags, beats, values, busy = self._mfc(ctx, engine)
        else:
            flags, beats, values, busy = self._tmv(ctx, engine)

        # ---- status and counters -------------------------------------------------------
        cycles = Signal(64)
        m.d.sync += cycles.eq(Mux(soft, 0, cycles + 1))
        status = {"flags": flags, "result_beats": beats, "weight_crc": wcrc.crc,
                  "weight_lines": weight_lines, "last_seq": proc.last_seq,
                  "have_last": proc.have_last}
        m.d.comb += proc.status.eq(Cat(*[_widen(status[n], 8 * size)
                                         for n, size in P.STATUS_FIELDS]))
        link = {"frames": dfr.frames, "crc_errors": dfr.crc_errors, "timeouts": dfr.timeouts,
                "oversize": dfr.oversize, "naks": proc.naks, "duplicates": proc.duplicates,
                "cycles": cycles}
        values = values + [link[n] for n in P.LINK_COUNTERS]
        m.d.comb += proc.counters.eq(Cat(*[_widen(v, 64) for v in values]))
        m.d.comb += [self.idle.eq(proc.idle & ~dfr.busy & ~fmr.busy & ~busy &
                                  ~txf.r_rdy & ~rxf.r_rdy),
                     self.rx_partial.eq(dfr.receiving)]
        return m

    # ---- the bare TMV engine: activation and result memories, START adapter ------------
    def _tmv(self, bus: "_Bus", tmv):
        m, proc, amap, offset, region_hit = bus.m, bus.proc, bus.amap, bus.offset, bus.region_hit
        t, soft = self.cfg.tmv, proc.soft_reset
        addr, wdata, wr_region = proc.bus_addr, proc.bus_wdata, bus.wr_region
        # ---- activations: S int8 lanes per word --------------------------------------
        ar, S, Pe = amap["activations"], t.simd, t.pe
        s_bits = exact_log2(S)
        m.submodules.act_mem = amem = memory.Memory(shape=8 * S, depth=t.act_depth, init=[])
        aw = amem.write_port(granularity=8)
        a_bus = amem.read_port()
        a_eng = amem.read_port()
        a_off = offset(addr, ar)
        m.d.comb += [aw.addr.eq(a_off >> s_bits), aw.data.eq(wdata.replicate(S)),
                     aw.en.eq(Mux(wr_region["activations"],
                                  (Const(1, S) << a_off[:s_bits]) if s_bits else 1, 0)),
                     a_bus.addr.eq(a_off >> s_bits)]

        # ---- results: P int32 lanes per word ------------------------------------------
        rr = amap["results"]
        rb = exact_log2(Pe * 4)
        r_depth = -(-t.max_out // Pe)
        m.submodules.res_mem = rmem = memory.Memory(shape=32 * Pe, depth=r_depth, init=[])
        rw, r_bus = rmem.write_port(), rmem.read_port()
        r_off = offset(addr, rr)
        m.d.comb += r_bus.addr.eq(r_off >> rb)

        # bus reads: the byte lane is chosen the cycle after the read
        rd_lane = Signal(max(s_bits, rb, 1))
        rd_act = Signal()
        with m.If(proc.bus_re):
            m.d.sync += [rd_act.eq(region_hit(addr, ar)),
                         rd_lane.eq(Mux(region_hit(addr, ar), a_off[:s_bits] if s_bits else 0,
                                        r_off[:rb]))]
        act_byte = a_bus.data.word_select(rd_lane[:s_bits], 8) if s_bits else a_bus.data
        m.d.comb += proc.bus_rdata.eq(Mux(rd_act, act_byte,
                                          r_bus.data.word_select(rd_lane[:rb], 8)))

        # ---- TMV engine adapter -----------------------------------------------------------
        fields = {}
        pos = 0
        for name, size in P.TMV_START_FIELDS:
            fields[name] = proc.start_args[8 * pos:8 * (pos + size)]
            pos += size
        fmt_ok = _any([fields["fmt"] == k for k, f in enumerate(TMV_FORMATS) if f in t.formats])
        # the command's words (TernaryConfig.words) must end inside the weight memory;
        # rows/cols are range-checked beside it, so their low bits suffice here
        row_bits, col_bits = bits_for(t.max_out), bits_for(t.max_in)
        words = ((fields["rows"][:row_bits] + t.pe - 1) >> exact_log2(t.pe)) * \
            ((fields["cols"][:col_bits] + t.simd - 1) >> s_bits)
        m.d.comb += proc.start_args_ok.eq(
            (proc.start_engine == P.ENGINE_TMV) &
            (fields["rows"] >= 1) & (fields["rows"] <= t.max_out) &
            (fields["cols"] >= 1) & (fields["cols"] <= t.max_in) &
            (fields["base"] + words <= t.weight_depth) & fmt_ok)
        busy, done = Signal(), Signal()
        cmd_pending = Signal()
        blocks_left = Signal(range(t.act_depth + 1))
        next_block = Signal(range(t.act_depth + 1))
        have = Signal()
        res_idx = Signal(range(r_depth + 1))
        result_beats = Signal(32)
        m.d.comb += proc.start_ready.eq(~busy)
        c = tmv.cmd.payload
        with m.If(proc.start):
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
        with m.If(busy & advance & ~proc.start):
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

        return Cat(busy, done, tmv.error), result_beats, \
            [getattr(tmv, c) for c in TMV_COUNTERS], busy

    # ---- the token core: program, vector memory and scalar registers on the bus ----------
    def _mfc(self, bus: "_Bus", core):
        from tritium.golden.mfc import COUNTERS as MFC_COUNTERS

        m, proc, amap, offset, region_hit = bus.m, bus.proc, bus.amap, bus.offset, bus.region_hit
        c = self.cfg.mfc
        addr, wdata, wr_region = proc.bus_addr, proc.bus_wdata, bus.wr_region

        def assemble(region: str, nbytes: int, port_valid, port_addr, port_data):
            # little-endian bytes collect in a register; the last byte commits the word
            off = offset(addr, amap[region])
            lo = exact_log2(nbytes)
            held = Signal(8 * (nbytes - 1))
            m.d.sync += port_valid.eq(0)
            with m.If(wr_region[region]):
                with m.If(off[:lo] == nbytes - 1):
                    m.d.sync += [port_valid.eq(1), port_addr.eq(off[lo:]),
                                 port_data.eq(Cat(held, wdata))]
                with m.Else():
                    m.d.sync += held.word_select(off[:lo], 8).eq(wdata)

        assemble("program", 8, core.imem_w.valid, core.imem_w.payload.addr,
                 core.imem_w.payload.data)
        v_we, v_waddr, v_wdata = Signal(), Signal(16), Signal(32)
        assemble("vmem", 4, v_we, v_waddr, v_wdata)
        v_off, s_off = offset(addr, amap["vmem"]), offset(addr, amap["sregs"])
        m.d.comb += [core.host_we.eq(v_we), core.host_wdata.eq(v_wdata),
                     core.host_addr.eq(Mux(v_we, v_waddr, v_off[2:])),
                     core.sreg_sel.eq(s_off[3:])]
        # bus reads answer the cycle after: vmem through the core's read port, a scalar
        # register's byte from a register (its read is combinational)
        rd_sreg, rd_lane, sreg_byte = Signal(), Signal(2), Signal(8)
        with m.If(proc.bus_re):
            m.d.sync += [rd_sreg.eq(region_hit(addr, amap["sregs"])), rd_lane.eq(v_off[:2]),
                         sreg_byte.eq(core.sreg_rdata.word_select(s_off[:3], 8))]
        m.d.comb += proc.bus_rdata.eq(Mux(rd_sreg, sreg_byte,
                                          core.host_rdata.word_select(rd_lane, 8)))

        entry = proc.start_args[:8 * P.fields_size(P.MFC_START_FIELDS)]
        m.d.comb += [proc.start_args_ok.eq((proc.start_engine == P.ENGINE_MFC) &
                                           (entry < c.imem_depth)),
                     proc.start_ready.eq(~core.busy),
                     core.start.eq(proc.start), core.entry.eq(entry)]
        return Cat(core.busy, core.done, core.error), core.instructions, \
            [getattr(core, n) for n in MFC_COUNTERS], core.busy


class _Bus:
    """What the engines' bus adapters share: the module, the command processor, the map."""

    def __init__(self, m, proc, amap, wr_region, offset, region_hit):
        self.m, self.proc, self.amap, self.wr_region = m, proc, amap, wr_region
        self.offset, self.region_hit = offset, region_hit


def _widen(value, bits: int):
    """Zero-extend (or cut) ``value`` to exactly ``bits`` bits."""
    value = value.as_value() if hasattr(value, "as_value") else value
    if len(value) >= bits:
        return value[:bits]
    return Cat(value, Const(0, bits - len(value)))


def _any(values):
    out = Const(0, 1)
    for v in values:
        out = out | v
    return out
