"""CommandProcessor: executes CRC-checked frames and produces the responses.

It sits between the :class:`~tritium.hdl.link.deframer.Deframer` (frame header + frame
buffer read port) and the :class:`~tritium.hdl.link.framer.Framer` (response header +
payload bytes), and talks to the rest of the device through:

- a byte bus: ``bus_addr``, ``bus_wdata``, ``bus_we``, ``bus_re`` (a one-cycle pulse per
  byte read); ``bus_rdata`` is taken in the first cycle after ``bus_re`` in which
  ``bus_rvalid`` is high (a block-RAM region answers the next cycle; a region behind a
  stream, such as the SpGEMM engine's C read-back, answers when its word arrives, and
  must answer: the processor waits for it); ``bus_wready`` low holds a write (the bus
  takes it in a later cycle: a DRAM's write queue is full), and a WRITE is acknowledged
  only once ``bus_wbusy`` (written bytes not yet in memory) is low; ``bus_rstart`` pulses
  as a READ or CRC begins (a read-ahead buffer drops what it holds, so every read
  command sees memory as it is then). Before touching it, the processor presents an access as
  ``chk_addr``/``chk_len``/``chk_write`` and the device answers ``chk_ok`` (same cycle)
  if that byte range lies in one region with that access right;
- a word-wide CRC unit (the DRAM's: :class:`~tritium.hdl.mem.LinkDramPort`):
  ``wcrc_claim`` (same cycle, beside ``chk_ok``) says the range ``chk_addr``/``chk_len``
  is the unit's; a CRC command then pulses ``wcrc_start`` (with ``bus_rstart``) instead
  of reading the bus, waits for ``wcrc_done`` (read from the cycle after the pulse:
  the unit has finished) and answers ``wcrc_value``;
- an engine start port: ``start`` (one-cycle pulse) with ``start_args`` (the START
  payload after the engine byte, 15 bytes, zero-padded), ``start_engine``; the device
  answers ``start_ready`` (idle engine) and ``start_args_ok`` (arguments in range);
- ``status``: the STATUS payload bytes; ``counters``: the COUNTERS payload (8 bytes per
  counter, little-endian), both wired by the device;
- ``soft_reset``: one-cycle pulse for RESET (engines, counters, CRCs, the link's
  counters; not ``last_seq``, which must survive for a repeated RESET to be recognised);
- ``last_seq``/``have_last``: the last executed sequence number (reported in STATUS, so
  a host that connects anew can start from a fresh one).

Commands (docs/protocol.md): INFO returns the ``info`` bytes given at construction (the
device's JSON description), all of them or, with ``INFO_CHUNK_FIELDS`` as payload, the
chunk of at most ``min(length, max_payload)`` bytes from ``offset`` (empty past the end);
WRITE/READ move bytes over the bus (WRITE runs at one byte
per cycle, after the whole frame's CRC has been checked, so a corrupted frame can never
write anything); CRC reads ``length`` bytes from ``addr`` over the bus (one byte a
cycle when the bus answers the next cycle: each ``bus_re`` after the first comes in the
cycle ``bus_rvalid`` answers the one before, so a region must take a read in that cycle;
the range is checked as a READ's; a range the word-wide unit claims is read by it
instead, a beat a cycle) and answers their CRC-32; START, STATUS, COUNTERS, RESET as named. Errors answer NAK with a
reason and execute nothing. A repeated sequence number of WRITE/START/RESET is
acknowledged without executing again; the device remembers the last executed one.
"""

from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from tritium import protocol as P

from .deframer import COUNTER_BITS, CRC32, frame_layout
from .framer import header_layout

ARG_BYTES = 16


