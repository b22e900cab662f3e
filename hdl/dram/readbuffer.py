"""Read back-pressure for a controller whose native port ignores ``rdata.ready``.

LiteDRAM's native port pushes each read beat in the cycle it has it, whatever the
requester's ``rdata.ready`` says; the SoC's port contract (:mod:`tritium.hdl.dram`) has
valid/ready on every stream, as the ideal controller honours it. :class:`ReadBuffer`
sits between the two and makes the contract hold:

- ``port`` (the controller's side, :func:`~tritium.hdl.dram.port.port_signature`): what
  the SoC sees; ``ctrl`` (the requester's side): the raw controller.
- ``cmd`` and ``wdata`` pass through, except that a read command waits (its ``ready``
  low, nothing offered to the controller) while :data:`READ_CREDITS` reads are
  outstanding: accepted and their beat not yet taken on ``port.rdata``.
- every beat from ``ctrl.rdata`` is taken in its cycle; it goes straight out when no
  earlier beat waits and ``port.rdata.ready`` is high (no added latency), else into a
  FIFO of :data:`READ_CREDITS` beats, which the beats leave in order.

The FIFO cannot overflow: a beat in it or still inside the controller belongs to an
outstanding read, and there are never more than :data:`READ_CREDITS` of those. A
requester that is always ready sees the controller's own timing as long as the
controller keeps fewer reads in flight than that (the SoC's arbiter allows as many,
:data:`tritium.hdl.mem.ARBITER_READS`, so on the SoC the credits never bind first).
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import Out

from tritium.dram import DramConfig

from .port import port_signature

#: reads outstanding at most (and beats the buffer holds)
READ_CREDITS = 64


class ReadBuffer(wiring.Component):
    """See the module docstring. ``outstanding``: reads accepted whose beat has not left
    on ``port.rdata`` (for tests and counters)."""

    def __init__(self, cfg: DramConfig, credits: int = READ_CREDITS):
        self.cfg, self.credits = cfg, credits
        sig = port_signature(cfg)
        super().__init__({"port": Out(sig), "ctrl": Out(sig.flip()),
                          "outstanding": Out(range(credits + 1))})

    def elaborate(self, platform):
        m, p, c = Module(), self.port, self.ctrl
        n = self.outstanding
        room = n < self.credits
        ok = p.cmd.payload.we | room
        m.d.comb += [c.cmd.payload.eq(p.cmd.payload), c.cmd.valid.eq(p.cmd.valid & ok),
                     p.cmd.ready.eq(c.cmd.ready & ok)]
        m.d.comb += [c.wdata.valid.eq(p.wdata.valid), c.wdata.payload.eq(p.wdata.payload),
                     p.wdata.ready.eq(c.wdata.ready)]

        m.submodules.beats = q = fifo.SyncFIFO(width=self.cfg.port_bits, depth=self.credits)
        arrive = c.rdata.valid
        m.d.comb += [c.rdata.ready.eq(1),
                     p.rdata.valid.eq(q.r_rdy | arrive),
                     p.rdata.payload.eq(Mux(q.r_rdy, q.r_data, c.rdata.payload)),
                     q.r_en.eq(p.rdata.ready),
                     # a beat bypasses the FIFO only when none waits and it is taken now
                     q.w_en.eq(arrive & (q.r_rdy | ~p.rdata.ready)),
                     q.w_data.eq(c.rdata.payload)]
        read = p.cmd.valid & p.cmd.ready & ~p.cmd.payload.we
        m.d.sync += n.eq(n + read - (p.rdata.valid & p.rdata.ready))
        return m
