"""Memory ports: one read/write interface, two implementations.

An engine reads its weights through :func:`port_signature`, whatever stores them:

- ``w``: write stream ``{addr, data}`` (always ready): the weight load path.
- ``req``: read requests ``{addr, size, tag}``: ``size`` is the bytes the read moves
  (a bandwidth-limited memory is busy ``ceil(size / bytes_per_cycle)`` cycles per request),
  ``tag`` is returned with the data untouched (like an AXI ID), so the requester needs no
  side queue to know what arrived.
- ``resp``: ``{data, tag}`` in request order, ``latency`` cycles after the request was
  accepted; always ready: the requester must have room for every request it makes
  (credits), because an external memory does not wait.

:class:`ExternalMemoryModel` stores the data in ``amaranth.lib.memory`` and adds a
configurable latency and bandwidth, for the cycle model and SoC work; :class:`BlockRAM`
is its latency-1, full-bandwidth case, which elaborates to a bare block-RAM read port.
Both store data the same way, so results are identical and only timing differs. A read
at an address >= depth returns unspecified data; a requester must not use it (the TMV
flags such a read as an error).

Every memory and index here is at least one bit wide (:func:`memory_depth`,
:func:`index_shape`): Amaranth gives a one-entry memory or a one-value index a zero-width
signal, which yosys writes as ``wire [-1:0]`` and Verilator rejects (ASCRANGE).
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.hdl import ResetInserter
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

from tritium import protocol as P

from .dram import port_signature as _dram_sig
from .dram.readbuffer import READ_CREDITS


def memory_depth(depth: int) -> int:
    """Entries to build for a memory of ``depth`` (>= 1) usable entries: at least two, so
    its address is at least one bit wide; the spare entry of a one-entry memory is never
    addressed by a valid request."""
    return max(2, depth)


def index_shape(n: int):
    """Unsigned shape of an index 0..n-1 (n >= 1), at least one bit wide."""
    return unsigned(max(1, ceil_log2(n)))


def port_signature(*, depth: int, width: int, tag_shape, max_size: int) -> wiring.Signature:
    """The memory's side of a port (the requester uses ``.flip()``)."""
    abits = index_shape(depth)
    return wiring.Signature({
        "w": In(stream.Signature(data.StructLayout({"addr": abits, "data": width}),
                                 always_ready=True)),
        "req": In(stream.Signature(data.StructLayout({
            "addr": abits, "size": range(max_size + 1), "tag": tag_shape}))),
        "resp": Out(stream.Signature(data.StructLayout({"data": width, "tag": tag_shape}),
                                     always_ready=True)),
    })


class ExternalMemoryModel(wiring.Component):
    """External weight memory: ``latency`` cycles (>= 1) from request to data, and
    ``bytes_per_cycle`` of bandwidth (0 = unlimited): after accepting a request of ``size``
    bytes the port is not ready for ``ceil(size / bytes_per_cycle) - 1`` cycles."""

    def __init__(self, *, depth: int, width: int, tag_shape, max_size: int, latency: int,
                 bytes_per_cycle: int):
        if latency < 1:
            raise ValueError("memory latency is at least 1 cycle")
        self.depth, self.width = depth, width
        self.latency, self.bytes_per_cycle = latency, bytes_per_cycle
        self.max_size = max_size
        super().__init__(port_signature(depth=depth, width=width, tag_shape=tag_shape,
                                        max_size=max_size))

    def elaborate(self, platform):
        m = Module()
        m.submodules.store = store = memory.Memory(
            shape=self.width, depth=memory_depth(self.depth), init=[])
        wr, rd = store.write_port(), store.read_port()
        m.d.comb += [wr.addr.eq(self.w.payload.addr), wr.data.eq(self.w.payload.data),
                     wr.en.eq(self.w.valid)]
        take = self.req.valid & self.req.ready
        m.d.comb += rd.addr.eq(self.req.payload.addr)

        if self.bytes_per_cycle:
            bw = self.bytes_per_cycle
            # bytes of the current transfer still to move after this cycle
            left = Signal(range(self.max_size + 1))
            m.d.comb += self.req.ready.eq(~left.any())  # not `== 0`: lint-clean Verilog
            with m.If(take):
                size = self.req.payload.size
                m.d.sync += left.eq(mux_sat_sub(size, bw))
            with m.Elif(left != 0):
                m.d.sync += left.eq(mux_sat_sub(left, bw))
        else:
            m.d.comb += self.req.ready.eq(1)

        # the read port is stage 1; the remaining latency is a plain delay line
        valid, tag, dat = Signal(), Signal.like(self.req.payload.tag), rd.data
        m.d.sync += [valid.eq(take), tag.eq(self.req.payload.tag)]
        for k in range(self.latency - 1):
            v2 = Signal(name=f"valid_d{k}")
            t2 = Signal.like(tag, name=f"tag_d{k}")
            d2 = Signal(self.width, name=f"data_d{k}")
            m.d.sync += [v2.eq(valid), t2.eq(tag), d2.eq(dat)]
            valid, tag, dat = v2, t2, d2
        m.d.comb += [self.resp.valid.eq(valid), self.resp.payload.tag.eq(tag),
                     self.resp.payload.data.eq(dat)]
        return m


