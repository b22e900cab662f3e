"""Host driver: one API for the simulated FPGA and a board.

``Device(url)`` opens ``url`` with pyserial's ``serial_for_url``: ``socket://127.0.0.1:PORT``
reaches the simulated FPGA (``tritium serve``), ``/dev/ttyUSB0`` a board's UART. Both
speak the same framed protocol (:mod:`tritium.host.protocol`, docs/protocol.md).

Reliability: every request waits for its response (stop and wait). A NAK for bad CRC,
a lost or corrupted response, or a timeout resends the same frame with the same
sequence number, waiting twice as long each time (up to 8x the timeout); the device executes a repeated WRITE/START/RESET once only, so a resend
is always safe. After ``retries`` failed attempts a :class:`LinkError` says what to check.

Before anything is sent, :meth:`Device.load` checks the checkpoint against the device's
config (shapes, weight memory) and :meth:`Device.__init__` checks the device against an
expected config if one is given; mismatches raise :class:`DeviceConfigError`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import numpy as np

from tritium.config import TMV_FORMATS, SocConfig
from tritium.errors import TritiumError

from . import protocol as P


class LinkError(TritiumError):
    """The device does not answer, or answers nonsense, on this URL."""


class DeviceConfigError(TritiumError):
    """The device's configuration does not fit what the host wants to do."""


class DeviceError(TritiumError):
    """The device refused a request or reported an engine error."""


@dataclasses.dataclass
class LayerPlacement:
    name: str
    rows: int
    cols: int
    base: int        #: first weight line
    lines: int
    fmt: str
    codes: np.ndarray  # kept for golden checks


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


class Link:
    """Frames over a byte transport with resend on NAK/timeout. ``transport`` is anything
    with ``write(bytes)``, ``read(n)`` (returning what arrived within its timeout),
    ``close()`` -- a pyserial object, or a test wrapper around one."""

    def __init__(self, transport, *, retries: int = 8, max_payload: int = 256,
                 timeout: float = 0.5):
        self.t = transport
        self.retries = retries
        self.timeout = timeout
        self.max_payload = max_payload
        self.decoder = P.Decoder()
        self.seq = 0
        self.resends = 0
        self.wire_bytes = 0
        self.last_attempts = 0

    def request(self, cmd: int, payload: bytes = b"") -> bytes:
        self.seq = (self.seq + 1) & 0xFF
        frame = P.encode(self.seq, cmd, payload)
        name = P.COMMAND_NAMES.get(cmd, hex(cmd))
        for attempt in range(self.retries):
            self.last_attempts = attempt + 1
            if attempt:
                self.resends += 1
            self._write(frame)
            # back off: a device drops a partial frame (one whose length byte was hit,
            # say) only after a silence on the line, which quick resends would prevent
            reply = self._await(self.seq, min(self.timeout * 2 ** attempt, 8 * self.timeout))
            if reply is None:
                continue
            if reply.is_nak:
                code = reply.payload[0] if reply.payload else 0
                if code == P.NAK_CRC:
                    continue
                if code == P.NAK_BUSY:
                    time.sleep(0.01)
                    continue
                raise DeviceError(f"device refused {name}: {reply.nak_reason}")
            if reply.cmd != cmd | P.ACK_BIT:
                raise LinkError(f"device answered {name} with command {reply.cmd:#x}; "
                                "is this a tritium device with protocol "
                                f"version {P.VERSION}?")
            return reply.payload
        raise LinkError(f"no valid answer to {name} after {self.retries} attempts; check that "
                        "the device is running (`tritium serve`) and the URL is right")

    def _write(self, data: bytes) -> None:
        try:
            self.t.write(data)
        except Exception as e:  # pyserial raises SerialException/OSError subclasses
            raise LinkError(f"link write failed ({e}); the device went away — restart it "
                            "(`tritium serve`) and retry") from None
        self.wire_bytes += len(data)

    def _await(self, seq: int, timeout: float):
        """The response with this seq, or None on timeout or a NAK for a garbled frame."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = self.t.read(1)  # blocks up to the transport's timeout
                if data:
                    data += self.t.read(self.t.in_waiting)
            except Exception as e:
                raise LinkError(f"link read failed ({e}); the device went away — restart "
                                "it (`tritium serve`) and retry") from None
            if not data:
                continue
            self.wire_bytes += len(data)
            for fr in self.decoder.feed(data):
                if fr.seq == seq or (fr.is_nak and fr.payload[:1] == bytes([P.NAK_CRC])):
                    # a CRC NAK may carry a garbled seq: resend ours at once either way
                    return fr if fr.seq == seq else None
        # nothing complete arrived: a partial frame left in the decoder (say, one whose
        # length field was corrupted) is stale now and must not swallow the next answers
        self.decoder.buf.clear()
        return None

    def close(self) -> None:
        self.t.close()


def open_transport(url: str, timeout: float):
    import serial

    try:
        return serial.serial_for_url(url, timeout=timeout, baudrate=115200)
    except (serial.SerialException, ValueError, OSError) as e:
        raise LinkError(f"cannot open {url} ({e}); for the simulated FPGA start "
                        "`tritium serve` and pass the socket:// URL it prints") from None


def plan_weights(t, linears, fmt: str = "t2") -> dict[str, LayerPlacement]:
    """Place BitLinears one after another in the weight memory of TMV config ``t``, in
    the order given; raises DeviceConfigError (naming the layer) if one does not fit."""
    from tritium.golden.ternary import check_tmv_command

    base, out = 0, {}
    for lin in linears:
        rows, cols = lin.codes.shape
        try:
            check_tmv_command(t, rows, cols, fmt, base)
        except TritiumError as e:
            raise DeviceConfigError(f"{lin.name} ({rows}x{cols}) does not fit the device: "
                                    f"{e}") from None
        out[lin.name] = LayerPlacement(lin.name, rows, cols, base, t.words(rows, cols),
                                       fmt, lin.codes)
        base += t.words(rows, cols)
    return out


@dataclasses.dataclass
class TokenRun:
    """One token on the token core: the argmax and the run's per-unit counters."""

    token: int
    counters: dict[str, int]


