"""The SoC's DRAM port: the memory controller's native user port, as an Amaranth signature.

:func:`port_signature` is the controller's side (a requester uses ``.flip()``); it
follows LiteDRAM's native port, so its generated controller plugs in unchanged:

- ``cmd``: ``{we, addr}`` (``addr`` in beats of ``cfg.port_bits``); one beat per command;
- ``wdata``: ``{data, mask}`` (``mask``: one write-enable bit per byte), one per write
  command, in command order, valid no earlier than its command;
- ``rdata``: ``data``, one per read command, in command order.

Every stream has valid/ready: a controller may stall any of them (refresh, a row miss).
"""

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