class BlockRAM(ExternalMemoryModel):
    """On-chip weight memory: a request every cycle, data 1 cycle after it (the read
    port's own register; no delay line, no bandwidth counter)."""

    def __init__(self, *, depth: int, width: int, tag_shape, max_size: int):
        super().__init__(depth=depth, width=width, tag_shape=tag_shape, max_size=max_size,
                         latency=1, bytes_per_cycle=0)


def local_memory(*, latency: int, bytes_per_cycle: int, **kw) -> ExternalMemoryModel:
    """The memory behind a port of :func:`port_signature` (``kw``: its depth, width,
    tag_shape, max_size): a :class:`BlockRAM` for ``latency=1, bytes_per_cycle=0``, else
    an :class:`ExternalMemoryModel` with that latency and bandwidth."""
    if latency == 1 and bytes_per_cycle == 0:
        return BlockRAM(**kw)
    return ExternalMemoryModel(latency=latency, bytes_per_cycle=bytes_per_cycle, **kw)


def mux_sat_sub(a, b: int):
    """``max(a - b, 0)`` for an unsigned ``a`` and a constant ``b``."""
    return Mux(a > b, a - b, 0)



# ---- CRC-32 over any number of bits in one cycle --------------------------------------------


def _reflect(v: int, n: int) -> int:
    return int(f"{v:0{n}b}"[::-1], 2)


def crc32_step(state, data):
    """The CRC-32 register (``tritium.hdl.link.deframer.CRC32``, zlib's CRC) after
    ``len(data)`` bits of ``data``, least significant first (bytes of a little-endian
    word in address order): combinational. ``state`` is the register in the reflected
    domain, so it starts at :data:`CRC32_START` and the CRC of the bytes fed so far is
    ``state ^ CRC32_XOR``. Each output bit is an XOR of state and data bits, found by
    running the bit-serial reflected CRC on symbolic bits."""
    from .link.deframer import CRC32

    a = CRC32
    assert a.reflect_input and a.reflect_output  # the form the loop below computes
    w, n = a.crc_width, len(data)
    poly = _reflect(a.polynomial, w)
    bits = [1 << i for i in range(w)]          # bit i of the register, over state + data
    for j in range(n):
        fb = bits[0] ^ (1 << (w + j))
        bits = bits[1:] + [0]
        bits = [b ^ fb if poly >> i & 1 else b for i, b in enumerate(bits)]
    src = Cat(state, data)
    return Cat(*[Cat(*[src[k] for k in range(w + n) if b >> k & 1]).xor() for b in bits])


def _crc32_consts():
    from .link.deframer import CRC32

    return (_reflect(CRC32.initial_crc, CRC32.crc_width), CRC32.xor_output)


#: the reflected-domain register :func:`crc32_step` starts from, and the XOR that turns it
#: into the CRC
CRC32_START, CRC32_XOR = _crc32_consts()



# ---- the SoC's DRAM subsystem ---------------------------------------------------------------
#
# The DRAM controller's native port (tritium.hdl.dram.port_signature: one beat per
# command, reads in order, valid/ready everywhere) is shared by the link and the engines
# through a DramArbiter; the link reaches it through a LinkDramPort, which turns the
# command processor's byte bus into beats.

