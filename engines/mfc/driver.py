"""Host driver of the token core: load a compiled checkpoint and generate tokens on it.

``Device`` gains :class:`Driver`'s methods when the device holds the ``mfc`` engine
(``Engine.driver``; on another device they raise DeviceConfigError naming the engines it
has). A program comes from :meth:`Driver.compile`
(:func:`tritium.engines.mfc.compile.compile_model` for this device's ``MfcConfig``);
:meth:`Driver.load_core` sends its weights (CRC-checked against the device's weight CRC),
its instruction words and its vector-memory image; :meth:`Driver.step` runs one token and
:meth:`Driver.generate` decodes greedily. The loaded program is the device's
``compiled`` attribute (None until one is loaded).

Regions (``MfcConfig.soc_regions``): ``weights`` (TMV lines, ``line_stride`` bytes each;
with ``tmv.weights_dram`` the lines go to the SoC's DRAM from byte 0 instead, line ``a``
at byte ``a * line_stride``, :meth:`~tritium.host.device.Device.load_dram`),
``program`` (one ``INSTR_BYTES`` word per instruction), ``vmem`` (int32 per element), ``sregs``
(int64 per register), all little-endian.
"""

from __future__ import annotations

import dataclasses
import time
import zlib

import numpy as np

from tritium import protocol as P
from tritium.engines.mfc import ENGINE as SPEC
from tritium.engines.mfc.config import INSTR_BYTES, MfcConfig
from tritium.engines.tmv.driver import Weights
from tritium.errors import DeviceConfigError, DeviceError
from tritium.host.device import LoadReport, transfer_progress

ENGINE = SPEC.name


@dataclasses.dataclass
class TokenRun:
    """One token on the token core: the argmax and the run's per-unit counters."""

    token: int
    counters: dict[str, int]


def check_prompt(prompt_ids, vocab: int) -> list[int]:
    """The prompt as ints; DeviceError unless it is non-empty and inside [0, vocab)."""
    ids = [int(t) for t in prompt_ids]
    if not ids or min(ids) < 0 or max(ids) >= vocab:
        raise DeviceError(f"prompt ids must be a non-empty list in [0, {vocab - 1}] (the "
                          f"checkpoint's vocabulary), got {ids[:8]}")
    return ids


def loaded(dev):
    """The program loaded on ``dev``; DeviceError if none is."""
    compiled = getattr(dev, "compiled", None)
    if compiled is None:
        raise DeviceError("no program loaded; call load_core(compile(checkpoint)) first")
    return compiled


class Driver(Weights):
    """What ``Device`` gains when the device holds the token core (``self`` is the
    ``Device``): its TMV's weight methods (``plan``, ``load``) and the token core's."""

    def compile(self, model, fmt: str = "t2"):
        """Compile ``model`` (checkpoint path or ModelDescription) for this device's core."""
        from tritium.engines.mfc.compile import compile_model
        return compile_model(model, self.cfg.engine_config(MfcConfig.kind), fmt)

    def load_core(self, compiled, progress: bool = False, fast: str | None = None) -> LoadReport:
        """Send the weights (CRC-checked), the program and the vector-memory image. With
        ``tmv.weights_dram`` the weights go into the DRAM (:meth:`Device.load_dram`, every
        chunk CRC-proved; ``fast``: a simulated device's backdoor URL, as there);
        ``device_crc`` is then the CRC-32 of the whole image."""
        cfg = self.cfg.engine_config(MfcConfig.kind)
        if compiled.cfg != cfg:
            raise DeviceConfigError("the program was compiled for another core configuration; "
                                    "compile it with this device's config (Device.compile)")
        lb, pad = self.cfg.line_bytes, bytes(self.cfg.line_stride - self.cfg.line_bytes)
        image = b"".join(line.to_bytes(lb, "little") + pad for line in compiled.weights)
        self.reset()
        t0 = time.monotonic()
        if cfg.tmv.weights_dram:
            self.load_dram({0: image}, progress=progress, fast=fast)
            crc = zlib.crc32(image)
        else:
            with transfer_progress(progress, len(image), "load") as update:
                self.write(self.map["weights"]["base"], image, update)
            crc = self._verify(image)
        self.write(self.map["program"]["base"],
                   b"".join(w.to_bytes(INSTR_BYTES, "little") for w in compiled.program))
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
        self.start(ENGINE, entry=entry)
        st = self.wait("the core's run to HALT", timeout, error_ok=True)
        if st["flags"] & P.STATUS_ENGINE_ERROR:
            raise DeviceError("the core stopped on its error flag (bad instruction or operand); "
                              "reload the program")
        return {k[len(ENGINE) + 1:]: v for k, v in self.counters().items()
                if k.startswith(ENGINE + "_")}

    def step(self, token: int) -> TokenRun:
        """One token: its embedding in, the program run, the argmax out."""
        c = loaded(self)
        self.write_vmem(c.layout.x, c.embed(token))
        counters = self.run_core()
        return TokenRun(self.read_sreg(c.layout.argmax), counters)

    def logits(self) -> np.ndarray:
        """The last token's logits (floats) as the core left them; DeviceError when the
        lm_head runs in chunks (no memory holds them all)."""
        c = loaded(self)
        if c.layout.head_chunks > 1:
            raise DeviceError(f"the lm_head runs in {c.layout.head_chunks} chunks and the "
                              "device keeps no full logits; compile for a core with "
                              f"tmv.max_out >= {c.vocab} to read them")
        return self.read_vmem(c.layout.logits, c.vocab) / float(1 << c.cfg.frac_bits)

    def reset_state(self) -> None:
        """Zero every layer's MLGRU state: the next token starts a new sequence."""
        for addr, n in loaded(self).state:
            self.write_vmem(addr, np.zeros(n, dtype=np.int64))

    def generate(self, prompt_ids, n: int, on_token=None) -> tuple[list[int], list[TokenRun]]:
        """Greedy decoding on the device from a fresh state: the prompt, then ``n`` tokens.
        Returns (all token ids, one TokenRun per run); ``on_token(run)`` after each run."""
        ids = check_prompt(prompt_ids, loaded(self).vocab)
        from tritium.engines.mfc.compile import greedy

        self.reset_state()
        return greedy(self.step, ids, n, on_token)
