"""What an engine adapter is: the interface between the SoC and one engine.

:class:`EngineAdapter` is what every engine's adapter implements (its START id and field
layout, its regions, counters and ``elaborate``); :class:`EngineBus` is the command
processor's side as an adapter sees it; :class:`EngineOut` is what ``elaborate``
returns. :mod:`tritium.hdl.soc` builds the SoC from a list of them, one per engine
config, each adapter class named by its engine's description (``Engine.adapter``,
:mod:`tritium.registry`). No engine names here, so adapters and the SoC both import
downwards.
"""

from __future__ import annotations

import dataclasses

from amaranth import Cat, Const, Module, Signal
from amaranth.utils import exact_log2

from tritium import registry
from tritium.config import SocConfig, pow2_ceil

from .link.command import CommandProcessor
from .link.deframer import CRC32


@dataclasses.dataclass
class EngineOut:
    """What an adapter's ``elaborate`` returns.

    ``flags``: STATUS flag bits {busy, done, error}; ``beats``: STATUS ``result_beats``;
    ``counters``: one value per :attr:`EngineAdapter.counters` entry; ``busy``: work in
    flight (the SoC is not idle); ``locks``: the engine holds its memories (every bus
    access is refused); ``args_ok``/``ready``: START arguments in range / engine free,
    evaluated for this engine's id; ``rdata``/``rvalid``: the byte read from one of the
    engine's regions and its valid strobe (some cycle after ``bus_re``);
    ``weight_crc``/``weight_lines``: STATUS fields of an engine with a weight region.
    """

    flags: object
    beats: object
    counters: list
    busy: object
    locks: object
    args_ok: object
    ready: object
    rdata: object
    rvalid: object
    weight_crc: object = None
    weight_lines: object = None