#: beats the link's read-ahead buffer holds (and reads it may have in flight)
LINK_READ_AHEAD = 16
#: beats of link writes queued for the controller
LINK_WRITE_QUEUE = 4
#: reads the arbiter tracks in flight (whose data it routes back in order): as many as a
#: LiteDRAM controller's read buffer grants credit for, so that neither binds first
ARBITER_READS = READ_CREDITS


class LinkDramPort(wiring.Component):
    """The command processor's byte bus, in the ``dram`` region, as DRAM beats.

    Ports: ``we``/``re`` (a byte write / read of the region this cycle), ``addr`` (byte
    offset in the region), ``wdata``; ``wready``: a write is taken this cycle (low: the
    bus must hold it); ``rdata``/``rvalid``: a read's byte, some cycles after ``re``;
    ``busy``: written bytes not yet handed to the controller; ``invalidate``: drop the
    read-ahead (another requester wrote the DRAM, or a read command begins); ``port``: the requester's side
    of the native port.

    Writes: bytes of one beat combine in a register (with their byte mask); the beat goes
    to a queue of :data:`LINK_WRITE_QUEUE` as soon as a byte of another beat comes or a
    cycle passes without a write, so a WRITE frame's bytes (one per cycle, in address
    order) leave as whole beats, and a partial beat as a masked one. Reads: a byte of beat
    b is answered from a read-ahead buffer of :data:`LINK_READ_AHEAD` beats that streams
    b, b+1, ... (to the end of the DRAM); a byte of any other beat, or a write, restarts
    it (reads still in flight are dropped as they come). So sequential reads (READ, the
    CRC command) cost the controller's latency once, not per byte. Beats the read-ahead
    fetched and the bus never read are counted by the DRAM's ``bytes_read``.

    The CRC command's word path: ``crc_start`` (a pulse; not with ``invalidate``, which
    it implies) takes ``crc_addr`` (byte offset) and ``crc_len`` (bytes, up to 2**32 - 1)
    and streams their beats through the same read-ahead; ``crc_busy`` is high from the
    next cycle until the last byte is in, then ``crc_value`` holds the CRC-32 of the
    range (zlib's; 0 for an empty one). A whole beat enters the CRC in the cycle it is at
    the read-ahead's head (a CRC-32 of ``port_bits`` data bits a cycle), so a range
    costs one cycle a beat where the port delivers one, plus the read latency once; the
    bytes of a partial head or tail beat enter one a cycle (at most ``2 ·
    (word_bytes - 1)`` cycles a range). A write by another requester meanwhile restarts
    the read-ahead at the beat being read (the CRC is of memory as it is read).
    """

    def __init__(self, cfg):
        self.cfg = cfg
        lane = exact_log2(cfg.word_bytes)
        if not lane:
            raise ValueError("the link's DRAM port needs a beat of two bytes or more")
        self.lane_bits = lane
        super().__init__({
            "we": In(1), "re": In(1), "addr": In(cfg.addr_bits + lane), "wdata": In(8),
            "wready": Out(1), "rdata": Out(8), "rvalid": Out(1), "busy": Out(1),
            "invalidate": In(1), "port": Out(_dram_sig(cfg).flip()),
            "crc_start": In(1), "crc_addr": In(cfg.addr_bits + lane), "crc_len": In(33),
            "crc_busy": Out(1), "crc_value": Out(32),
        })

    def elaborate(self, platform):
        m, cfg, p = Module(), self.cfg, self.port
        bits, nb, lb = cfg.port_bits, cfg.word_bytes, self.lane_bits
        beat = self.addr[lb:]
        lane = self.addr[:lb] if lb else Const(0)

        # ---- writes: combine bytes into a beat, queue the beats ------------------------
        held_v, held_b = Signal(), Signal(cfg.addr_bits)
        held_d, held_m = Signal(bits), Signal(nb)
        wq_layout = data.StructLayout({"addr": cfg.addr_bits, "data": bits, "mask": nb})
        m.submodules.wq = wq = fifo.SyncFIFOBuffered(width=wq_layout.size,
                                                     depth=LINK_WRITE_QUEUE)
        same = held_v & (held_b == beat)
        byte_mask = Signal(nb)
        m.d.comb += byte_mask.eq(1 << lane) if lb else byte_mask.eq(1)
        m.d.comb += wq.w_data.eq(Cat(held_b, held_d, held_m))
        with m.If(self.we & same):
            m.d.comb += self.wready.eq(1)
            m.d.sync += [held_d.word_select(lane, 8).eq(self.wdata) if lb
                         else held_d.eq(self.wdata), held_m.eq(held_m | byte_mask)]
        with m.Elif(held_v):
            m.d.comb += [wq.w_en.eq(1), self.wready.eq(self.we & wq.w_rdy)]
            with m.If(wq.w_rdy):
                m.d.sync += held_v.eq(self.we)
                with m.If(self.we):
                    m.d.sync += [held_b.eq(beat), held_m.eq(byte_mask),
                                 held_d.word_select(lane, 8).eq(self.wdata) if lb
                                 else held_d.eq(self.wdata)]
        with m.Elif(self.we):
            m.d.comb += self.wready.eq(1)
            m.d.sync += [held_v.eq(1), held_b.eq(beat), held_m.eq(byte_mask),
                         held_d.word_select(lane, 8).eq(self.wdata) if lb
                         else held_d.eq(self.wdata)]

        # the queue's head goes out as a command and its data; either may be taken first
        head = wq_layout(wq.r_data)
        c_done, d_done = Signal(), Signal()
        writing = wq.r_rdy
        c_acc = p.cmd.valid & p.cmd.ready & writing
        d_acc = p.wdata.valid & p.wdata.ready
        m.d.comb += [p.wdata.valid.eq(writing & ~d_done), p.wdata.payload.data.eq(head.data),
                     p.wdata.payload.mask.eq(head.mask)]
        both = (c_done | c_acc) & (d_done | d_acc)
        m.d.comb += wq.r_en.eq(writing & both)
        with m.If(both):
            m.d.sync += [c_done.eq(0), d_done.eq(0)]
        with m.Else():
            with m.If(c_acc):
                m.d.sync += c_done.eq(1)
            with m.If(d_acc):
                m.d.sync += d_done.eq(1)
        m.d.comb += self.busy.eq(held_v | wq.r_rdy)

        # ---- reads: the read-ahead buffer ------------------------------------------------
        D = LINK_READ_AHEAD
        beats = cfg.size_bytes // nb
        act = Signal()
        nxt, hd = Signal(cfg.addr_bits + 1), Signal(cfg.addr_bits + 1)
        inflight, drop = Signal(range(D + 1)), Signal(range(D + 1))
        want, want_b = Signal(), Signal(cfg.addr_bits + 1)
        want_l = Signal(max(1, lb))
        flush = Signal()
        m.submodules.rbuf = rbuf = ResetInserter(flush)(fifo.SyncFIFOBuffered(width=bits,
                                                                              depth=D))
        # the CRC's position: its next byte (pos), the bytes left, the register
        crc_on = self.crc_busy
        pos = Signal(cfg.addr_bits + lb + 1)
        left = Signal(33)
        state = Signal(32, init=CRC32_START)
        cur_b, cur_l = pos[lb:], pos[:lb]
        # the beat wanted at the read-ahead's head: a byte read's, or the CRC's
        need = want | crc_on
        need_b = Mux(crc_on, cur_b, want_b)
        hit = need & act & (hd == need_b)
        restart = need & ~(act & (hd == need_b))
        m.d.comb += flush.eq(restart | self.invalidate | self.we | self.crc_start)
        serve = want & hit & rbuf.r_rdy
        last_lane = (want_l == nb - 1) if lb else Const(1)
        # the CRC: a whole beat where the range covers it, else its byte at pos
        take_c = crc_on & hit & rbuf.r_rdy
        whole = (cur_l == 0) & (left >= nb)
        pop_c = take_c & (whole | (cur_l == nb - 1))
        m.d.comb += [self.rvalid.eq(serve),
                     self.rdata.eq(rbuf.r_data.word_select(want_l, 8) if lb else rbuf.r_data),
                     rbuf.r_en.eq(serve & last_lane | pop_c),
                     self.crc_value.eq(state ^ CRC32_XOR)]
        with m.If(serve):
            m.d.sync += want.eq(0)
            with m.If(last_lane):
                m.d.sync += hd.eq(hd + 1)
        with m.If(pop_c):
            m.d.sync += hd.eq(hd + 1)
        step = Mux(whole, nb, 1)
        with m.If(self.crc_start):
            m.d.sync += [crc_on.eq(self.crc_len != 0), pos.eq(self.crc_addr),
                         left.eq(self.crc_len), state.eq(CRC32_START)]
        with m.Elif(take_c):
            m.d.sync += [pos.eq(pos + step), left.eq(left - step), crc_on.eq(left != step),
                         state.eq(Mux(whole, crc32_step(state, rbuf.r_data),
                                      crc32_step(state, rbuf.r_data.word_select(cur_l, 8))))]
        # after the serve above: a read may come in the cycle the previous one is answered
        with m.If(self.re):
            m.d.sync += [want.eq(1), want_b.eq(beat), want_l.eq(lane)]
        # a read command when no write is queued, with room for its beat
        rd_ok = act & ~flush & ~writing & (nxt < beats) & (rbuf.level + inflight + drop < D)
        m.d.comb += [p.cmd.valid.eq(Mux(writing, ~c_done, rd_ok)),
                     p.cmd.payload.we.eq(writing),
                     p.cmd.payload.addr.eq(Mux(writing, head.addr, nxt[:cfg.addr_bits])),
                     p.rdata.ready.eq(1)]
        issue = p.cmd.valid & p.cmd.ready & ~writing
        arrive = p.rdata.valid
        keep = arrive & (drop == 0)
        m.d.comb += [rbuf.w_en.eq(keep & ~flush), rbuf.w_data.eq(p.rdata.payload)]
        with m.If(issue):
            m.d.sync += nxt.eq(nxt + 1)
        with m.If(flush):
            m.d.sync += [drop.eq(drop - (arrive & (drop != 0)) + inflight - keep),
                         inflight.eq(0), act.eq(restart), hd.eq(need_b), nxt.eq(need_b)]
        with m.Else():
            m.d.sync += [inflight.eq(inflight + issue - keep),
                         drop.eq(drop - (arrive & (drop != 0)))]
        return m


