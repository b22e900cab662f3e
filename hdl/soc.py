"""The device: link + command processor + a list of engine adapters and their memories.

``Soc(cfg: SocConfig)`` ports:

- ``rx``: stream of bytes from the host (UART PHY on a board, the socket bridge in
  simulation); ``tx``: stream of bytes to the host;
- ``idle``: nothing in flight anywhere (no frame being received or answered, no engine
  busy); the simulator may stop its clock while idle and no byte arrives.
- ``rx_partial``: inside a frame, waiting for more of its bytes (the simulator then
  checks its socket often instead of clocking long batches).
- ``dram`` (only with ``cfg.dram``): the requester side of the DRAM controller's native
  port (:func:`tritium.hdl.dram.port_signature`); the controller is outside the SoC.
  The ``dram`` region of the map reaches it through a :class:`~tritium.hdl.mem.LinkDramPort`,
  engines through :meth:`EngineBus.dram_port`, all behind one round-robin
  :class:`~tritium.hdl.mem.DramArbiter` whose counters COUNTERS reports (prefix
  ``dram_``, between the engines' and the link's); ``idle`` waits for it too
  (docs/memory.md).

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

Each engine's adapter lives beside its engine (``Engine.adapter``: the bare TMV's in
:mod:`tritium.engines.tmv.hdl.adapter`, the token core's in :mod:`tritium.engines.mfc.hdl.adapter`,
the SpGEMM engine's in :mod:`tritium.engines.spgemm.hdl.adapter`); their START fields,
regions and counters are in the engines' descriptions (docs/protocol.md).
"""

from __future__ import annotations

import json

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from tritium import protocol as P
from tritium import registry
from tritium.config import DRAM_REGION, SocConfig

from .adapter import EngineAdapter, EngineBus, _any, _widen
from .dram import port_signature as dram_port_signature
from .mem import DramArbiter, LinkDramPort
from .link.command import CommandProcessor
from .link.deframer import Deframer
from .link.framer import Framer


def adapters(cfg: SocConfig) -> list[EngineAdapter]:
    """One adapter per engine of ``cfg``, in ``cfg.engines`` order: the class its engine's
    description names (``Engine.adapter``, :mod:`tritium.registry`)."""
    return [registry.of(e).hook("adapter")(e, cfg) for e in cfg.engines]


def counter_names(cfg: SocConfig) -> tuple[str, ...]:
    """The COUNTERS answer, in order: each engine's counters, the DRAM port's (a device
    with DRAM), then the link's."""
    return tuple(n for a in adapters(cfg) for n, _ in a.describe()["counters"]) + \
        (P.DRAM_COUNTERS if cfg.dram is not None else ()) + P.LINK_COUNTERS


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
        ports = {"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8)),
                 "idle": Out(1), "rx_partial": Out(1)}
        if cfg.dram is not None:
            ports["dram"] = Out(dram_port_signature(cfg.dram).flip())
        super().__init__(ports)

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
            outs.append(EngineBus(m, proc, amap, start, fields, cfg.dram))
        buses = outs
        outs = [a.elaborate(b) for a, b in zip(engines, buses)]
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
        # ---- the DRAM: the link's port and the engines' behind one arbiter ----------------
        readers = [(_any([probe.hit(n) for n in a.regions()]), o.rdata, o.rvalid)
                   for a, o in zip(engines, outs)]
        dram_busy, dram_counters = Const(0, 1), []
        if cfg.dram is not None:
            region = DRAM_REGION
            r = amap[region]
            ok.append(probe.hit(region, proc.chk_addr) &
                      (probe.offset(region, proc.chk_addr) + proc.chk_len <= r["size"]))
            m.submodules.dram_link = dlink = LinkDramPort(cfg.dram)
            wants = [p for b in buses for p in b.dram_ports]
            m.submodules.dram_arbiter = arb = DramArbiter(cfg.dram, 1 + len(wants))
            hit = probe.hit(region)
            m.d.comb += [dlink.we.eq(proc.bus_we & hit), dlink.re.eq(proc.bus_re & hit),
                         dlink.addr.eq(probe.offset(region)), dlink.wdata.eq(proc.bus_wdata),
                         dlink.invalidate.eq(arb.wrote | proc.bus_rstart), arb.clear.eq(soft),
                         proc.bus_wready.eq(~(proc.bus_we & hit) | dlink.wready),
                         proc.bus_wbusy.eq(dlink.busy | proc.bus_we & hit)]
            wiring.connect(m, dlink.port, arb.r0)
            for k, p in enumerate(wants):
                wiring.connect(m, wiring.flipped(p), getattr(arb, f"r{k + 1}"))
            wiring.connect(m, arb.ctrl, wiring.flipped(self.dram))
            if cfg.dram.word_crc:
                # the CRC command over DRAM: the port's word path, a beat a cycle
                m.d.comb += [proc.wcrc_claim.eq(probe.hit(region, proc.chk_addr)),
                             dlink.crc_start.eq(proc.wcrc_start),
                             dlink.crc_addr.eq(probe.offset(region, proc.chk_addr)),
                             dlink.crc_len.eq(proc.chk_len),
                             proc.wcrc_done.eq(~dlink.crc_busy),
                             proc.wcrc_value.eq(dlink.crc_value)]
            readers.append((hit, dlink.rdata, dlink.rvalid))
            dram_busy = dlink.busy | arb.busy
            dram_counters = [getattr(arb, c) for c in DramArbiter.COUNTERS]
        m.d.comb += proc.chk_ok.eq(_any(ok))

        # ---- bus reads: the engine (or the DRAM) whose region was read answers -----------
        if len(readers) == 1:
            m.d.comb += [proc.bus_rdata.eq(readers[0][1]), proc.bus_rvalid.eq(readers[0][2])]
        else:
            sel = Signal(range(len(readers)))
            with m.If(proc.bus_re):
                for k, (hit_k, _, _) in enumerate(readers):
                    with m.If(hit_k):
                        m.d.sync += sel.eq(k)
            with m.Switch(sel):
                for k, (_, rdata, rvalid) in enumerate(readers):
                    with m.Case(k):
                        m.d.comb += [proc.bus_rdata.eq(rdata), proc.bus_rvalid.eq(rvalid)]

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
        values = [v for o in outs for v in o.counters] + dram_counters + \
            [link[n] for n in P.LINK_COUNTERS]
        m.d.comb += proc.counters.eq(Cat(*[_widen(v, 64) for v in values]))
        busy = _any([o.busy for o in outs]) | dram_busy
        m.d.comb += [self.idle.eq(proc.idle & ~dfr.busy & ~fmr.busy & ~busy &
                                  ~txf.r_rdy & ~rxf.r_rdy),
                     self.rx_partial.eq(dfr.receiving)]
        return m
