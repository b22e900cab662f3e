"""The tritium link protocol, version 2: frames, commands, and their Python codec.

One definition for both ends: the hardware (``tritium.hdl.link``) takes its constants
from here, the host driver encodes and decodes with the functions below. The normative
description is docs/protocol.md.

Frame (both directions)::

    SOF  seq  cmd  len_lo len_hi  payload[len]  crc0 crc1 crc2 crc3
    0xA5 u8   u8   u16 little-endian            CRC-32 (IEEE 802.3 / zlib) of seq..payload, LE

A response echoes the request's ``seq``; its ``cmd`` is the request's command with bit 7
set (ACK), or ``NAK`` with a one-byte reason as payload.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass

VERSION = 2
SOF = 0xA5
HEADER_BYTES = 4          # seq, cmd, len (2)
CRC_BYTES = 4
OVERHEAD = 1 + HEADER_BYTES + CRC_BYTES
ACK_BIT = 0x80

class Command(enum.IntEnum):
    """The frame's ``cmd`` byte of a request; an answer sets :data:`ACK_BIT`, or is NAK."""

    INFO = 0x01
    WRITE = 0x02
    READ = 0x03
    START = 0x04
    STATUS = 0x05
    COUNTERS = 0x06
    RESET = 0x07
    CRC = 0x08
    NAK = 0xFF


# the codes as plain ints, for the hardware's constants (and the shorter name)
INFO, WRITE, READ, START = Command.INFO.value, Command.WRITE.value, Command.READ.value, \
    Command.START.value
STATUS, COUNTERS, RESET = Command.STATUS.value, Command.COUNTERS.value, Command.RESET.value
CRC = Command.CRC.value
NAK = Command.NAK.value
COMMAND_NAMES = {c.value: c.name for c in Command if c is not Command.NAK}
#: commands that change device state: a repeated sequence number is acknowledged, not re-run
NOT_IDEMPOTENT = (WRITE, START, RESET)

#: The seq byte is split in two. State-changing requests (NOT_IDEMPOTENT) are numbered
#: 0..SEQ_SPAN-1, one after another; only they move the device's ``last_seq``. Idempotent
#: requests carry a tag SEQ_SPAN..255 of their own, which matches answers to requests and
#: does not advance the state-changing numbers, so no number of STATUS polls between two
#: WRITEs can make the second one look like a repeat of the first (docs/protocol.md).
SEQ_SPAN = 128


def next_seq(seq: int) -> int:
    """The state-changing number after ``seq`` (any byte): never equal to ``seq``."""
    return (seq + 1) % SEQ_SPAN


def next_tag(tag: int) -> int:
    """The idempotent tag after ``tag``, in SEQ_SPAN..255."""
    return SEQ_SPAN + (tag + 1 - SEQ_SPAN) % (256 - SEQ_SPAN)

class Nak(enum.IntEnum):
    """A NAK's one payload byte: why nothing ran. ``HOST_BUSY`` is not from the RTL: the
    simulated device's server sends it (seq 0) to a second host before disconnecting it."""

    CRC = 1
    COMMAND = 2
    LENGTH = 3
    ADDRESS = 4
    BUSY = 5
    ARGUMENT = 6
    HOST_BUSY = 7


NAK_CRC, NAK_COMMAND, NAK_LENGTH, NAK_ADDRESS = Nak.CRC.value, Nak.COMMAND.value, \
    Nak.LENGTH.value, Nak.ADDRESS.value
NAK_BUSY, NAK_ARGUMENT, NAK_HOST_BUSY = Nak.BUSY.value, Nak.ARGUMENT.value, \
    Nak.HOST_BUSY.value
#: what each NAK reason means (the driver's messages, docs/protocol.md's table)
NAK_NAMES = {Nak.CRC: "bad CRC", Nak.COMMAND: "unknown command", Nak.LENGTH: "bad length",
             Nak.ADDRESS: "address out of range", Nak.BUSY: "engine busy",
             Nak.ARGUMENT: "engine argument out of range",
             Nak.HOST_BUSY: "another host is connected"}

# STATUS flags (first payload byte)
STATUS_BUSY, STATUS_DONE, STATUS_ENGINE_ERROR = 0x01, 0x02, 0x04