class DramArbiter(wiring.Component):
    """``n`` requesters on one DRAM native port, with the DRAM's hardware counters.

    Ports: ``r0`` .. ``r{n-1}``: controller-side native ports (a requester connects its
    flipped port); ``ctrl``: the requester side towards the controller; ``wrote``: a
    write command was accepted in the previous cycle; ``busy``: a command waits or a beat is in
    flight; counters (``DRAM_COUNTER_BITS`` wide, from reset/``clear``): ``bytes_read`` (beats delivered x
    beat bytes), ``bytes_written`` (bytes enabled by the write masks), ``busy_cycles``
    (cycles with ``busy``), ``stall_cycles`` (cycles in which some requester's command
    waits: not accepted, because another's was or the controller is not ready).

    Policy: round robin over commands, one beat each: after requester k's command is
    accepted, k+1, k+2, ... come first. Reads return in command order (the controller's
    order); a FIFO of :data:`ARBITER_READS` requester numbers routes each beat to its
    requester, and a read waits while it is full. Write data goes to the controller in
    write-command order, from the requester whose command it was.
    """

    #: counter names without the ``dram_`` prefix COUNTERS reports them with
    COUNTERS = tuple(c.removeprefix("dram_") for c in P.DRAM_COUNTERS)

    def __init__(self, cfg, n: int):
        self.cfg, self.n = cfg, n
        sig = _dram_sig(cfg)
        super().__init__({**{f"r{k}": Out(sig) for k in range(n)},
                          "ctrl": Out(sig.flip()), "wrote": Out(1), "busy": Out(1),
                          "clear": In(1), **{c: Out(P.DRAM_COUNTER_BITS) for c in self.COUNTERS}})

    def elaborate(self, platform):
        m, cfg, n = Module(), self.cfg, self.n
        rs = [getattr(self, f"r{k}") for k in range(n)]
        c = self.ctrl
        idb = max(1, (n - 1).bit_length())
        m.submodules.rid = rid = fifo.SyncFIFOBuffered(width=idb, depth=ARBITER_READS)
        m.submodules.wid = wid = fifo.SyncFIFOBuffered(width=idb, depth=ARBITER_READS)

        # round robin: the first valid requester after the last one granted
        last = Signal(index_shape(n))
        sel = Signal(index_shape(n))
        any_valid = Cat(*[r.cmd.valid for r in rs]).any()
        with m.Switch(last):
            for L in range(n):
                with m.Case(L):
                    order = [(L + 1 + j) % n for j in range(n)]
                    for k in reversed(order):
                        with m.If(rs[k].cmd.valid):
                            m.d.comb += sel.eq(k)
        room = Signal()
        for k, r in enumerate(rs):
            with m.If(sel == k):
                m.d.comb += [c.cmd.payload.eq(r.cmd.payload),
                             room.eq(Mux(r.cmd.payload.we, wid.w_rdy, rid.w_rdy)),
                             c.cmd.valid.eq(r.cmd.valid & room),
                             r.cmd.ready.eq(c.cmd.ready & room)]
        acc = c.cmd.valid & c.cmd.ready
        m.d.comb += [rid.w_data.eq(sel), wid.w_data.eq(sel),
                     rid.w_en.eq(acc & ~c.cmd.payload.we), wid.w_en.eq(acc & c.cmd.payload.we)]
        # registered: a requester's read-ahead drops its beats on it without a
        # combinational path from its own command back to it
        m.d.sync += self.wrote.eq(acc & c.cmd.payload.we)
        with m.If(acc):
            m.d.sync += last.eq(sel)

        # write data of the oldest write command; read data to the oldest read's requester
        for k, r in enumerate(rs):
            with m.If(wid.r_rdy & (wid.r_data == k)):
                m.d.comb += [c.wdata.valid.eq(r.wdata.valid), c.wdata.payload.eq(r.wdata.payload),
                             r.wdata.ready.eq(c.wdata.ready)]
            m.d.comb += r.rdata.payload.eq(c.rdata.payload)
            with m.If(rid.r_rdy & (rid.r_data == k)):
                m.d.comb += [r.rdata.valid.eq(c.rdata.valid), c.rdata.ready.eq(r.rdata.ready)]
        d_acc = c.wdata.valid & c.wdata.ready
        r_acc = c.rdata.valid & c.rdata.ready
        m.d.comb += [wid.r_en.eq(d_acc), rid.r_en.eq(r_acc)]

        busy = any_valid | rid.r_rdy | wid.r_rdy
        waiting = Cat(*[r.cmd.valid & ~r.cmd.ready for r in rs]).any()
        m.d.comb += self.busy.eq(busy)
        mask = c.wdata.payload.mask
        popcount = sum((mask[i] for i in range(len(mask))), Const(0, 1))
        for name, step in (("bytes_read", Mux(r_acc, cfg.word_bytes, 0)),
                           ("bytes_written", Mux(d_acc, popcount, 0)),
                           ("busy_cycles", busy), ("stall_cycles", waiting)):
            counter = getattr(self, name)
            m.d.sync += counter.eq(Mux(self.clear, 0, counter + step))
        return m



