"""Host driver of the TMV engine: place and load a checkpoint's BitLinears, run matvecs.

``Device`` gains these methods through the registry (``Engine.driver``):
:class:`Weights` (``plan``, ``load``) on any device whose engine has a TMV weight memory
(the bare ``tmv`` engine, and the token core, whose driver inherits it), :class:`Driver`
(``attach``, ``matvec``, ``run_tmv``) on a device with the bare ``tmv`` engine. On another
device they raise DeviceConfigError naming the engines it has.

Weights go to the ``weights`` region as :func:`tritium.engines.tmv.golden.tmv_lines`
packs them, one line per ``line_stride`` bytes; after a load the device's weight CRC
(STATUS) must equal the host's. A matvec writes int8 activations to ``activations``,
STARTs the engine (``{rows, cols, base, fmt}``) and reads int32 results from ``results``.
"""

from __future__ import annotations

import time

import numpy as np

from tritium import protocol as P
from tritium.config import DRAM_REGION
from tritium.engines.tmv.config import TMV_FORMATS
from tritium.engines.tmv import ENGINE as SPEC
from tritium.errors import DeviceError
from tritium.host.device import LoadReport, transfer_progress
from tritium.engines.tmv.placement import LayerPlacement, plan_weights

ENGINE = SPEC.name


def weight_image(dev, model, fmt: str) -> tuple[dict[str, LayerPlacement], bytes]:
    """Placement and the exact bytes of the weight region for ``model``."""
    from tritium.engines.tmv.golden import tmv_lines
    from tritium.golden.checkpoint import load_checkpoint

    if not hasattr(model, "bitlinears"):
        model = load_checkpoint(model)
    plan = dev.plan(list(model.bitlinears()), fmt)   # raises before anything is sent
    stride, lb = dev.cfg.line_stride, dev.cfg.line_bytes
    pad = bytes(stride - lb)
    image = bytearray()
    for p in plan.values():
        for line in tmv_lines(dev.cfg.tmv, p.codes, fmt):
            image += line.to_bytes(lb, "little") + pad
    return plan, bytes(image)


class Weights:
    """The weight-memory methods of every engine with a TMV (``self`` is the ``Device``)."""

    def plan(self, linears, fmt: str = "t2") -> dict[str, LayerPlacement]:
        """Place BitLinears in weight memory (checks everything before any byte is sent)."""
        return plan_weights(self.cfg.tmv, linears, fmt)

    def load(self, model, fmt: str = "t2", progress: bool = False,
             fast: str | None = None) -> LoadReport:
        """Send every BitLinear of ``model`` (a ModelDescription, or a checkpoint path) and
        prove it arrived: the device's CRC of all weight bytes must equal the host's. With
        the weights in DRAM (``weights_dram``) the image goes to the DRAM's start
        (:meth:`~tritium.host.device.Device.load_dram`: large frames, or the simulated
        device's backdoor ``fast``) and the CRC command proves it."""
        plan, image = weight_image(self, model, fmt)
        self.reset()  # clears the device's weight CRC
        if self.cfg.tmv.weights_dram:
            rep = self.load_dram({0: image}, progress=progress, fast=fast)
            self.placements = plan
            return LoadReport(plan, len(image), rep.seconds, True, P.crc32(image))
        t0 = time.monotonic()
        with transfer_progress(progress, len(image), "load") as update:
            self.write(self.map["weights"]["base"], image, update)
        seconds = time.monotonic() - t0
        crc = self._verify(image)
        self.placements = plan
        return LoadReport(plan, len(image), seconds, True, crc)


class Driver(Weights):
    """What ``Device`` gains when the device holds the bare TMV engine."""

    def attach(self, model, fmt: str = "t2") -> dict[str, LayerPlacement]:
        """Use weights loaded earlier (e.g. by `tritium load` in another process): checks
        that the device's weight CRC is that of ``model`` packed as ``fmt``."""
        plan, image = weight_image(self, model, fmt)
        hint = "load the checkpoint first (`tritium load CKPT --device URL`)"
        if self.cfg.tmv.weights_dram:
            got = self.crc(self.map[DRAM_REGION]["base"], len(image))
            if got != P.crc32(image):
                raise DeviceError(f"device DRAM weights are not this checkpoint: device CRC "
                                  f"{got:#010x}, host {P.crc32(image):#010x}; {hint}")
        else:
            self._verify(image, hint=hint)
        self.placements = plan
        return plan

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
        self.start(ENGINE, rows=rows, cols=cols, base=base, fmt=TMV_FORMATS.index(fmt))
        self.wait(what, timeout)
