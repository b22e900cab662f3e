"""The ideal memory part's simulated controller: fixed latency, one beat per cycle.

:class:`IdealController` implements :func:`tritium.hdl.dram.port_signature` (the
controller's side, member ``port``) for a :class:`~tritium.dram.DramConfig` whose part is
``ideal``:

- a read command accepted in cycle t puts its beat on ``rdata`` in cycle
  t + ``part.latency`` (if ``rdata`` is not back-pressured); reads answer in order;
- one command per cycle; a write command is accepted with its ``wdata`` in the same
  cycle, or alone (then ``cmd`` waits until its ``wdata`` has come);
- ``rdata`` may be back-pressured: a read is accepted only while the response buffer
  has room for every read in flight (credits), so nothing is lost and ``cmd.ready`` drops
  instead.

The storage (``storage="verilog"``, what the served simulation builds) is a plain Verilog
array (:data:`STORE_VERILOG`, one of the ``sources``), not ``amaranth.lib.memory``: Amaranth writes a memory's initial contents as one Verilog
statement per word, which for a 64 MB part is 16M lines and minutes of conversion
(measured: a 1M-word memory, 28 MB of Verilog, 10 minutes). The array is made public to
the backdoor by a Verilator ``.vlt`` rule (``public_flat_rw``), nothing else is.
``storage="amaranth"`` puts the same read/write ports on ``amaranth.lib.memory``, for
Amaranth's own simulator (which cannot run the Verilog array) at small sizes; the
controller around it is the same.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from amaranth import ClockSignal, Instance, Module, Mux, Signal
from amaranth.lib import fifo, memory, wiring
from amaranth.lib.wiring import Out

from tritium.dram import DramConfig

from .port import port_signature

#: the Verilog module holding the ideal part's bytes (a synchronous read port, a write
#: port with byte enables)
STORE_MODULE = "tritium_dram_ideal_store"
STORE_VERILOG = r"""
// tritium: storage of the ideal DRAM part (hdl/dram/ideal.py)
module tritium_dram_ideal_store #(parameter AW = 4, parameter DW = 32) (
    input clk,
    input [AW-1:0] raddr, output reg [DW-1:0] rdata,
    input we, input [AW-1:0] waddr, input [DW-1:0] wdata, input [DW/8-1:0] wmask);
  reg [DW-1:0] mem [0:(1 << AW) - 1];
  integer i;
  always @(posedge clk) begin
    rdata <= mem[raddr];
    if (we)
      for (i = 0; i < DW / 8; i = i + 1)
        if (wmask[i]) mem[waddr][8 * i +: 8] <= wdata[8 * i +: 8];
  end