class DramWeightPort(wiring.Component):
    """An engine's weight memory (:func:`port_signature`, the memory's side, member
    ``mem``) read from DRAM (member ``dram``: a requester port, e.g.
    :meth:`tritium.hdl.adapter.EngineBus.dram_port`).

    Line ``a`` is the ``stride`` bytes at DRAM byte ``a * stride`` (``stride`` a multiple
    of the beat, a power of two): ``stride / beat`` beats, read in address order and
    assembled low beat first. A request is accepted while the previous one issues its
    last beat, so a stream of requests reads one beat per cycle when the controller
    takes one; responses come in request order, as soon as a line's last beat arrives
    (variable latency: the requester bounds what it has in flight by credits, as the
    TMV's weight FIFO does, and ``resp`` is always ready). At most ``outstanding`` lines
    are in flight. Writes (``mem.w``) are ignored: the weights are loaded into DRAM over
    the bus. Bytes past ``width`` in a line are ignored.

    ``flush`` (a one-cycle pulse, e.g. the SoC's soft reset of the requester): the port
    forgets every line in flight, the rest of the line being requested included, and
    answers no request in that cycle. Beats the controller still returns for them (the
    native port cannot cancel a read) are counted and dropped as they arrive, so no
    response and no misaligned beat reaches a requester after the flush; requests taken
    after it are answered as usual, behind the dropped beats. ``flush`` may also be held:
    no request is taken meanwhile. ``idle``: no beat of the port's is in flight (none
    requested and not yet returned, none left to drop), so a reset of the port then
    loses nothing the controller still owes it. ``rdata.ready`` is always high: a beat
    is taken in the cycle it comes.
    """

    def __init__(self, *, dram, depth: int, width: int, tag_shape, max_size: int,
                 stride: int, outstanding: int):
        if stride % dram.word_bytes or stride & (stride - 1):
            raise ValueError(f"a weight line of {stride} bytes is not a power-of-two number "
                             f"of {dram.word_bytes}-byte DRAM beats")
        self.dram_cfg, self.depth, self.width = dram, depth, width
        self.beats = stride // dram.word_bytes
        self.outstanding = outstanding
        self.tag_shape = tag_shape
        super().__init__({
            "mem": Out(port_signature(depth=depth, width=width, tag_shape=tag_shape,
                                      max_size=max_size)),
            "dram": Out(_dram_sig(dram).flip()),
            "flush": In(1), "idle": Out(1),
        })

    def elaborate(self, platform):
        m, d, B = Module(), self.dram_cfg, self.beats
        req, resp, port, flush = self.mem.req, self.mem.resp, self.dram, self.flush
        shift = exact_log2(B)
        left = Signal(range(B + 1))
        cur = Signal(d.addr_bits)
        m.submodules.tags = tags = ResetInserter(flush)(fifo.SyncFIFOBuffered(
            width=Signal(self.tag_shape).as_value().shape().width, depth=self.outstanding))
        # beats requested and not yet returned (live), and those a flush orphaned (drop):
        # each at most a tags FIFO's worth of lines
        most = self.outstanding * B
        live, drop = Signal(range(most + 1)), Signal(range(most + 1))
        arrive = port.rdata.valid
        dropping = drop != 0
        mine = arrive & ~dropping
        c_acc = port.cmd.valid & port.cmd.ready
        m.d.comb += self.idle.eq((live == 0) & ~dropping)
        m.d.comb += [port.cmd.valid.eq((left != 0) & ~flush), port.cmd.payload.we.eq(0),
                     port.cmd.payload.addr.eq(cur), port.wdata.valid.eq(0),
                     # no request while orphaned beats drain: then a flush finds no
                     # live beat behind the dropped ones, and ``drop`` stays in range
                     req.ready.eq(tags.w_rdy & ~flush & ~dropping &
                                  ((left == 0) | ((left == 1) & c_acc))),
                     tags.w_data.eq(req.payload.tag), tags.w_en.eq(req.valid & req.ready)]
        with m.If(flush):
            m.d.sync += left.eq(0)
        with m.Elif(req.valid & req.ready):
            m.d.sync += [left.eq(B), cur.eq(req.payload.addr << shift)]
        with m.Elif(c_acc):
            m.d.sync += [left.eq(left - 1), cur.eq(cur + 1)]
        with m.If(flush):
            m.d.sync += [live.eq(0), drop.eq(drop - (arrive & dropping) + live - mine)]
        with m.Else():
            m.d.sync += [live.eq(live + c_acc - mine), drop.eq(drop - (arrive & dropping))]
        # assembly: beats arrive in order; the line leaves with its last
        line = Signal(B * d.port_bits)
        m.d.comb += port.rdata.ready.eq(1)
        got = mine & ~flush
        if B > 1:
            k = Signal(range(B))
            last = k == B - 1
            with m.If(flush):
                m.d.sync += k.eq(0)
            with m.Elif(got):
                m.d.sync += [k.eq(Mux(last, 0, k + 1)),
                             line.word_select(k, d.port_bits).eq(port.rdata.payload)]
        else:  # a beat is a line (DDR3's 128-bit port): no beat counter (it would be 0 bits)
            last = Const(1)
            with m.If(got):
                m.d.sync += line.eq(port.rdata.payload)
        done = Signal()
        m.d.sync += done.eq(got & last)
        m.d.comb += [resp.valid.eq(done & ~flush), resp.payload.data.eq(line[:self.width]),
                     resp.payload.tag.eq(tags.r_data), tags.r_en.eq(done)]
        return m


