"""Memory ports: one read/write interface, two implementations.

An engine reads its weights through :func:`port_signature`, whatever stores them:

- ``w``: write stream ``{addr, data}`` (always ready): the weight load path.
- ``req``: read requests ``{addr, size, tag}``: ``size`` is the bytes the read moves
  (a bandwidth-limited memory is busy ``ceil(size / bytes_per_cycle)`` cycles per request),
  ``tag`` is returned with the data untouched (like an AXI ID), so the requester needs no
  side queue to know what arrived.
- ``resp``: ``{data, tag}`` in request order, ``latency`` cycles after the request was
  accepted; always ready: the requester must have room for every request it makes
  (credits), because an external memory does not wait.

:class:`ExternalMemoryModel` stores the data in ``amaranth.lib.memory`` and adds a
configurable latency and bandwidth, for the cycle model and SoC work; :class:`BlockRAM`
is its latency-1, full-bandwidth case, which elaborates to a bare block-RAM read port.
Both store data the same way, so results are identical and only timing differs. A read
at an address >= depth returns unspecified data; a requester must not use it (the TMV
flags such a read as an error).

Every memory and index here is at least one bit wide (:func:`memory_depth`,
:func:`index_shape`): Amaranth gives a one-entry memory or a one-value index a zero-width
signal, which yosys writes as ``wire [-1:0]`` and Verilator rejects (ASCRANGE).
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2


def memory_depth(depth: int) -> int:
    """Entries to build for a memory of ``depth`` (>= 1) usable entries: at least two, so
    its address is at least one bit wide; the spare entry of a one-entry memory is never
    addressed by a valid request."""
    return max(2, depth)


def index_shape(n: int):
    """Unsigned shape of an index 0..n-1 (n >= 1), at least one bit wide."""
    return unsigned(max(1, ceil_log2(n)))


def port_signature(*, depth: int, width: int, tag_shape, max_size: int) -> wiring.Signature:
    """The memory's side of a port (the requester uses ``.flip()``)."""
    abits = index_shape(depth)
    return wiring.Signature({
        "w": In(stream.Signature(data.StructLayout({"addr": abits, "data": width}),
                                 always_ready=True)),
        "req": In(stream.Signature(data.StructLayout({
            "addr": abits, "size": range(max_size + 1), "tag": tag_shape}))),
        "resp": Out(stream.Signature(data.StructLayout({"data": width, "tag": tag_shape}),
                                     always_ready=True)),
    })


class ExternalMemoryModel(wiring.Component):
    """External weight memory: ``latency`` cycles (>= 1) from request to data, and
    ``bytes_per_cycle`` of bandwidth (0 = unlimited): after accepting a request of ``size``
    bytes the port is not ready for ``ceil(size / bytes_per_cycle) - 1`` cycles."""

    def __init__(self, *, depth: int, width: int, tag_shape, max_size: int, latency: int,
                 bytes_per_cycle: int):
        if latency < 1:
            raise ValueError("memory latency is at least 1 cycle")
        self.depth, self.width = depth, width
        self.latency, self.bytes_per_cycle = latency, bytes_per_cycle
        self.max_size = max_size
        super().__init__(port_signature(depth=depth, width=width, tag_shape=tag_shape,
                                        max_size=max_size))

    def elaborate(self, platform):
        m = Module()
        m.submodules.store = store = memory.Memory(
            shape=self.width, depth=memory_depth(self.depth), init=[])
        wr, rd = store.write_port(), store.read_port()
        m.d.comb += [wr.addr.eq(self.w.payload.addr), wr.data.eq(self.w.payload.data),
                     wr.en.eq(self.w.valid)]
        take = self.req.valid & self.req.ready
        m.d.comb += rd.addr.eq(self.req.payload.addr)

        if self.bytes_per_cycle:
            bw = self.bytes_per_cycle
            # bytes of the current transfer still to move after this cycle
            left = Signal(range(self.max_size + 1))
            m.d.comb += self.req.ready.eq(~left.any())  # not `== 0`: lint-clean Verilog
            with m.If(take):
                size = self.req.payload.size
                m.d.sync += left.eq(mux_sat_sub(size, bw))
            with m.Elif(left != 0):
                m.d.sync += left.eq(mux_sat_sub(left, bw))
        else:
            m.d.comb += self.req.ready.eq(1)

        # the read port is stage 1; the remaining latency is a plain delay line
        valid, tag, dat = Signal(), Signal.like(self.req.payload.tag), rd.data
        m.d.sync += [valid.eq(take), tag.eq(self.req.payload.tag)]
        for k in range(self.latency - 1):
            v2 = Signal(name=f"valid_d{k}")
            t2 = Signal.like(tag, name=f"tag_d{k}")
            d2 = Signal(self.width, name=f"data_d{k}")
            m.d.sync += [v2.eq(valid), t2.eq(tag), d2.eq(dat)]
            valid, tag, dat = v2, t2, d2
        m.d.comb += [self.resp.valid.eq(valid), self.resp.payload.tag.eq(tag),
                     self.resp.payload.data.eq(dat)]
        return m


class BlockRAM(ExternalMemoryModel):
    """On-chip weight memory: a request every cycle, data 1 cycle after it (the read
    port's own register; no delay line, no bandwidth counter)."""

    def __init__(self, *, depth: int, width: int, tag_shape, max_size: int):
        super().__init__(depth=depth, width=width, tag_shape=tag_shape, max_size=max_size,
                         latency=1, bytes_per_cycle=0)


def mux_sat_sub(a, b: int):
    """``max(a - b, 0)`` for an unsigned ``a`` and a constant ``b``."""
    return Mux(a > b, a - b, 0)