class CommandProcessor(wiring.Component):
    def __init__(self, *, max_payload: int, info: bytes, status_bytes: int,
                 counter_count: int):
        self.max_payload = max_payload
        self.info = bytes(info)
        self.status_bytes = status_bytes
        self.counter_count = counter_count
        super().__init__({
            "frame": In(frame_layout()), "frame_valid": In(1), "release": Out(1),
            "buf_raddr": Out(range(max_payload)), "buf_rdata": In(8),
            "hdr": Out(stream.Signature(header_layout())),
            "payload": Out(stream.Signature(8)),
            "bus_addr": Out(32), "bus_wdata": Out(8), "bus_we": Out(1), "bus_re": Out(1),
            "bus_rdata": In(8), "bus_rvalid": In(1),
            "bus_wready": In(1, init=1), "bus_wbusy": In(1), "bus_rstart": Out(1),
            "chk_addr": Out(32), "chk_len": Out(33), "chk_write": Out(1), "chk_ok": In(1),
            "wcrc_claim": In(1), "wcrc_start": Out(1), "wcrc_done": In(1),
            "wcrc_value": In(32),
            "start": Out(1), "start_engine": Out(8), "start_args": Out(8 * (ARG_BYTES - 1)),
            "start_ready": In(1), "start_args_ok": In(1),
            "status": In(8 * status_bytes), "counters": In(64 * counter_count),
            "soft_reset": Out(1), "idle": Out(1),
            "last_seq": Out(8), "have_last": Out(1),
            "naks": Out(COUNTER_BITS), "duplicates": Out(COUNTER_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        f = self.frame
        args = Array(Signal(8, name=f"arg{k}") for k in range(ARG_BYTES))
        u32 = lambda k: Cat(args[k], args[k + 1], args[k + 2], args[k + 3])  # noqa: E731
        seq, cmd, length = Signal(8), Signal(8), Signal(16)
        last_seq, have_last = self.last_seq, self.have_last
        duplicate = have_last & (seq == last_seq)
        reason = Signal(8)
        k = Signal(33)           # byte index within the current loop
        n = Signal(33)           # loop length (a CRC's reaches 2**32 - 1)
        addr = Signal(32)
        resp_cmd, resp_len = Signal(8), Signal(16)

        m.submodules.info = info = memory.Memory(shape=8, depth=max(1, len(self.info)),
                                                 init=list(self.info) or [0])
        info_rd = info.read_port()

        # payload sources of the byte pump
        SRC_INFO, SRC_BUS, SRC_STATUS, SRC_COUNTERS, SRC_REASON, SRC_CRC = range(6)
        src = Signal(range(6))
        # the CRC command's: CRC-32 of the bytes read back
        m.submodules.readback_crc = rcrc = CRC32(data_width=8).create()
        wide = Signal()          # the CRC being answered is the word-wide unit's
        crc = Mux(wide, self.wcrc_value, rcrc.crc)
        crc_bytes = Array(crc[8 * j:8 * j + 8] for j in range(P.CRC_ANSWER_BYTES))
        status = Array(self.status[8 * j:8 * j + 8] for j in range(self.status_bytes))
        counters = Array(self.counters[8 * j:8 * j + 8] for j in range(8 * self.counter_count))
        out = Signal(8)

        m.d.comb += [
            self.chk_addr.eq(u32(0)), self.start_engine.eq(args[0]),
            self.start_args.eq(Cat(*[args[j] for j in range(1, ARG_BYTES)])),
            self.hdr.payload.seq.eq(seq), self.hdr.payload.cmd.eq(resp_cmd),
            self.hdr.payload.length.eq(resp_len), self.payload.payload.eq(out),
            info_rd.addr.eq(addr + k), self.bus_addr.eq(addr + k),
            self.bus_wdata.eq(self.buf_rdata),
        ]

        def respond(code, length, source=SRC_REASON):
            m.d.sync += [resp_cmd.eq(code), resp_len.eq(length), src.eq(source), k.eq(0),
                         n.eq(length)]
            m.next = "HEADER"

        def nak(why):
            m.d.sync += [reason.eq(why), self.naks.eq(self.naks + 1)]
            respond(P.NAK, 1)

        def ack(extra=()):
            m.d.sync += [last_seq.eq(seq), have_last.eq(1), *extra]
            respond(cmd | P.ACK_BIT, 0)

        with m.FSM(name="command") as fsm:
            with m.State("IDLE"):
                with m.If(self.frame_valid):
                    m.d.sync += [seq.eq(f.seq), cmd.eq(f.cmd), length.eq(f.length), k.eq(0)]
                    with m.If(~f.crc_ok):
                        m.next = "BADCRC"
                    with m.Else():
                        m.next = "ARGS"
            with m.State("BADCRC"):
                nak(P.NAK_CRC)
            with m.State("ARGS"):
                # buffer reads have one cycle of latency: address k, capture byte k-1
                m.d.comb += self.buf_raddr.eq(k)
                m.d.sync += k.eq(k + 1)
                with m.If(k > 0):
                    m.d.sync += args[k - 1].eq(Mux(k - 1 < length, self.buf_rdata, 0))
                with m.If(k == ARG_BYTES):
                    m.next = "DISPATCH"
            with m.State("DISPATCH"):
                m.d.comb += [self.chk_len.eq(Mux(cmd == P.READ, Cat(args[4], args[5]),
                                                 Mux(cmd == P.CRC, u32(4),
                                                     length - P.ADDR_BYTES))),
                             self.chk_write.eq(cmd == P.WRITE)]
                with m.Switch(cmd):
                    with m.Case(P.INFO):
                        total = len(self.info)
                        with m.If(length == 0):
                            m.d.sync += addr.eq(0)
                            respond(P.INFO | P.ACK_BIT, total, SRC_INFO)
                        with m.Elif(length == P.fields_size(P.INFO_CHUNK_FIELDS)):
                            # a chunk, so a noisy line need not carry the whole answer in
                            # one frame: the bytes from `offset` that exist, at most `length`
                            # and at most max_payload (a host that does not know it yet
                            # reads on until an empty chunk)
                            off, want = Cat(args[0], args[1]), Cat(args[2], args[3])
                            left = Mux(off < total, total - off, 0)
                            want = Mux(want < self.max_payload, want, self.max_payload)
                            m.d.sync += addr.eq(off)
                            respond(P.INFO | P.ACK_BIT, Mux(want < left, want, left), SRC_INFO)
                        with m.Else():
                            nak(P.NAK_LENGTH)
                    with m.Case(P.WRITE):
                        with m.If(length < P.ADDR_BYTES):
                            nak(P.NAK_LENGTH)
                        with m.Elif(~self.chk_ok):
                            nak(P.NAK_ADDRESS)
                        with m.Elif(duplicate):
                            m.d.sync += self.duplicates.eq(self.duplicates + 1)
                            ack()
                        with m.Else():
                            m.d.sync += [addr.eq(u32(0)), k.eq(0),
                                         n.eq(length - P.ADDR_BYTES)]
                            m.next = "WRITE"
                    with m.Case(P.READ):
                        rlen = Cat(args[4], args[5])
                        # no read is too long for a max_payload the length field cannot
                        # exceed (and a constant comparison is a lint warning)
                        too_long = (rlen > self.max_payload
                                    if self.max_payload < (1 << len(rlen)) - 1 else Const(0))
                        with m.If((length != P.ADDR_BYTES + 2) | too_long):
                            nak(P.NAK_LENGTH)
                        with m.Elif(~self.chk_ok):
                            nak(P.NAK_ADDRESS)
                        with m.Else():
                            m.d.comb += self.bus_rstart.eq(1)
                            m.d.sync += addr.eq(u32(0))
                            respond(P.READ | P.ACK_BIT, rlen, SRC_BUS)
                    with m.Case(P.START):
                        with m.If(length < 1):
                            nak(P.NAK_LENGTH)
                        with m.Elif(duplicate):
                            m.d.sync += self.duplicates.eq(self.duplicates + 1)
                            ack()
                        with m.Elif(~self.start_args_ok):
                            nak(P.NAK_ARGUMENT)
                        with m.Elif(~self.start_ready):
                            nak(P.NAK_BUSY)
                        with m.Else():
                            m.d.comb += self.start.eq(1)
                            ack()
                    with m.Case(P.CRC):
                        with m.If(length != P.fields_size(P.CRC_FIELDS)):
                            nak(P.NAK_LENGTH)
                        with m.Elif(~self.chk_ok):
                            nak(P.NAK_ADDRESS)
                        with m.Elif(self.wcrc_claim):
                            m.d.comb += [self.wcrc_start.eq(1), self.bus_rstart.eq(1)]
                            m.d.sync += wide.eq(1)
                            m.next = "CRC_WORDS"
                        with m.Else():
                            m.d.comb += [rcrc.start.eq(1), self.bus_rstart.eq(1)]
                            m.d.sync += [addr.eq(u32(0)), k.eq(0), n.eq(u32(4)), wide.eq(0)]
                            m.next = "CRC_FETCH"
                    with m.Case(P.STATUS):
                        respond(P.STATUS | P.ACK_BIT, self.status_bytes, SRC_STATUS)
                    with m.Case(P.COUNTERS):
                        respond(P.COUNTERS | P.ACK_BIT, 8 * self.counter_count, SRC_COUNTERS)
                    with m.Case(P.RESET):
                        with m.If(duplicate):
                            m.d.sync += self.duplicates.eq(self.duplicates + 1)
                        with m.Else():
                            # the link counters restart with everything else
                            m.d.comb += self.soft_reset.eq(1)
                            m.d.sync += [self.naks.eq(0), self.duplicates.eq(0)]
                        ack()
                    with m.Default():
                        nak(P.NAK_COMMAND)
            with m.State("WRITE"):
                # buffer byte 4+k is read this cycle and written over the bus the next; a
                # write the bus does not take (bus_wready low) is held: its byte is read
                # again, and k stays
                held = self.bus_we & ~self.bus_wready
                m.d.comb += self.buf_raddr.eq(k + P.ADDR_BYTES - held)
                with m.If(~held):
                    m.d.sync += k.eq(k + 1)
                with m.If(k > 0):
                    m.d.comb += [self.bus_we.eq(1), self.bus_addr.eq(addr + k - 1)]
                with m.If((k == n) & ~held):
                    with m.If(self.bus_wbusy):
                        m.next = "WFLUSH"
                    with m.Else():
                        ack()
            with m.State("WFLUSH"):
                # the bus still holds written bytes (a DRAM's write queue): acknowledge
                # only once they are in memory, so whatever the host sends next sees them
                with m.If(~self.bus_wbusy):
                    ack()
            # CRC: read byte k over the bus (as READ does), feed it to the CRC, next
            with m.State("CRC_FETCH"):
                with m.If(k == n):
                    m.next = "CRC_DONE"
                with m.Else():
                    m.d.comb += self.bus_re.eq(1)
                    m.next = "CRC_LATCH"
            with m.State("CRC_LATCH"):
                with m.If(self.bus_rvalid):
                    m.d.comb += [rcrc.valid.eq(1), rcrc.data.eq(self.bus_rdata)]
                    m.d.sync += k.eq(k + 1)
                    # the next byte is asked for as this one is taken: a byte a cycle
                    # from a region that answers the next cycle
                    with m.If(k + 1 < n):
                        m.d.comb += [self.bus_re.eq(1), self.bus_addr.eq(addr + k + 1)]
                    with m.Else():
                        m.next = "CRC_DONE"
            with m.State("CRC_WORDS"):
                with m.If(self.wcrc_done):
                    m.next = "CRC_DONE"
            with m.State("CRC_DONE"):
                respond(P.CRC | P.ACK_BIT, P.CRC_ANSWER_BYTES, SRC_CRC)
            with m.State("HEADER"):
                m.d.comb += self.hdr.valid.eq(1)
                with m.If(self.hdr.ready):
                    with m.If(n == 0):
                        m.next = "DONE"
                    with m.Else():
                        m.next = "FETCH"
            with m.State("FETCH"):  # ask the source for byte k (ROM: 1 cycle; bus: rvalid)
                m.d.comb += self.bus_re.eq(src == SRC_BUS)
                m.next = "LATCH"
            with m.State("LATCH"):
                with m.If((src != SRC_BUS) | self.bus_rvalid):
                    m.next = "PUSH"
                with m.Switch(src):
                    with m.Case(SRC_INFO):
                        m.d.sync += out.eq(info_rd.data)
                    with m.Case(SRC_BUS):
                        m.d.sync += out.eq(self.bus_rdata)
                    with m.Case(SRC_STATUS):
                        m.d.sync += out.eq(status[k])
                    with m.Case(SRC_COUNTERS):
                        m.d.sync += out.eq(counters[k])
                    with m.Case(SRC_CRC):
                        m.d.sync += out.eq(crc_bytes[k[:2]])
                    with m.Default():
                        m.d.sync += out.eq(reason)
            with m.State("PUSH"):
                m.d.comb += self.payload.valid.eq(1)
                with m.If(self.payload.ready):
                    m.d.sync += k.eq(k + 1)
                    with m.If(k + 1 == n):
                        m.next = "DONE"
                    with m.Else():
                        m.next = "FETCH"
            with m.State("DONE"):
                m.d.comb += self.release.eq(1)
                m.next = "IDLE"
            m.d.comb += self.idle.eq(fsm.ongoing("IDLE") & ~self.frame_valid)
        return m