#: STATUS payload: (field, bytes), little-endian, in order
STATUS_FIELDS = (("flags", 1), ("result_beats", 4), ("weight_crc", 4), ("weight_lines", 4),
                 ("last_seq", 1), ("have_last", 1))
#: CRC request payload: the device reads ``length`` bytes from ``addr`` back over its bus
#: (a readable range of one region) and answers their CRC-32 (:func:`crc32`) as a u32
CRC_FIELDS = (("addr", 4), ("length", 4))
CRC_ANSWER_BYTES = 4
#: a ceiling on the device cycles the CRC command takes a byte read over the byte bus (a
#: request and its answer: one cycle where the region answers the next cycle); a DRAM
#: range's word path costs less (tritium.dram.DramConfig.crc_cycles)
CRC_BYTE_CYCLES = 2
#: INFO request payload for one chunk of the answer (no payload: the whole answer)
INFO_CHUNK_FIELDS = (("offset", 2), ("length", 2))
#: START payload: the engine byte (its START id), then that engine's fields
#: (tritium.engine.Engine.start_fields, as INFO reports them)
#: counters the link itself keeps (the engines' follow, named in INFO)
#: counters of the DRAM port, on a device with DRAM (between the engines' and the link's)
DRAM_COUNTERS = ("dram_bytes_read", "dram_bytes_written", "dram_busy_cycles",
                 "dram_stall_cycles")
DRAM_COUNTER_BITS = 48
LINK_COUNTERS = ("frames", "crc_errors", "timeouts", "oversize", "naks", "duplicates", "cycles")


def pack_fields(fields, values: dict) -> bytes:
    return b"".join(int(values[name]).to_bytes(size, "little") for name, size in fields)


def unpack_fields(fields, data: bytes) -> dict:
    out, pos = {}, 0
    for name, size in fields:
        out[name] = int.from_bytes(data[pos:pos + size], "little")
        pos += size
    return out


def fields_size(fields) -> int:
    return sum(size for _, size in fields)

#: WRITE/READ payload header: u32 address (+ u16 length for READ)
ADDR_BYTES = 4


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def encode(seq: int, cmd: int, payload: bytes = b"") -> bytes:
    """One frame."""
    body = struct.pack("<BBH", seq & 0xFF, cmd, len(payload)) + bytes(payload)
    return bytes([SOF]) + body + struct.pack("<I", crc32(body))


@dataclass(frozen=True)
class Frame:
    seq: int
    cmd: int
    payload: bytes

    @property
    def is_nak(self) -> bool:
        return self.cmd == NAK

    @property
    def nak_reason(self) -> str:
        code = self.payload[0] if self.payload else 0
        return NAK_NAMES.get(code, f"reason {code}")


class Decoder:
    """Incremental frame decoder: feed bytes, collect frames.

    Bytes outside frames are skipped (hunting for SOF). A frame whose CRC fails is
    dropped, counted in ``crc_errors``, and decoding resumes at the byte after its SOF,
    so a false SOF inside garbage cannot swallow a real frame that follows.
    """

    def __init__(self, max_payload: int = 1 << 16):
        self.buf = bytearray()
        self.max_payload = max_payload
        self.crc_errors = 0

    def feed(self, data: bytes) -> list[Frame]:
        self.buf += data
        out = []
        while True:
            start = self.buf.find(SOF)
            if start < 0:
                self.buf.clear()
                return out
            del self.buf[:start]
            if len(self.buf) < 1 + HEADER_BYTES:
                return out
            seq, cmd, length = struct.unpack_from("<BBH", self.buf, 1)
            if length > self.max_payload:
                del self.buf[:1]
                continue
            total = OVERHEAD + length
            if len(self.buf) < total:
                return out
            body = bytes(self.buf[1:1 + HEADER_BYTES + length])
            (crc,) = struct.unpack_from("<I", self.buf, 1 + HEADER_BYTES + length)
            if crc == crc32(body):
                out.append(Frame(seq, cmd, body[HEADER_BYTES:]))
                del self.buf[:total]
            else:
                self.crc_errors += 1
                del self.buf[:1]