class _TokenCore:
    """Device methods for the token core (``SocConfig.mfc``): load a compiled checkpoint
    (:func:`tritium.host.compile.compile_model`) and generate tokens on it."""

    compiled = None

    def _need_engine(self) -> None:
        if self.cfg.engine != "mfc":
            raise DeviceConfigError("this device has no token core (its engine is the bare "
                                    "TMV); serve one with `tritium serve --engine mfc`")

    def compile(self, model, fmt: str = "t2"):
        """Compile ``model`` (checkpoint path or ModelDescription) for this device's core."""
        from tritium.host.compile import compile_model
        self._need_engine()
        return compile_model(model, self.cfg.mfc, fmt)

    def load_core(self, compiled, progress: bool = False) -> LoadReport:
        """Send the weights (CRC-checked), the program and the vector-memory image."""
        self._need_engine()
        if compiled.cfg != self.cfg.mfc:
            raise DeviceConfigError("the program was compiled for another core configuration; "
                                    "compile it with this device's config (Device.compile)")
        lb, pad = self.cfg.line_bytes, bytes(self.cfg.line_stride - self.cfg.line_bytes)
        image = b"".join(line.to_bytes(lb, "little") + pad for line in compiled.weights)
        self.reset()
        t0 = time.monotonic()
        with _progress(progress, len(image), "load") as update:
            self.write(self.map["weights"]["base"], image, update)
        crc = self._verify(image)
        self.write(self.map["program"]["base"],
                   b"".join(w.to_bytes(8, "little") for w in compiled.program))
        for addr, values in compiled.vmem.items():
            self.write_vmem(addr, values)
        self.placements, self.compiled = compiled.placements, compiled
        return LoadReport(compiled.placements, len(image), time.monotonic() - t0, True, crc)

    def write_vmem(self, addr: int, values) -> None:
        v = np.asarray(values, dtype=np.int64)
        self.write(self.map["vmem"]["base"] + 4 * addr, v.astype("<i4").tobytes())

    def read_vmem(self, addr: int, n: int) -> np.ndarray:
        raw = self.read(self.map["vmem"]["base"] + 4 * addr, 4 * n)
        return np.frombuffer(raw, dtype="<i4").astype(np.int64)

    def read_sreg(self, k: int) -> int:
        raw = self.read(self.map["sregs"]["base"] + 8 * k, 8)
        return int.from_bytes(raw, "little", signed=True)

    def run_core(self, entry: int = 0, timeout: float = 60.0) -> dict[str, int]:
        """START the core at ``entry``, wait for HALT; returns the run's counters."""
        self.link.request(P.START, bytes([P.ENGINE_MFC]) +
                          P.pack_fields(P.MFC_START_FIELDS, {"entry": entry}))
        t0 = time.monotonic()
        while True:
            st = self.status()
            if st["flags"] & P.STATUS_DONE and not st["flags"] & P.STATUS_BUSY:
                break
            if time.monotonic() - t0 > timeout:
                raise DeviceError(f"the core did not halt within {timeout} s; reset the device")
        if st["flags"] & P.STATUS_ENGINE_ERROR:
            raise DeviceError("the core stopped on its error flag (bad instruction or operand); "
                              "reload the program")
        return {k[4:]: v for k, v in self.counters().items() if k.startswith("mfc_")}

    def step(self, token: int) -> TokenRun:
        """One token: its embedding in, the program run, the argmax out."""
        c = self._need_core()
        self.write_vmem(c.layout.x, c.embed(token))
        counters = self.run_core()
        return TokenRun(self.read_sreg(c.layout.argmax), counters)

    def logits(self) -> np.ndarray:
        """The last token's logits (floats) as the core left them."""
        c = self._need_core()
        return self.read_vmem(c.layout.logits, c.vocab) / float(1 << c.cfg.frac_bits)

    def reset_state(self) -> None:
        """Zero every layer's MLGRU state: the next token starts a new sequence."""
        for addr, n in self._need_core().state:
            self.write_vmem(addr, np.zeros(n, dtype=np.int64))

    def generate(self, prompt_ids, n: int, on_token=None) -> tuple[list[int], list[TokenRun]]:
        """Greedy decoding on the device from a fresh state: the prompt, then ``n`` tokens.
        Returns (all token ids, one TokenRun per run); ``on_token(run)`` after each run."""
        c = self._need_core()
        ids = [int(t) for t in prompt_ids]
        if not ids or min(ids) < 0 or max(ids) >= c.vocab:
            raise DeviceError(f"prompt ids must be a non-empty list in [0, {c.vocab - 1}]")
        from tritium.host.compile import greedy

        self.reset_state()
        return greedy(self.step, ids, n, on_token)

    def _need_core(self):
        if self.compiled is None:
            raise DeviceError("no program loaded; call load_core(compile(checkpoint)) first")
        return self.compiled


