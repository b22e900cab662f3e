"""Where BitLinears lie in a TMV engine's weight memory (host layer of the TMV engine).

Both the TMV's driver (:mod:`tritium.engines.tmv.driver`, which streams the weights) and the
token core's compiler (:mod:`tritium.engines.mfc.compile`, which addresses them in its
program) place weights the same way, so the placement lives here, below both; the token core
imports it as the TMV it owns (``tests/test_layers.py``'s ``ENGINE_DEPENDS``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tritium.errors import DeviceConfigError, TritiumError

from .golden import check_tmv_command


@dataclasses.dataclass
class LayerPlacement:
    name: str
    rows: int
    cols: int
    base: int        #: first weight line
    lines: int
    fmt: str
    codes: np.ndarray  # kept for golden checks


def plan_weights(t, linears, fmt: str = "t2") -> dict[str, LayerPlacement]:
    """Place BitLinears one after another in the weight memory of TMV config ``t``, in
    the order given; raises DeviceConfigError (naming the layer) if one does not fit."""
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