#: beats of write data a DramLineWriter queues behind the commands it has issued
LINE_WRITE_QUEUE = 4


class DramLineWriter(wiring.Component):
    """An engine's result lines written into DRAM (the writing counterpart of
    :class:`DramWeightPort`).

    Ports: ``w``: stream ``{addr, beats, data}``, a line of ``beats`` (1..``max_beats``)
    beats written from DRAM beat ``addr`` upwards, ``data``'s lowest ``port_bits`` first
    (bits past the line's beats are ignored), every byte enabled; taken while the
    previous line issues its last command, so lines stream at a beat per cycle when the
    port takes one. ``dram``: a requester port (e.g.
    :meth:`tritium.hdl.adapter.EngineBus.dram_port`); it only writes (its read data is
    never asked for). Commands run ahead of their data by up to
    :data:`LINE_WRITE_QUEUE` beats: a command is issued only when its data is queued, so
    the arbiter always finds the data of a write it granted. ``busy``: a line taken whose
    beats' data the port has not all accepted.

    ``flush`` (held as long as wanted, e.g. while the SoC's soft reset waits for the DRAM
    to be quiet): the line being written is dropped from its next command on, no command
    is issued, and lines offered are taken and dropped; the data of commands already
    issued still goes to the port (the arbiter waits for it), so ``busy`` falls once the
    queue is empty and a reset of the writer then leaves the port consistent.
    """

    def __init__(self, *, dram, width: int, max_beats: int):
        self.dram_cfg, self.width, self.max_beats = dram, width, max_beats
        super().__init__({
            "w": In(stream.Signature(data.StructLayout({
                "addr": dram.addr_bits, "beats": range(1, max_beats + 1), "data": width}))),
            "dram": Out(_dram_sig(dram).flip()),
            "busy": Out(1), "flush": In(1),
        })

    def elaborate(self, platform):
        m, d, port = Module(), self.dram_cfg, self.dram
        bits = d.port_bits
        job_v, addr = Signal(), Signal(d.addr_bits)
        left = Signal(range(self.max_beats + 1))
        line = Signal(max(self.width, bits) + bits)
        m.submodules.dq = dq = fifo.SyncFIFOBuffered(width=bits, depth=LINE_WRITE_QUEUE)
        c_acc = port.cmd.valid & port.cmd.ready
        take = self.w.valid & self.w.ready
        flush = self.flush
        m.d.comb += [port.cmd.valid.eq(job_v & dq.w_rdy & ~flush), port.cmd.payload.we.eq(1),
                     port.cmd.payload.addr.eq(addr),
                     dq.w_en.eq(c_acc), dq.w_data.eq(line[:bits]),
                     self.w.ready.eq(flush | ~job_v | ((left == 1) & c_acc)),
                     port.wdata.valid.eq(dq.r_rdy), port.wdata.payload.data.eq(dq.r_data),
                     port.wdata.payload.mask.eq((1 << (bits // 8)) - 1),
                     dq.r_en.eq(port.wdata.ready), port.rdata.ready.eq(1),
                     # the queue's level, not r_rdy: a beat just written shows on r_rdy
                     # a cycle or two later, and busy must not fall in between
                     self.busy.eq(job_v | (dq.level != 0))]
        with m.If(c_acc):
            m.d.sync += [addr.eq(addr + 1), left.eq(left - 1), line.eq(line >> bits)]
            with m.If(left == 1):
                m.d.sync += job_v.eq(0)
        with m.If(flush):
            m.d.sync += job_v.eq(0)
        with m.Elif(take):
            m.d.sync += [job_v.eq(1), addr.eq(self.w.payload.addr),
                         left.eq(self.w.payload.beats), line.eq(self.w.payload.data)]
        return m
