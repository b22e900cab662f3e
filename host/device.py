"""Host driver: one API for the simulated FPGA and a board.

``Device(url)`` opens ``url`` with pyserial's ``serial_for_url``: ``socket://127.0.0.1:PORT``
reaches the simulated FPGA (``tritium serve``), ``/dev/ttyUSB0`` a board's UART at
``baud`` (default :data:`DEFAULT_BAUD`, the SoC config's default rate; a board built at
another rate, e.g. the ULX3S-85F at 3 Mbaud, needs its rate: the CLI's ``--baud``
takes a rate or a board name). Both speak the same framed protocol
(:mod:`tritium.protocol`, docs/protocol.md).

Reliability (:class:`Link`, docs/protocol.md): every request waits for its answer (stop
and wait) and is resent, byte for byte, on a NAK for bad CRC, a garbled answer or a
timeout; the device runs a repeated WRITE/START/RESET once only, so a resend is always
safe, and idempotent requests do not use up the state-changing sequence numbers, so that
stays true however many of them there are. On a noisy line frames shrink and waits back
off; when even that fails, a :class:`LinkError` says what was seen and what to check.

The engines' methods (``load``, ``matvec``, ``generate``, ``spgemm``, ...) are their
drivers' (``Engine.driver``: :mod:`tritium.engines.tmv.driver` and the others), bound to
the device by :meth:`Device.__getattr__` when it holds that engine. Before anything is
sent, ``Device.load`` checks the checkpoint against the device's config (shapes, weight
memory) and :meth:`Device.__init__` checks the device against an
expected config if one is given; mismatches raise :class:`DeviceConfigError`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from tritium import protocol as P
from tritium.config import DRAM_REGION, SocConfig
# DeviceError, DeviceConfigError: re-exported. LayerPlacement (the annotations below) is the
# TMV engine's (tritium.engines.tmv.placement), which generic code does not import
from tritium.errors import DeviceConfigError, DeviceError, TritiumError  # noqa: F401


class LinkError(TritiumError):
    """The device does not answer, or answers nonsense, on this URL."""


@dataclasses.dataclass
class LoadReport:
    layers: dict[str, LayerPlacement]
    bytes_sent: int
    seconds: float
    verified: bool
    device_crc: int

    @property
    def mb_per_s(self) -> float:
        return self.bytes_sent / max(self.seconds, 1e-9) / 1e6


@dataclasses.dataclass
class DramLoadReport:
    """What :meth:`Device.load_dram` did: ``bytes_sent`` in ``seconds`` (the writing),
    ``verify_seconds`` for the CRC proof, whether the backdoor (``fast``) wrote them, the
    device's CRC of each chunk (all equal to the host's)."""

    bytes_sent: int
    seconds: float
    verify_seconds: float
    fast: bool
    crcs: list

    @property
    def mb_per_s(self) -> float:
        return self.bytes_sent / max(self.seconds, 1e-9) / 1e6


class Backdoor:
    """The simulated device's backdoor (``tritium serve`` prints its URL,
    ``socket://127.0.0.1:PORT``): writes bytes straight into the simulated DRAM, between
    two clock batches. Requests: ``W`` + u64 DRAM byte offset + u32 length + the bytes,
    answered ``K``; ``R`` + offset + length, answered with the bytes. Only a simulated
    device has one; LinkError if it cannot be reached."""

    def __init__(self, url: str):
        import socket

        host, _, port = url.removeprefix("socket://").rpartition(":")
        try:
            self.sock = socket.create_connection((host, int(port)), timeout=30)
        except (OSError, ValueError) as e:
            raise LinkError(f"cannot reach the simulated device's backdoor at {url} ({e}); "
                            "pass the backdoor URL `tritium serve` prints, or load without "
                            "fast=") from None

    def _exchange(self, req: bytes, n: int) -> bytes:
        try:
            self.sock.sendall(req)
            out = bytearray()
            while len(out) < n:
                got = self.sock.recv(n - len(out))
                if not got:
                    raise OSError("connection closed")
                out += got
            return bytes(out)
        except OSError as e:
            raise LinkError(f"the simulated device's backdoor went away ({e}); restart "
                            "`tritium serve` and load again") from None

    def write(self, offset: int, data: bytes) -> None:
        head = b"W" + offset.to_bytes(8, "little") + len(data).to_bytes(4, "little")
        if self._exchange(head + data, 1) != b"K":
            raise LinkError("the simulated device's backdoor refused a write; is the URL "
                            "its backdoor's?")

    def read(self, offset: int, n: int) -> bytes:
        return self._exchange(b"R" + offset.to_bytes(8, "little") + n.to_bytes(4, "little"), n)

    def close(self) -> None:
        self.sock.close()


class Link:
    """Frames over a byte transport, exactly once, adapting to a noisy line.

    ``transport`` is anything with ``write(bytes)``, ``read(n)`` (returning what arrived
    within its timeout), ``in_waiting`` and ``close()`` -- a pyserial object, or a test
    wrapper around one.

    Delivery (docs/protocol.md, "Delivery guarantee"): one request in flight at a time;
    state-changing requests are numbered with :func:`protocol.next_seq`, idempotent ones
    tagged with :func:`protocol.next_tag`, so the device's memory of the last executed
    number always tells a resend from a new request. A resend repeats the frame byte for
    byte. Before a state-changing request is re-cut smaller, STATUS ``last_seq`` says
    whether one of its sends already ran (then it is done), so no byte runs twice.

    Adaptation, per attempt outcome:

    - *answered*: the round trip (first sends only) updates the line's seconds per byte;
      the wait for an answer is ``RTO_FACTOR`` times the round trip that predicts, kept
      in [``MIN_WAIT_S``, ``timeout``] (``timeout`` until the first measurement). After
      ``GROW_AFTER`` requests in a row answered at the first send, ``limit`` (the payload
      a request is cut to) doubles, up to ``max_payload``.
    - *NAK for bad CRC* or *garbled answer* for every copy sent (a frame failing its CRC,
      or as many bytes as the answer should have and no valid frame within
      ``GARBLED_GAP_S``): ``limit`` halves, not below ``MIN_PAYLOAD``, ``copies`` (the
      frame's copies sent back to back per attempt: the device runs the first intact one
      and acknowledges the rest as repeats) doubles, up to ``MAX_COPIES``, and the frame
      is resent at once; once frames are at ``MIN_PAYLOAD`` and the request has failed
      ``BACKOFF_AFTER`` times, each resend first pauses ``BACKOFF_S`` x 1.5^k (k-th
      further failure), at most ``BACKOFF_CAP_S``. ``copies`` halves again after
      ``GROW_AFTER`` clean requests once ``limit`` is back at ``max_payload``.
    - *unanswered* within the wait: as above; from the second silence in a row the wait
      doubles each time (up to 8 x ``timeout``), which leaves the line quiet long enough
      for the device to drop a partial frame and gives a slow device time.

    Work the device still owes: an idempotent request with ``work`` (a CRC over megabytes)
    that was sent more than once runs once per copy the device received, one after the
    other, and answers nothing else meanwhile. Once its answer is in, every later wait is
    lengthened by what the extra copies may still take, so the next request is not given
    up on while the device finishes them. Requests with ``work`` do not update the line's
    seconds per byte (their round trip is the device's computing, not the line).

    It gives up with :class:`LinkError` after ``retries`` unanswered attempts in a row that
    also span at least ``retries`` x ``timeout`` seconds of silence (the device is not
    there, not merely slow) or ``NOISE_ATTEMPTS`` x ``retries`` attempts in all; the message
    counts what was seen ("N of M attempts NAKed for CRC, ...: the line is noisy"). A NAK
    other than bad CRC or engine busy raises DeviceError at once (the device refused;
    nothing ran). ``NAK_HOST_BUSY`` (another host holds the simulated device) raises
    LinkError at once.
    """

    MIN_PAYLOAD = 64
    GROW_AFTER = 8
    RTO_FACTOR = 4.0
    MIN_WAIT_S = 0.005
    BACKOFF_AFTER = 4
    BACKOFF_S = 0.0005
    BACKOFF_CAP_S = 0.02
    NOISE_ATTEMPTS = 8
    MAX_COPIES = 4
    #: after this many answer bytes beyond a complete answer's worth, a silence this long
    #: means the answer was garbled
    GARBLED_GAP_S = 0.001
    #: the same when the answer's length is not known in advance
    UNKNOWN_GAP_S = 0.02

    def __init__(self, transport, *, retries: int = 8, max_payload: int = 256,
                 timeout: float = 0.5):
        self.t = transport
        self.retries = retries
        self.timeout = timeout
        self.max_payload = max_payload
        self.limit = max_payload
        self.decoder = P.Decoder()
        self.seq = 0                   # the last state-changing number used
        self.last_run = 0              # the number the device holds as last_seq
        self.tag = 255                 # the last idempotent tag used
        self.resends = 0
        self.frames_sent = 0           # request frames written, each copy counted
        self.wire_bytes = 0
        self.last_attempts = 0
        self.noise = 0                 # attempts that failed, over the link's life
        self.s_per_byte: float | None = None
        self._streak = 0
        self._resync = True            # number on from the device's last_seq at first
        self.copies = 1                # copies of a frame sent back to back per attempt
        self._owed_until = 0.0         # monotonic time the device may be busy until

    def set_max_payload(self, n: int) -> None:
        """The device's ``max_payload``; frames start at it unless the line was noisy."""
        self.max_payload = self.decoder.max_payload = n
        self.limit = n if self.noise == 0 else min(self.limit, n)

    def request(self, cmd: int, payload: bytes = b"", expect: int | None = None,
                work: float = 0.0) -> bytes:
        """One request with a fixed ``payload``; returns the answer's payload. ``expect``
        is the answer's payload length when known (a garbled answer is then seen at once);
        ``work``: seconds the device may compute before answering (a CRC over megabytes),
        added to every wait for this request's answer."""
        return self.exchange(cmd, lambda limit: payload, lambda p: expect, work)[0]

    def exchange(self, cmd: int, build, expect=lambda payload: None,
                 work: float = 0.0) -> tuple[bytes, bytes]:
        """One request whose payload ``build(limit)`` cuts to at most ``limit`` bytes;
        ``expect(payload)`` is the answer length or None; ``work`` as for
        :meth:`request`. Returns (answer, the payload that was answered): callers that
        split data advance by what was sent."""
        state = cmd in P.NOT_IDEMPOTENT
        if state:
            if self._resync:
                # the last state-changing request was given up on: it may or may not have
                # run, so number on from what the device says it ran
                self.seq = self.last_run = self._last_seq()
                self._resync = False
            self.seq = P.next_seq(self.seq)
            if self.seq == self.last_run:
                # refused requests (NAK) ran nothing: after 127 of them the count comes
                # round to the number the device holds, which is never used again
                self.seq = P.next_seq(self.seq)
            seq = self.seq
        else:
            self.tag = P.next_tag(self.tag)
            seq = self.tag
        name = P.COMMAND_NAMES.get(cmd, hex(cmd))
        payload = build(self.limit)
        seen = {"crc": 0, "garbled": 0, "silent": 0, "busy": 0}
        silent_run = fail_run = sent = 0
        silent_since = None
        for attempt in range(self.NOISE_ATTEMPTS * self.retries):
            self.last_attempts = attempt + 1
            if attempt:
                self.resends += 1
            frame = P.encode(seq, cmd, payload)
            want = expect(payload)
            t0 = time.monotonic()
            if not attempt:
                first_sent = t0
            copies = self.copies
            self._write(frame * copies)
            sent += copies
            self.frames_sent += copies
            wait = self._wait(copies * (len(frame) + P.OVERHEAD + (want or 0)))
            owed = max(0.0, self._owed_until - t0)
            # back off after the second silence in a row: a device that is slow, not
            # gone, gets longer and longer to answer
            kind, reply = self._await(
                seq, cmd,
                min(wait * 2 ** max(0, silent_run - 1), 8 * self.timeout) + work + owed,
                want, copies)
            if kind == "answer":
                if not reply.is_nak:
                    now = time.monotonic()
                    # a request with work times the device's computing, not the line:
                    # it moves the frame-size streak but not the seconds per byte
                    self._answered(attempt == 0, now - t0,
                                   copies * len(frame) + len(reply.payload) + P.OVERHEAD,
                                   measure=work == 0)
                    if state:
                        self.last_run = seq
                    elif work and sent > 1:
                        # the other copies run after the answered one (a repeated
                        # state-changing request is only acknowledged), each about as
                        # long as the one just answered took: ``work`` is a ceiling
                        # (the slowest clock), not that time
                        took = min(work, now - first_sent)
                        self._owed_until = max(self._owed_until, now + (sent - 1) * took)
                    return reply.payload, payload
                code = reply.payload[0] if reply.payload else 0
                if code != P.NAK_BUSY:
                    raise DeviceError(f"device refused {name}: {reply.nak_reason}")
                kind = "busy"
                time.sleep(0.01)
            seen[kind] += 1
            if kind == "busy":
                continue
            self.noise += 1
            self._streak = 0
            silent_run = silent_run + 1 if kind == "silent" else 0
            if kind != "silent":
                silent_since = None
            elif silent_since is None:
                silent_since = t0
            if silent_run >= self.retries and \
                    time.monotonic() - silent_since >= self.retries * self.timeout:
                break
            fail_run += 1
            if kind != "silent" and fail_run >= self.BACKOFF_AFTER and \
                    self.limit == self.MIN_PAYLOAD:
                # frames as small as they go and still failing: give the line a pause
                time.sleep(min(self.BACKOFF_CAP_S,
                               self.BACKOFF_S * 1.5 ** (fail_run - self.BACKOFF_AFTER)))
            self.limit = max(self.MIN_PAYLOAD, self.limit // 2)
            self.copies = min(self.MAX_COPIES, 2 * self.copies)
            smaller = build(self.limit)
            if smaller != payload:
                if state and self._executed(seq):
                    # an earlier send ran and its answer was lost: that one counts
                    self.last_run = seq
                    return b"", payload
                payload = smaller
        self._resync |= state  # its fate is unknown: ask the device before the next one
        raise LinkError(self._give_up(name, seen))

    def _give_up(self, name: str, seen: dict[str, int]) -> str:
        n = sum(seen.values())
        if seen["silent"] == n:
            return (f"no answer to {name} after {n} attempts; check that the device is "
                    "running (`tritium serve`) and the URL is right")
        parts = [f"{seen['crc']} of {n} attempts NAKed for CRC",
                 f"{seen['garbled']} answered garbled", f"{seen['silent']} unanswered"]
        if seen["busy"]:
            parts.append(f"{seen['busy']} refused as engine busy")
        return (f"no valid answer to {name}: {', '.join(parts)}, at {self.limit}-byte "
                "frames: the line is noisy; check the cable, the baud rate and the ground, "
                "then retry")

    def status(self) -> dict[str, int]:
        """The STATUS fields."""
        return P.unpack_fields(P.STATUS_FIELDS, self.request(P.STATUS, expect=STATUS_BYTES))

    def _last_seq(self) -> int:
        """The device's ``last_seq``: STATUS is answered only after every byte sent before
        it was taken, so it is final for every request sent so far."""
        return self.status()["last_seq"]

    def _executed(self, seq: int) -> bool:
        """Whether the device ran state-changing request ``seq`` (see :meth:`_last_seq`)."""
        st = self.status()
        return bool(st["have_last"]) and st["last_seq"] == seq

    def _wait(self, round_trip_bytes: int) -> float:
        if self.s_per_byte is None:
            return self.timeout
        return min(self.timeout, max(self.MIN_WAIT_S,
                                     self.RTO_FACTOR * self.s_per_byte * round_trip_bytes))

    def _answered(self, first: bool, seconds: float, nbytes: int,
                  measure: bool = True) -> None:
        if first:  # a resend's round trip is ambiguous: measure first sends only
            if measure:
                rate = seconds / nbytes
                self.s_per_byte = rate if self.s_per_byte is None else \
                    0.875 * self.s_per_byte + 0.125 * rate
            self._streak += 1
            if self._streak >= self.GROW_AFTER:
                # frames grow back first; copies go only once frames are whole again
                if self.limit < self.max_payload:
                    self.limit = min(self.max_payload, self.limit * 2)
                else:
                    self.copies = max(1, self.copies // 2)
                self._streak = 0
        else:
            self._streak = 0

    def _write(self, data: bytes) -> None:
        try:
            self.t.write(data)
        except Exception as e:  # pyserial raises SerialException/OSError subclasses
            raise LinkError(f"link write failed ({e}); the device went away — restart it "
                            "(`tritium serve`) and retry") from None
        self.wire_bytes += len(data)

    def _await(self, seq: int, cmd: int, timeout: float, expect: int | None,
               copies: int = 1):
        """("answer", frame) for the answer to ``seq`` (an ACK of ``cmd`` or a NAK), else
        ("crc" | "garbled" | "silent", None): once every one of the ``copies`` sent has
        failed, or bytes came and went without the answer, or nothing came in time."""
        deadline = time.monotonic() + timeout
        crc_before, got, last, naks = self.decoder.crc_errors, 0, 0.0, 0
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            data, failed = b"", None
            try:
                data = self.t.read(1)  # blocks up to the transport's timeout
                if data:
                    data += self.t.read(self.t.in_waiting)
            except Exception as e:  # the bytes before it still count (a last answer)
                failed = e
            if data:
                self.wire_bytes += len(data)
                got, last = got + len(data), time.monotonic()
            for fr in self.decoder.feed(data):
                got -= P.OVERHEAD + len(fr.payload)  # whole frames (stale ones) don't count
                code = fr.payload[0] if fr.is_nak and fr.payload else 0
                if fr.is_nak and code == P.NAK_HOST_BUSY:
                    raise LinkError("the device is busy: another host is connected to it; "
                                    "close that one (or wait for it) and retry")
                if fr.seq == seq and (fr.is_nak and code != P.NAK_CRC or
                                      fr.cmd == cmd | P.ACK_BIT):
                    return "answer", fr
                if fr.seq == seq and not fr.is_nak:
                    raise LinkError(f"device answered {P.COMMAND_NAMES.get(cmd, hex(cmd))} "
                                    f"with command {fr.cmd:#x}; is this a tritium device "
                                    f"with protocol version {P.VERSION}?")
                # a CRC NAK may carry a garbled seq: ours or not, nothing of it ran
                naks += fr.is_nak and code == P.NAK_CRC
            if failed is not None:
                raise LinkError(f"link read failed ({failed}); the device went away — "
                                "restart it (`tritium serve`) and retry")
            noise = naks + self.decoder.crc_errors - crc_before
            kind = "crc" if naks else "garbled"
            if noise >= copies:
                return kind, None
            quiet = time.monotonic() - last
            if got > 0 and (quiet >= self.UNKNOWN_GAP_S or quiet >= self.GARBLED_GAP_S and (
                    noise or expect is not None and got >= P.OVERHEAD + expect)):
                # bytes came and went without the answer: headers hit by noise
                self.decoder.buf.clear()
                return kind, None
        # nothing complete arrived: a partial frame left in the decoder (say, one whose
        # length field was corrupted) is stale now and must not swallow the next answers
        self.decoder.buf.clear()
        return ("garbled" if got > 0 else "silent"), None

    def close(self) -> None:
        self.t.close()


STATUS_BYTES = P.fields_size(P.STATUS_FIELDS)
#: the slowest clock the wait for a long request's answer allows for (a CRC, a large
#: frame into DRAM): a served simulation runs at ~1M cycles/s alone, but one with
#: LiteDRAM's model on busy shared cores drops to ~100k, which made 256 KB CRC proofs
#: time out at 200k; a board runs at its clock_hz. A ceiling, not a delay
SLOWEST_HZ = 50_000
#: how long one transport read blocks: short, so a garbled answer is seen within ~1 ms
POLL_S = 0.001


#: the serial rate a board's link runs at unless its config says otherwise (SocConfig.baud)
DEFAULT_BAUD: int = next(f.default for f in dataclasses.fields(SocConfig) if f.name == "baud")


def open_transport(url: str, timeout: float, baud: int | None = None):
    """pyserial's ``serial_for_url(url)``, a serial port at ``baud`` (None:
    :data:`DEFAULT_BAUD`; a socket URL has no rate). LinkError if it cannot be opened."""
    import serial

    try:
        return serial.serial_for_url(url, timeout=timeout, baudrate=baud or DEFAULT_BAUD)
    except (serial.SerialException, ValueError, OSError) as e:
        raise LinkError(f"cannot open {url} ({e}); for the simulated FPGA start "
                        "`tritium serve` and pass the socket:// URL it prints") from None


class Device:
    """The device behind ``url`` (see the module docstring)."""

    def __init__(self, url: str | None = None, *, transport=None, timeout: float = 0.5,
                 retries: int = 8, expect: SocConfig | None = None, baud: int | None = None):
        self.link = Link(transport or open_transport(url, min(timeout, POLL_S), baud),
                         retries=retries, timeout=timeout)
        try:
            self.info = self._info()
            self.cfg: SocConfig = SocConfig.from_dict(self.info["config"])
            self.map = self.info["map"]
            self.link.set_max_payload(self.cfg.max_payload)
            if expect is not None and expect != self.cfg:
                raise DeviceConfigError(
                    f"device config differs from the expected one: device "
                    f"{self.cfg.to_dict()}, expected {expect.to_dict()}; rebuild the device "
                    "or drop --config")
        except BaseException:
            self.link.close()  # hang up at once: a served device is then free for others
            raise
        self.placements: dict[str, LayerPlacement] = {}

    # ---- raw commands -----------------------------------------------------------------
    def _info(self) -> dict[str, Any]:
        """INFO in chunks of the link's current frame size, until an empty one: one long
        answer would rarely cross a noisy line intact."""
        raw = bytearray()
        while True:
            chunk, _ = self.link.exchange(P.INFO, lambda limit: P.pack_fields(
                P.INFO_CHUNK_FIELDS, {"offset": len(raw), "length": limit}))
            if len(chunk) > self.link.max_payload:  # more than any chunk asked for
                raw = chunk  # a version-1 device answers all of it: the check below says so
                break
            if not chunk:
                break
            raw += chunk
            if len(raw) > 1 << 16:
                raise LinkError("INFO answer does not end; this is not a tritium device "
                                f"with protocol version {P.VERSION}")
        try:
            info = json.loads(raw)
        except ValueError:
            raise LinkError("INFO answer is not JSON; this is not a tritium device") from None
        if info.get("protocol") != P.VERSION:
            raise DeviceConfigError(f"device speaks protocol {info.get('protocol')}, this host "
                                    f"{P.VERSION}; update one of them")
        return info

    def write(self, addr: int, data: bytes, progress=None, *, slow: bool = False) -> None:
        """Write ``data`` at ``addr``, in frames the link cuts to its current size (it
        shrinks them on a noisy line and grows them back: :class:`Link`). Every byte is
        written exactly once; ``progress(n)`` after each frame. ``slow``: each frame may
        take the device two cycles a byte at :data:`SLOWEST_HZ` (a large frame into
        DRAM), so a slow answer is waited for rather than taken for a lost one."""
        off = 0
        while off < len(data):
            def build(limit, off=off):
                return (addr + off).to_bytes(P.ADDR_BYTES, "little") + \
                    data[off:off + limit - P.ADDR_BYTES]
            work = 2 * self.link.limit / SLOWEST_HZ if slow else 0.0
            _, sent = self.link.exchange(P.WRITE, build, lambda p: 0, work)
            n = len(sent) - P.ADDR_BYTES
            off += n
            if progress:
                progress(n)

    def read(self, addr: int, n: int) -> bytes:
        """``n`` bytes from ``addr``, in answers the link cuts to its current size."""
        out = bytearray()
        while len(out) < n:
            def build(limit, off=len(out)):
                return (addr + off).to_bytes(P.ADDR_BYTES, "little") + \
                    min(limit, n - off).to_bytes(2, "little")
            out += self.link.exchange(P.READ, build,
                                      lambda p: int.from_bytes(p[P.ADDR_BYTES:], "little"))[0]
        return bytes(out)

    def status(self) -> dict[str, int]:
        return self.link.status()

    def crc(self, addr: int, length: int) -> int:
        """The device's CRC-32 of ``length`` bytes from ``addr``, read back over its own
        bus (the CRC command: docs/protocol.md); the range must be readable. DeviceError
        if the device refuses it (NAK). The wait for the answer allows the cycles the
        device's CRC path may take (a DRAM range's word path: ``DramConfig.crc_cycles``
        of the config INFO reported; any other range a byte at a time) at
        :data:`SLOWEST_HZ`: a ceiling, not a delay."""
        region, dram = self.map.get(DRAM_REGION), self.cfg.dram
        in_dram = region is not None and dram is not None and \
            region["base"] <= addr < region["base"] + region["size"]
        cycles = dram.crc_cycles(length) if in_dram else P.CRC_BYTE_CYCLES * length
        work = cycles / SLOWEST_HZ
        raw = self.link.request(P.CRC, P.pack_fields(P.CRC_FIELDS, {"addr": addr,
                                                                     "length": length}),
                                expect=P.CRC_ANSWER_BYTES, work=work)
        return int.from_bytes(raw, "little")

    def _dram_region(self) -> dict:
        """The map's ``dram`` region; DeviceConfigError on a device without DRAM."""
        region = self.map.get(DRAM_REGION)
        if region is None:
            raise DeviceConfigError("this device has no DRAM; serve one with "
                                    "`tritium serve --dram ideal` (or set SocConfig.dram)")
        return region

    def load_dram(self, images, *, progress: bool = False, fast: str | None = None,
                  chunk: int = 1 << 18) -> "DramLoadReport":
        """Write ``images`` (``{offset: bytes}``, offsets in bytes from the DRAM's start)
        into the device's DRAM and prove they arrived: for every ``chunk`` bytes the
        device's CRC (:meth:`crc`, read back through its bus and arbiter) must equal the
        host's. Over the link the frames are the device's ``max_payload``; with ``fast``
        (a simulated device's backdoor URL, ``SimulatedDevice.backdoor_url``, which
        ``tritium serve`` prints) the bytes go straight into the simulated DRAM instead,
        and the same CRC proof follows. ``progress``: a bar with MB/s.

        Before anything is written: DeviceConfigError if the device has no DRAM, an image
        runs past the DRAM's end (or starts below 0) or two images overlap. DeviceError if
        a CRC differs (nothing is assumed: load again); LinkError if the device goes away
        (a rerun loads everything again)."""
        region = self._dram_region()
        size = region["size"]
        spans = sorted((int(off), bytes(img)) for off, img in dict(images).items())
        for off, img in spans:
            if off < 0 or off + len(img) > size:
                raise DeviceConfigError(
                    f"image of {len(img)} bytes at DRAM offset {off:#x} does not fit the "
                    f"device's {size}-byte DRAM (it ends at {off + len(img):#x}); make it "
                    "smaller or move it")
        for (a, x), (b, y) in zip(spans, spans[1:]):
            if a + len(x) > b:
                raise DeviceConfigError(f"images at DRAM offsets {a:#x} ({len(x)} bytes) and "
                                        f"{b:#x} overlap; give each its own range")
        total = sum(len(img) for _, img in spans)
        t0 = time.monotonic()
        backdoor = None
        if fast is not None:
            backdoor = Backdoor(fast)
        try:
            with transfer_progress(progress, total, "load dram") as update:
                for off, img in spans:
                    if backdoor is not None:
                        for k in range(0, len(img), chunk):
                            backdoor.write(off + k, img[k:k + chunk])
                            update(len(img[k:k + chunk]))
                    else:
                        self.write(region["base"] + off, img, update, slow=True)
        finally:
            if backdoor is not None:
                backdoor.close()
        seconds = time.monotonic() - t0
        t1 = time.monotonic()
        crcs = []
        for off, img in spans:
            for k in range(0, len(img), chunk):
                piece = img[k:k + chunk]
                got, want = self.crc(region["base"] + off + k, len(piece)), P.crc32(piece)
                if got != want:
                    raise DeviceError(
                        f"DRAM bytes {off + k:#x}..{off + k + len(piece):#x} read back with CRC "
                        f"{got:#010x}, host {want:#010x}: the load did not arrive; load again")
                crcs.append(got)
        return DramLoadReport(total, seconds, time.monotonic() - t1, fast is not None, crcs)

    def read_dram(self, offset: int, n: int, *, fast: str | None = None,
                  chunk: int = 1 << 20) -> bytes:
        """``n`` bytes of the device's DRAM from byte ``offset``: over the link (the
        ``dram`` region, through the device's bus and arbiter), or with ``fast`` (a
        simulated device's backdoor URL) straight from the simulated DRAM, ``chunk``
        bytes a request. Call it while no engine writes the DRAM (after a run).
        DeviceConfigError, before anything is read, for a device without DRAM or a
        range outside it; LinkError if the device goes away."""
        region = self._dram_region()
        if offset < 0 or n < 0 or offset + n > region["size"]:
            raise DeviceConfigError(f"DRAM bytes {offset:#x}..{offset + n:#x} are outside the "
                                    f"device's {region['size']}-byte DRAM; read inside it")
        if fast is None:
            return self.read(region["base"] + offset, n)
        backdoor = Backdoor(fast)
        try:
            return b"".join(backdoor.read(offset + k, min(chunk, n - k))
                            for k in range(0, n, chunk))
        finally:
            backdoor.close()

    def counters(self) -> dict[str, int]:
        names = self.info["counters"]
        raw = self.link.request(P.COUNTERS, expect=8 * len(names))
        return {n: int.from_bytes(raw[8 * k:8 * k + 8], "little") for k, n in enumerate(names)}

    def reset(self) -> None:
        self.link.request(P.RESET)

    def close(self) -> None:
        self.link.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- weights (any engine with a weight memory) -----------------------------------
    def _verify(self, image: bytes, hint: str = "reload") -> int:
        st = self.status()
        expect, lines = P.crc32(image), len(image) // self.cfg.line_stride
        if st["weight_crc"] != expect or st["weight_lines"] != lines:
            raise DeviceError(f"device weights are not this checkpoint: device CRC "
                              f"{st['weight_crc']:#010x} over {st['weight_lines']} lines, host "
                              f"{expect:#010x} over {lines}; {hint}")
        return expect

    # ---- any engine -------------------------------------------------------------------
    def engine_info(self, engine: str) -> dict:
        """INFO's entry of ``engine`` (START id, fields, regions, counters);
        DeviceConfigError if the device has no such engine."""
        spec = self.info.get("engines", {}).get(engine)
        if spec is None:
            from tritium import registry

            def named(name):  # what the device holds, in words where the registry knows it
                known = registry.engines(installed=False).get(name)
                return f"{name}: {known.title}" if known is not None and known.title else name

            held = "; ".join(named(n) for n in self.info.get("engines", {})) or "none"
            raise DeviceConfigError(f"this device has no {engine} engine (it has {held}); "
                                    f"serve one with `tritium serve --engine {engine}`")
        return spec

    def start(self, engine: str, **fields) -> None:
        """START ``engine`` with its argument ``fields``, by the START id and field layout
        the device reports in INFO. DeviceConfigError if the device has no such engine or
        a field is missing; DeviceError if the device refuses (NAK)."""
        spec = self.engine_info(engine)
        layout = tuple((n, size) for n, size in spec["fields"])
        missing = sorted({n for n, _ in layout} - set(fields))
        if missing:
            raise DeviceConfigError(f"START {engine} needs the fields {missing}")
        self.link.request(P.START, bytes([spec["start"]]) + P.pack_fields(layout, fields))

    def wait(self, what: str, timeout: float = 30.0, *, error_ok: bool = False) -> dict:
        """Poll STATUS until the engine started last is done and not busy; returns the
        STATUS fields. DeviceError on its error flag (unless ``error_ok``) or after
        ``timeout`` seconds."""
        t0 = time.monotonic()
        while True:
            st = self.status()
            if st["flags"] & P.STATUS_ENGINE_ERROR and not error_ok:
                raise DeviceError(f"engine error flag set running {what}; reset the device")
            if st["flags"] & P.STATUS_DONE and not st["flags"] & P.STATUS_BUSY:
                return st
            if time.monotonic() - t0 > timeout:
                raise DeviceError(f"{what} did not finish within {timeout} s; reset the device")

    # ---- engine drivers ---------------------------------------------------------------
    def __getattr__(self, name: str):
        """A method of an engine's driver (``Engine.driver``, :mod:`tritium.registry`),
        bound to this device: ``dev.spgemm(A, B)``, from the first engine in registry order
        that this device holds and whose driver has it. DeviceConfigError if no engine on
        this device has it but another engine does (it names that engine)."""
        if name.startswith("_") or "info" not in self.__dict__:
            raise AttributeError(name)
        from tritium import registry

        held, wanted = self.info.get("engines", {}), None
        for eng in registry.engines().values():
            method = getattr(eng.hook("driver"), name, None) if eng.driver else None
            if method is None:
                continue
            if eng.name in held:
                return method.__get__(self)
            wanted = wanted or eng.name
        if wanted is not None:
            self.engine_info(wanted)  # raises: names the engine and the ones it has
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r} (nor "
                             "does any engine driver)")


class transfer_progress:
    """A rich progress bar (bytes, MB/s, ETA) or nothing."""

    def __init__(self, enabled: bool, total: int, what: str):
        self.enabled, self.total, self.what = enabled, total, what

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.progress import (BarColumn, DownloadColumn, Progress, TimeRemainingColumn,
                                   TransferSpeedColumn)

        self.p = Progress("[progress.description]{task.description}", BarColumn(),
                          DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
        self.p.start()
        task = self.p.add_task(self.what, total=self.total)
        return lambda n: self.p.advance(task, n)

    def __exit__(self, *exc):
        if self.enabled:
            self.p.stop()
