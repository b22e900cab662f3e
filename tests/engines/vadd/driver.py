"""What ``Device`` gains on a device with the vector-add engine: :meth:`Driver.vadd`."""

from __future__ import annotations

import numpy as np

from . import ENGINE
from .config import VaddConfig
from .golden import vadd as check


class Driver:
    def vadd(self, a, b, *, timeout: float = 10.0) -> tuple[np.ndarray, dict[str, int]]:
        """``c = a + b`` on the device: (int64 array, this run's counters, unprefixed).
        The operands are checked as the golden model checks them (ShapeError) before
        anything is sent."""
        cfg = self.cfg.engine_config(VaddConfig.kind)
        check(cfg, a, b)
        n = len(a)
        self.write(self.map["vadd_a"]["base"], np.asarray(a, "<i2").tobytes())
        self.write(self.map["vadd_b"]["base"], np.asarray(b, "<i2").tobytes())
        self.start(ENGINE.name, n=n)
        self.wait(f"vadd of {n} elements", timeout)
        c = np.frombuffer(self.read(self.map["vadd_c"]["base"], 4 * n), "<i4").astype(np.int64)
        prefix = ENGINE.name + "_"
        return c, {k[len(prefix):]: v for k, v in self.counters().items()
                   if k.startswith(prefix)}