endmodule
"""
STORE_VLT = f"""`verilator_config
lint_off -file "*/{STORE_MODULE}.v"
public_flat_rw -module "{STORE_MODULE}" -var "mem"
"""


class IdealController(wiring.Component):
    """See the module docstring. ``port``: the controller's side of the native port."""

    def __init__(self, cfg: DramConfig, *, storage: str = "verilog"):
        if storage not in ("verilog", "amaranth"):
            raise ValueError(f"storage is 'verilog' or 'amaranth', not {storage!r}")
        self.cfg, self.storage = cfg, storage
        self.latency = cfg.spec.latency
        if self.latency < 2:
            raise ValueError("the ideal part's controller needs a latency of 2 cycles or more")
        super().__init__({"port": Out(port_signature(cfg))})

    def elaborate(self, platform):
        m, cfg, p = Module(), self.cfg, self.port
        bits, lat = cfg.port_bits, self.latency
        # responses in flight (accepted reads whose beat is not yet taken): the buffer
        # holds every one, so a read may be accepted only while there is room. A credit
        # comes back the cycle after its beat is taken (latency + 1 after the read), so
        # latency + 2 keep one read a cycle going
        depth = lat + 2
        m.submodules.resp = resp = fifo.SyncFIFO(width=bits, depth=depth)
        inflight = Signal(range(depth + 1))
        pend_w, pend_addr = Signal(), Signal(cfg.addr_bits)

        raddr, rdata = Signal(cfg.addr_bits), Signal(bits)
        we, waddr = Signal(), Signal(cfg.addr_bits)
        wdata, wmask = Signal(bits), Signal(bits // 8)
        if self.storage == "verilog":
            m.submodules.store = Instance(
                STORE_MODULE, p_AW=cfg.addr_bits, p_DW=bits, i_clk=ClockSignal(),
                i_raddr=raddr, o_rdata=rdata, i_we=we, i_waddr=waddr, i_wdata=wdata,
                i_wmask=wmask)
        else:  # the same ports on amaranth.lib.memory (Amaranth's simulator; small sizes)
            m.submodules.store = store = memory.Memory(shape=bits, depth=1 << cfg.addr_bits,
                                                       init=[])
            rp, wp = store.read_port(), store.write_port(granularity=8)
            m.d.comb += [rp.addr.eq(raddr), rdata.eq(rp.data), wp.addr.eq(waddr),
                         wp.data.eq(wdata), wp.en.eq(Mux(we, wmask, 0))]

        cmd = p.cmd
        is_w = cmd.payload.we
        m.d.comb += cmd.ready.eq(~pend_w & (is_w | (inflight < depth)))
        take = cmd.valid & cmd.ready
        take_r = take & ~is_w
        # a write's data: with its command, or later while the command waits for it
        m.d.comb += p.wdata.ready.eq(pend_w | (cmd.valid & is_w & ~pend_w))
        take_d = p.wdata.valid & p.wdata.ready
        with m.If(take & is_w & ~p.wdata.valid):
            m.d.sync += [pend_w.eq(1), pend_addr.eq(cmd.payload.addr)]
        with m.If(pend_w & take_d):
            m.d.sync += pend_w.eq(0)
        m.d.comb += [raddr.eq(cmd.payload.addr), we.eq(take_d),
                     waddr.eq(Mux(pend_w, pend_addr, cmd.payload.addr)),
                     wdata.eq(p.wdata.payload.data), wmask.eq(p.wdata.payload.mask)]

        # the store's read register is stage 1, lat - 2 more stages of delay, the response
        # buffer (readable the cycle after its write) the last
        valid = Signal()
        m.d.sync += valid.eq(take_r)
        data = rdata
        for k in range(lat - 2):
            v2, d2 = Signal(name=f"rv{k}"), Signal(bits, name=f"rd{k}")
            m.d.sync += [v2.eq(valid), d2.eq(data)]
            valid, data = v2, d2
        m.d.comb += [resp.w_en.eq(valid), resp.w_data.eq(data),
                     p.rdata.valid.eq(resp.r_rdy), p.rdata.payload.eq(resp.r_data),
                     resp.r_en.eq(p.rdata.ready)]
        m.d.sync += inflight.eq(inflight + take_r - (p.rdata.valid & p.rdata.ready))
        return m


BACKDOOR_CPP = r"""
// tritium: direct access to the ideal DRAM part's storage (byte address = beat x
// BEAT_BYTES + byte in beat), public through the part's .vlt (public_flat_rw).
#include <cstdint>
#include <cstddef>
#include "Vtop___024root.h"
static const size_t BEAT_BYTES = BEAT_BYTES_VALUE;
template<class T> void dram_backdoor_write(T* top, uint64_t byte_addr, const uint8_t* p,
                                           size_t n) {
    auto& mem = top->rootp->MEM_PATH;
    for (size_t i = 0; i < n; i++, byte_addr++) {
        auto& w = mem[byte_addr / BEAT_BYTES];
        const unsigned sh = 8 * (byte_addr % BEAT_BYTES);
        WORD_PUT
    }
}
template<class T> void dram_backdoor_read(T* top, uint64_t byte_addr, uint8_t* p, size_t n) {
    auto& mem = top->rootp->MEM_PATH;
    for (size_t i = 0; i < n; i++, byte_addr++) {
        const auto& w = mem[byte_addr / BEAT_BYTES];
        const unsigned sh = 8 * (byte_addr % BEAT_BYTES);
        WORD_GET
    }
}
"""


def backdoor_cpp(cfg: DramConfig, path: str) -> str:
    """The backdoor C++ for the store at Verilator path ``path`` (``top__DOT__dram``):
    Verilator holds a word of <= 64 bits as an integer, a wider one as 32-bit words, least
    significant first."""
    if cfg.port_bits <= 64:
        put = "w = (w & ~((decltype(+w))0xff << sh)) | ((decltype(+w))p[i] << sh);"
        get = "p[i] = (uint8_t)(w >> sh);"
    else:
        put = ("w[sh / 32] = (w[sh / 32] & ~(0xffu << (sh % 32))) | "
               "((uint32_t)p[i] << (sh % 32));")
        get = "p[i] = (uint8_t)(w[sh / 32] >> (sh % 32));"
    return (BACKDOOR_CPP.replace("BEAT_BYTES_VALUE", str(cfg.word_bytes))
            .replace("MEM_PATH", f"{path}__DOT__store__DOT__mem")
            .replace("WORD_PUT", put).replace("WORD_GET", get))


@dataclasses.dataclass(frozen=True)
class IdealBundle:
    """What :func:`tritium.hdl.dram.sim_controller` returns for the ideal part: the
    component (instantiate it as ``dram`` in the Verilated top), the store's Verilog and
    its ``.vlt`` (``sources``), the backdoor C++."""

    component: IdealController
    sources: list[Path]
    backdoor_cpp: str


def sim_controller(cfg: DramConfig, *, top: str = "tritium_soc",
                   hier: str = "dram") -> IdealBundle:
    """The ideal part's simulated controller for ``cfg`` (the package's contract).
    ``top``/``hier``: the Verilated top module and the controller's instance path in it.
    The store's two files are written once per content under the system's temporary
    directory (the Verilator build copies what it reads into its own cache entry)."""
    import os
    import tempfile

    key = hashlib.sha256((STORE_VERILOG + STORE_VLT).encode()).hexdigest()[:12]
    d = Path(tempfile.gettempdir()) / f"tritium-dram-ideal-{key}"
    d.mkdir(parents=True, exist_ok=True)
    files = [(d / f"{STORE_MODULE}.v", STORE_VERILOG), (d / f"{STORE_MODULE}.vlt", STORE_VLT)]
    for path, body in files:
        if not path.is_file() or path.read_text() != body:
            # written whole, then renamed: a concurrent builder never reads half a file
            fd, tmp = tempfile.mkstemp(dir=d)
            with os.fdopen(fd, "w") as f:
                f.write(body)
            os.replace(tmp, path)
    path = f"{top}__DOT__{hier}" if hier else top
    return IdealBundle(IdealController(cfg), [p for p, _ in files], backdoor_cpp(cfg, path))