class EngineBus:
    """The command processor's side as an adapter sees it: the byte bus, the map, the
    START strobe (``start``: a START for this engine was accepted, one cycle) and its
    argument fields (``fields``: name -> the argument bytes' slice), the soft reset."""

    def __init__(self, m: Module, proc: CommandProcessor, amap: dict, start, fields: dict,
                 dram=None):
        self.m, self.proc, self.amap, self.start, self.fields = m, proc, amap, start, fields
        self.soft = proc.soft_reset
        self.addr, self.wdata = proc.bus_addr, proc.bus_wdata
        #: the SoC's DramConfig (None: the device has no DRAM)
        self.dram = dram
        #: the DRAM requester ports handed out by :meth:`dram_port`, in order
        self.dram_ports: list = []

    def dram_port(self):
        """A port on the SoC's DRAM, as a controller's side
        (:func:`tritium.hdl.dram.port_signature`): connect the engine's requester to it
        (``wiring.connect(m, requester, bus.dram_port())``). The SoC's arbiter shares it with
        the link and the other engines (docs/memory.md); addresses are beats from the
        start of the DRAM. Raises ConfigError on a device without DRAM."""
        from tritium.errors import ConfigError

        from .dram import port_signature

        if self.dram is None:
            raise ConfigError("this engine reads DRAM but the SoC has none; set "
                              "SocConfig.dram (e.g. `tritium serve --dram ideal`)")
        port = port_signature(self.dram).create(
            path=("dram_req", str(len(self.dram_ports))))
        self.dram_ports.append(port)
        return port

    @staticmethod
    def span(r) -> int:
        return pow2_ceil(r["size"])

    def hit(self, name: str, addr=None):
        r = self.amap[name]
        addr = self.addr if addr is None else addr
        return (addr >> exact_log2(self.span(r))) == (r["base"] >> exact_log2(self.span(r)))

    def offset(self, name: str, addr=None):
        r = self.amap[name]
        addr = self.addr if addr is None else addr
        return addr[:exact_log2(self.span(r))] if self.span(r) > 1 else Const(0, 1)

    def written(self, name: str):
        """A byte is written into region ``name`` this cycle."""
        return self.proc.bus_we & self.hit(name)

    def read_next_cycle(self):
        """``bus_rvalid`` of a region read through block RAM: the cycle after ``bus_re``."""
        rvalid = Signal()
        self.m.d.sync += rvalid.eq(self.proc.bus_re)
        return rvalid

    def assemble(self, region: str, stride: int, nbytes: int, commit, port_addr, port_data):
        """Little-endian bytes of ``nbytes``-byte words (``stride`` bytes of address each)
        collect in a register; writing byte ``nbytes - 1`` drives ``commit`` high for a
        cycle with the word's index and data (bytes past ``nbytes`` are ignored)."""
        m, off = self.m, self.offset(region)
        lo = exact_log2(stride)
        lane = off[:lo] if lo else Const(0, 1)
        held = Signal(8 * max(1, nbytes - 1), name=f"{region}_held")
        m.d.sync += commit.eq(0)
        with m.If(self.written(region)):
            with m.If(lane == nbytes - 1):
                m.d.sync += [commit.eq(1), port_addr.eq(off[lo:]),
                             port_data.eq(Cat(held[:8 * (nbytes - 1)], self.wdata))]
            with m.Elif(lane < nbytes - 1):
                m.d.sync += held.word_select(lane[:max(1, exact_log2(pow2_ceil(nbytes)))],
                                             8).eq(self.wdata)

    def weights(self, line_bytes: int, line_stride: int, wload):
        """The ``weights`` region: byte writes assemble lines into ``wload`` (always ready,
        :class:`~tritium.engines.tmv.hdl.matvec.TernaryMatVec` contract); a CRC-32 over every
        byte written there. Returns (crc, lines committed)."""
        m, soft = self.m, self.soft
        wr = self.written("weights")
        stride_bits = exact_log2(line_stride)
        off = self.offset("weights")
        line_reg = Signal(8 * line_bytes)
        byte_in_line = off[:stride_bits] if stride_bits else Const(0, 1)
        line_no = off[stride_bits:]
        m.submodules.wcrc = wcrc = CRC32(data_width=8).create()
        weight_lines = Signal(32)
        m.d.comb += [wcrc.data.eq(self.wdata), wcrc.valid.eq(wr), wcrc.start.eq(soft)]
        m.d.sync += wload.valid.eq(0)
        with m.If(wr & (byte_in_line < line_bytes)):
            m.d.sync += line_reg.word_select(byte_in_line, 8).eq(self.wdata)
            with m.If(byte_in_line == line_bytes - 1):
                m.d.sync += [wload.valid.eq(1), wload.payload.addr.eq(line_no),
                             wload.payload.data.eq(
                                 Cat(line_reg[:8 * (line_bytes - 1)], self.wdata)),
                             weight_lines.eq(weight_lines + 1)]
        with m.If(soft):
            m.d.sync += weight_lines.eq(0)
        return wcrc.crc, weight_lines


class EngineAdapter:
    """One engine on the SoC. Subclasses implement :meth:`elaborate`; ``cfg`` is the
    engine's config, ``soc`` the SoC's, ``spec`` the engine's description
    (:class:`tritium.engine.Engine`), which gives the name (INFO key, counter prefix),
    the START id and field layout, the regions (the config's ``soc_regions()``) and the
    counters (``EngineOut.counters`` holds one value per counter, in that order)."""

    def __init__(self, cfg, soc: SocConfig):
        self.cfg, self.soc = cfg, soc
        self.spec = registry.of(cfg)
        self.name, self.start_id = self.spec.name, self.spec.start_id
        self.start_fields = self.spec.start_fields

    def regions(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.spec.regions(self.cfg))

    def counters(self) -> tuple[tuple[str, int], ...]:
        """(name, bits) of the engine's counters, in COUNTERS order, unprefixed."""
        return self.spec.counter_widths(self.cfg)

    def elaborate(self, bus: EngineBus) -> EngineOut:
        raise NotImplementedError

    def describe(self) -> dict:
        """This engine's INFO entry."""
        return self.spec.describe(self.cfg)


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
