"""The SoC's DRAM port signature (:func:`port_signature`), in a module of its own so the
controllers (:mod:`.ideal`, :mod:`.litedram`) import it without importing the package,
which dispatches to them (:func:`tritium.hdl.dram.sim_controller`). The contract is the
package's docstring."""

from __future__ import annotations

from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from tritium.dram import DramConfig


def port_signature(cfg: DramConfig) -> wiring.Signature:
    bits = cfg.port_bits
    return wiring.Signature({
        "cmd": In(stream.Signature(data.StructLayout({"we": 1, "addr": cfg.addr_bits}))),
        "wdata": In(stream.Signature(data.StructLayout({"data": bits, "mask": bits // 8}))),
        "rdata": Out(stream.Signature(bits)),
    })
