"""Framer: response header + payload bytes in, a framed byte stream with CRC-32 out.

Ports:

- ``hdr``: stream ``{seq, cmd, length}``: starts a frame.
- ``payload``: stream of exactly ``length`` bytes for that frame.
- ``o``: stream of frame bytes to the PHY: SOF, seq, cmd, length (LE), payload, CRC-32 (LE).
- ``busy``: a frame is being sent.

Throughput: one byte per cycle when ``o`` and ``payload`` allow it; 9 bytes of overhead
per frame.
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from tritium.protocol import SOF

from .deframer import CRC32


def header_layout() -> data.StructLayout:
    return data.StructLayout({"seq": 8, "cmd": 8, "length": 16})


class Framer(wiring.Component):
    def __init__(self):
        super().__init__({"hdr": In(stream.Signature(header_layout())),
                          "payload": In(stream.Signature(8)),
                          "o": Out(stream.Signature(8)), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = gen = CRC32(data_width=8).create()
        h = Signal(header_layout())
        count = Signal(16)
        sent = self.o.valid & self.o.ready
        m.d.comb += gen.data.eq(self.o.payload)

        def emit(value, nxt, feed_crc=True):
            m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(value),
                         gen.valid.eq(sent & feed_crc)]
            with m.If(sent):
                m.next = nxt

        with m.FSM(name="framer") as fsm:
            with m.State("IDLE"):
                m.d.comb += self.hdr.ready.eq(1)
                with m.If(self.hdr.valid):
                    m.d.sync += h.eq(self.hdr.payload)
                    m.d.comb += gen.start.eq(1)
                    m.next = "SOF"
            with m.State("SOF"):
                emit(SOF, "SEQ", feed_crc=False)
            with m.State("SEQ"):
                emit(h.seq, "CMD")
            with m.State("CMD"):
                emit(h.cmd, "LEN0")
            with m.State("LEN0"):
                emit(h.length[:8], "LEN1")
            with m.State("LEN1"):
                m.d.sync += count.eq(0)
                emit(h.length[8:], "PAYLOAD")
                with m.If(sent & (h.length == 0)):
                    m.next = "CRC0"
            with m.State("PAYLOAD"):
                m.d.comb += [self.o.valid.eq(self.payload.valid),
                             self.o.payload.eq(self.payload.payload),
                             self.payload.ready.eq(self.o.ready), gen.valid.eq(sent)]
                with m.If(sent):
                    m.d.sync += count.eq(count + 1)
                    with m.If(count + 1 == h.length):
                        m.next = "CRC0"
            for k in range(4):
                with m.State(f"CRC{k}"):
                    emit(gen.crc[8 * k:8 * k + 8], f"CRC{k + 1}" if k < 3 else "IDLE",
                         feed_crc=False)
            m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
        return m
