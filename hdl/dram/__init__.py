"""The SoC's DRAM port: the memory controller's native user port, as an Amaranth signature.

:func:`port_signature` is the controller's side (a requester uses ``.flip()``); it
follows LiteDRAM's native port, so its generated controller plugs in unchanged:

- ``cmd``: ``{we, addr}`` (``addr`` in beats of ``cfg.port_bits``); one beat per command;
- ``wdata``: ``{data, mask}`` (``mask``: one write-enable bit per byte), one per write
  command, in command order, valid no earlier than its command;
- ``rdata``: ``data``, one per read command, in command order.

Every stream has valid/ready: a controller may stall any of them (refresh, a row miss),
and every controller honours ``rdata.ready`` (LiteDRAM's through a
:class:`~tritium.hdl.dram.readbuffer.ReadBuffer`).
"""

from __future__ import annotations

from tritium.dram import DramConfig

from .port import port_signature

__all__ = ["port_signature", "sim_controller"]


def sim_controller(cfg: DramConfig):
    """The simulated device's memory controller for ``cfg``'s part: an object with

    - ``component``: an Amaranth component whose ``port`` member is :func:`port_signature`
      (the controller's side), elaborated into the Verilated model beside the SoC;
    - ``sources``: extra Verilog files the Verilator build needs (none for the ideal part);
    - ``backdoor_cpp``: C++ source defining ``dram_backdoor_write(top, addr, data, n)`` and
      ``dram_backdoor_read(top, addr, data, n)`` (byte address, the Verilated top as a
      template argument), which the served simulation's fast load path uses.

    The ideal part's is :mod:`tritium.hdl.dram.ideal`; a real part's is LiteDRAM's
    controller and its ``SDRAMPHYModel`` (:mod:`tritium.hdl.dram.litedram`).
    """
    if cfg.spec.kind == "ideal":
        from .ideal import sim_controller as make
    else:
        from .litedram import sim_controller as make
    return make(cfg)