class Device(_TokenCore):
    """The device behind ``url`` (see the module docstring)."""

    def __init__(self, url: str | None = None, *, transport=None, timeout: float = 0.5,
                 retries: int = 8, expect: SocConfig | None = None):
        self.link = Link(transport or open_transport(url, min(timeout, 0.05)),
                         retries=retries, timeout=timeout)
        self.info = self._info()
        self.cfg: SocConfig = SocConfig.from_dict(self.info["config"])
        self.map = self.info["map"]
        self.link.max_payload = self.cfg.max_payload
        self.link.decoder.max_payload = self.cfg.max_payload
        if expect is not None and expect != self.cfg:
            raise DeviceConfigError(
                f"device config differs from the expected one: device {self.cfg.to_dict()}, "
                f"expected {expect.to_dict()}; rebuild the device or drop --config")
        # continue after the device's last executed sequence number, so a fresh host
        # never has its first write taken for a repeat
        st = self.status()
        self.link.seq = st["last_seq"]
        self.placements: dict[str, LayerPlacement] = {}

    # ---- raw commands -----------------------------------------------------------------
    def _info(self) -> dict[str, Any]:
        raw = self.link.request(P.INFO)
        try:
            info = json.loads(raw)
        except ValueError:
            raise LinkError("INFO answer is not JSON; this is not a tritium device") from None
        if info.get("protocol") != P.VERSION:
            raise DeviceConfigError(f"device speaks protocol {info.get('protocol')}, this host "
                                    f"{P.VERSION}; update one of them")
        return info

    def write(self, addr: int, data: bytes, progress=None) -> None:
        """Write ``data`` at ``addr`` in frames of up to ``max_payload`` bytes. On a noisy
        link (a frame needing several sends) the frame size halves, down to 64 bytes, and
        grows back after a run of clean frames: long frames rarely arrive intact there."""
        full = self.cfg.max_payload - P.ADDR_BYTES
        step, clean, off = full, 0, 0
        while off < len(data):
            chunk = data[off:off + step]
            self.link.request(P.WRITE, (addr + off).to_bytes(4, "little") + chunk)
            off += len(chunk)
            if progress:
                progress(len(chunk))
            if self.link.last_attempts > 2:
                step, clean = max(64, step // 2), 0
            else:
                clean += 1
                if clean >= 16:
                    step, clean = min(full, step * 2), 0

    def read(self, addr: int, n: int) -> bytes:
        out = bytearray()
        step = self.cfg.max_payload
        for off in range(0, n, step):
            k = min(step, n - off)
            out += self.link.request(P.READ, (addr + off).to_bytes(4, "little") +
                                     k.to_bytes(2, "little"))
        return bytes(out)

    def status(self) -> dict[str, int]:
        return P.unpack_fields(P.STATUS_FIELDS, self.link.request(P.STATUS))

    def counters(self) -> dict[str, int]:
        raw = self.link.request(P.COUNTERS)
        names = self.info["counters"]
        return {n: int.from_bytes(raw[8 * k:8 * k + 8], "little") for k, n in enumerate(names)}

    def reset(self) -> None:
        self.link.request(P.RESET)

    def close(self) -> None:
        self.link.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- weights ----------------------------------------------------------------------
    def plan(self, linears, fmt: str = "t2") -> dict[str, LayerPlacement]:
        """Place BitLinears in weight memory (checks everything before any byte is sent)."""
        return plan_weights(self.cfg.tmv, linears, fmt)

    def _image(self, model, fmt: str) -> tuple[dict[str, LayerPlacement], bytes]:
        """Placement and the exact bytes of the weight region for ``model``."""
        from tritium.golden.ternary import tmv_lines
        from tritium.host.checkpoint import load_checkpoint

        if not hasattr(model, "bitlinears"):
            model = load_checkpoint(model)
        plan = self.plan(list(model.bitlinears()), fmt)   # raises before anything is sent
        stride, lb = self.cfg.line_stride, self.cfg.line_bytes
        pad = bytes(stride - lb)
        image = bytearray()
        for p in plan.values():
            for line in tmv_lines(self.cfg.tmv, p.codes, fmt):
                image += line.to_bytes(lb, "little") + pad
        return plan, bytes(image)

    def load(self, model, fmt: str = "t2", progress: bool = False) -> LoadReport:
        """Send every BitLinear of ``model`` (a ModelDescription, or a checkpoint path) and
        prove it arrived: the device's CRC of all weight bytes must equal the host's."""
        plan, image = self._image(model, fmt)
        self.reset()  # clears the device's weight CRC
        t0 = time.monotonic()
        with _progress(progress, len(image), "load") as update:
            self.write(self.map["weights"]["base"], image, update)
        seconds = time.monotonic() - t0
        crc = self._verify(image)
        self.placements = plan
        return LoadReport(plan, len(image), seconds, True, crc)

    def attach(self, model, fmt: str = "t2") -> dict[str, LayerPlacement]:
        """Use weights loaded earlier (e.g. by `tritium load` in another process): checks
        that the device's weight CRC is that of ``model`` packed as ``fmt``."""
        plan, image = self._image(model, fmt)
        self._verify(image, hint="load the checkpoint first (`tritium load CKPT --device URL`)")
        self.placements = plan
        return plan

    def _verify(self, image: bytes, hint: str = "reload") -> int:
        st = self.status()
        expect, lines = P.crc32(image), len(image) // self.cfg.line_stride
        if st["weight_crc"] != expect or st["weight_lines"] != lines:
            raise DeviceError(f"device weights are not this checkpoint: device CRC "
                              f"{st['weight_crc']:#010x} over {st['weight_lines']} lines, host "
                              f"{expect:#010x} over {lines}; {hint}")
        return expect

    # ---- compute ----------------------------------------------------------------------
    def matvec(self, layer: str, x, timeout: float = 30.0) -> tuple[np.ndarray, dict[str, int]]:
        """y = W_layer · x on the device (x int8, ``cols`` long); returns (y int64 array,
        counter deltas of this run)."""
        if layer not in self.placements:
            raise DeviceError(f"layer {layer!r} is not loaded; load the checkpoint first "
                              f"(loaded: {sorted(self.placements)[:5]}...)")
        p = self.placements[layer]
        xs = np.asarray(x).astype(np.int64).ravel()
        if xs.size != p.cols or xs.min() < -128 or xs.max() > 127:
            raise DeviceError(f"{layer} takes {p.cols} int8 activations, got {xs.size} values "
                              f"in [{xs.min()}, {xs.max()}]")
        self.write(self.map["activations"]["base"], xs.astype(np.int8).tobytes())
        before = self.counters()
        self.run_tmv(p.rows, p.cols, p.base, p.fmt, timeout=timeout, what=layer)
        raw = self.read(self.map["results"]["base"], 4 * p.rows)
        after = self.counters()
        y = np.frombuffer(raw, dtype="<i4").astype(np.int64)
        return y, {k: after[k] - before[k] for k in after}


    def run_tmv(self, rows: int, cols: int, base: int, fmt: str = "t2", *,
                timeout: float = 30.0, what: str = "the matvec") -> None:
        """START the TMV engine on the loaded activations and wait until it is done.
        Raises DeviceError on the engine's error flag or after ``timeout`` seconds."""
        args = P.pack_fields(P.TMV_START_FIELDS, {"rows": rows, "cols": cols, "base": base,
                                                  "fmt": TMV_FORMATS.index(fmt)})
        self.link.request(P.START, bytes([P.ENGINE_TMV]) + args)
        t0 = time.monotonic()
        while True:
            st = self.status()
            if st["flags"] & P.STATUS_ENGINE_ERROR:
                raise DeviceError(f"engine error flag set running {what}; reset the device")
            if st["flags"] & P.STATUS_DONE and not st["flags"] & P.STATUS_BUSY:
                return
            if time.monotonic() - t0 > timeout:
                raise DeviceError(f"{what} did not finish within {timeout} s")


class _progress:
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
