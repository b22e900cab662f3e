"""LiteDRAM behind the SoC's DRAM port: the simulated controller and the ULX3S board core.

Both cores are Migen modules built from LiteDRAM's parts and converted straight to Verilog
(not through ``litedram_gen``: its CPU-less core adds a Wishbone control bus, CSR banks and
a clock generator the simulated top does not want, and it leaves the power-up sequence to
software over that bus; a direct module has exactly the native port):

- **simulation core** (:func:`sim_core`): LiteDRAM's controller + crossbar with one native
  port + ``SDRAMPHYModel`` of the part (its banks are Verilog memories, so the whole DRAM
  is inside the Verilated model), one clock (``sys_clk``/``sys_rst``).
- **board core** (:func:`board_core`, ULX3S): the controller + ``GENSDRPHY`` with the SDRAM
  pads as top-level ports, plus a hardware sequencer (:func:`_hardware_init`) that plays
  LiteDRAM's power-up sequence for the part (:func:`init_steps`) into the DFI before
  handing it to the controller (docs/dram.md, Power-up initialisation).

The LiteDRAM module (geometry and timing) is made from the :data:`tritium.dram.PARTS`
entry, so the table is the one source of the timings the controller obeys; its rows are
cut to ``cfg.size_bytes`` (banks and columns, and so the address mapping of a sequential
stream, stay the part's).

The native port's address is in beats; LiteDRAM maps it ``ROW_BANK_COL``: the low
``col_bits - log2(burst)`` bits pick the column burst, the next ``log2(banks)`` the bank,
the rest the row (``burst`` = ``nphases`` for SDR, ``2 × nphases`` for DDR). The model
keeps bank ``b``'s data in the memory its ``BankModel`` reads, entry ``row × row_beats +
column burst``; the backdoor C++ (:func:`backdoor_cpp`) follows that mapping.

Generated files are cached under ``<tritium cache>/dram/<core>-<key>/`` (the key hashes
the part's table entry, the size, the versions of LiteDRAM, LiteX and Migen, and this
file), under a file lock, so a second build or a CI run does not regenerate them.
Generation needs no network.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

from amaranth import ClockSignal, Instance, Module, ResetSignal
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from tritium.dram import DramConfig, DramPart
from tritium.errors import ConfigError, ToolchainError

from .port import port_signature
from .readbuffer import ReadBuffer

#: bump when the layout of a cached entry changes
CACHE_FORMAT = 1

#: Verilator warnings the .vlt waives on the generated core (Migen's Verilog, not ours),
#: beyond the lint class it waives whole; with them a build needs no -Wno flag for it
VLT_WAIVERS = {
    "COMBDLY": "Migen writes every combinational always block with <=, meaning =",
    "INITIALDLY": "Migen's initial block starting its combinational processes uses <=",
}

#: LiteDRAM's memory type for a part's ``kind``
MEMTYPE = {"sdr": "SDR", "ddr3": "DDR3"}


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return " ".join(f"{p}={version(p)}" for p in ("litedram", "litex", "migen"))
    except PackageNotFoundError as e:
        raise ToolchainError(f"{e.name} is not installed; a LiteDRAM part needs the dram "
                             "extra: pip install -c constraints.txt -e '.[dram]' (or make "
                             "venv)") from None


def geometry(cfg: DramConfig) -> dict[str, int]:
    """Rows, banks and column bursts per row of ``cfg``'s DRAM, as LiteDRAM addresses it.

    ConfigError if ``cfg.size_bytes`` holds fewer than two rows per bank."""
    p = cfg.spec
    if p.kind not in MEMTYPE:
        raise ConfigError(f"DRAM part {p.name!r} is {p.kind!r}, not one LiteDRAM drives; "
                          f"choose one of kind {', '.join(MEMTYPE)}")
    row_bytes = (p.dq_bits // 8) << p.col_bits
    rows = cfg.size_bytes // (row_bytes * p.banks)
    if rows < 2:
        raise ConfigError(f"dram.size={cfg.size_bytes} holds fewer than 2 rows in each of "
                          f"{p.name}'s {p.banks} banks; use at least "
                          f"{2 * row_bytes * p.banks} bytes")
    return {"rows": rows, "banks": p.banks, "row_beats": p.row_beats}


def litedram_module(cfg: DramConfig):
    """LiteDRAM's ``SDRAMModule`` for ``cfg``: the part's class from ``litedram.modules``
    with the table's timings and the rows cut to ``cfg.size_bytes``."""
    from litedram import modules

    p = cfg.spec
    base = getattr(modules, p.litedram_module)
    grade = base.speedgrade_timings["default"]
    tech = base.technology_timings
    attrs = {
        "nrows": geometry(cfg)["rows"],
        "technology_timings": modules._TechnologyTimings(
            tREFI=p.trefi_ns, tWTR=tech.tWTR, tCCD=tech.tCCD, tRRD=tech.tRRD,
            tZQCS=tech.tZQCS),
        "speedgrade_timings": {"default": modules._SpeedgradeTimings(
            tRP=p.trp_ns, tRCD=p.trcd_ns, tWR=p.twr_ns, tRFC=(None, p.trfc_ns),
            tFAW=grade.tFAW, tRAS=p.tras_ns)},
    }
    cls = type(f"Tritium_{p.name}", (base,), attrs)
    module = cls(p.clk_hz, f"1:{p.nphases}")
    # the chip's address pins, not the cut rows: A10 is the precharge-all bit
    module.geom_settings.addressbits = max(p.row_bits, p.col_bits)
    return module


def _phy_settings(cfg: DramConfig):
    from litedram.phy.model import get_sdram_phy_settings

    p = cfg.spec
    settings = get_sdram_phy_settings(memtype=MEMTYPE[p.kind], data_width=p.dq_bits,
                                      clk_freq=p.clk_hz)
    if settings.cl != p.cl:
        raise ConfigError(f"LiteDRAM's PHY model runs {p.name} with CL={settings.cl} at "
                          f"{p.clk_hz / 1e6:g} MHz, the parts table says CL={p.cl}; fix "
                          "the table's cl or clk_hz")
    return settings


def _native_ios(port, prefix: str = "port_"):
    """Top-level signals of a LiteDRAM native port, named ``port_<stream>_<field>``."""
    ios = {}
    for stream, fields in (("cmd", ("valid", "ready", "we", "addr")),
                           ("wdata", ("valid", "ready", "data", "we")),
                           ("rdata", ("valid", "ready", "data"))):
        for f in fields:
            ios[f"{prefix}{stream}_{f}"] = getattr(getattr(port, stream), f)
    return ios


def _controller(phy, module):
    from litedram.core import ControllerSettings, LiteDRAMCore

    # a fresh settings object: LiteDRAM's default argument is shared and mutated
    return LiteDRAMCore(phy=phy, geom_settings=module.geom_settings,
                        timing_settings=module.timing_settings, clk_freq=module.clk_freq,
                        controller_settings=ControllerSettings())


def _generate_sim(cfg: DramConfig, name: str) -> tuple[str, dict]:
    from migen import ClockDomain, Module as MModule
    from migen.fhdl.verilog import convert
    from litedram.phy.model import SDRAMPHYModel

    module = litedram_module(cfg)

    class Top(MModule):
        def __init__(self):
            self.clock_domains.cd_sys = ClockDomain("sys")
            self.submodules.phy = SDRAMPHYModel(module, settings=_phy_settings(cfg),
                                                clk_freq=cfg.spec.clk_hz)
            self.submodules.core = _controller(self.phy, module)
            self.port = self.core.crossbar.get_port()

    top = Top()
    ios = _native_ios(top.port)
    for n, s in ios.items():
        s.name_override = n
    out = convert(top, ios=set(ios.values()) | {top.cd_sys.clk, top.cd_sys.rst}, name=name)
    text = str(out)
    g = geometry(cfg)
    depth = g["rows"] * g["row_beats"]
    # bank b's memory is the one its BankModel (phy_bankmodel<b>) reads
    mems = []
    for b in range(g["banks"]):
        hit = re.search(rf"^assign phy_bankmodel{b}_read_port_dat_r = (\w+)\[", text, re.M)
        decl = hit and re.search(rf"^reg \[{cfg.port_bits - 1}:0\] {hit.group(1)}"
                                 rf"\[0:{depth - 1}\];", text, re.M)
        if not decl:
            raise ToolchainError(f"no memory of depth {depth} for bank {b} in the generated "
                                 f"{name}; the LiteDRAM version differs from the one pinned "
                                 "(constraints.txt)")
        mems.append(hit.group(1))
    widths = (len(top.port.cmd.addr), len(top.port.wdata.data))
    if widths != (cfg.addr_bits, cfg.port_bits):
        raise ToolchainError(f"LiteDRAM's native port for {name} is {widths[0]} address / "
                             f"{widths[1]} data bits, the DRAM config says {cfg.addr_bits} / "
                             f"{cfg.port_bits}; the parts table disagrees with LiteDRAM")
    return text, {"bank_mems": mems}


def _cache_dir() -> Path:
    base = os.environ.get("TRITIUM_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tritium")
    return Path(base) / "dram"


@contextlib.contextmanager
def _slot(name: str, key: str):
    """``<cache>/dram/<name>-<key>``, locked; yields (dir, hit). A miss gets a fresh dir
    and is marked BUILT only when the body finishes."""
    d = _cache_dir() / f"{name}-{key}"
    d.parent.mkdir(parents=True, exist_ok=True)
    with open(d.parent / f"{name}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (d / "BUILT").exists():
            yield d, True
            return
        if d.exists():
            shutil.rmtree(d)
        d.mkdir()
        yield d, False
        (d / "BUILT").write_text("")


def _key(*parts) -> str:
    h = hashlib.sha256()
    for p in (str(CACHE_FORMAT), _versions(), Path(__file__).read_text(), *map(str, parts)):
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class SimCore:
    """A generated simulation core: its Verilog, its Verilator configuration and facts."""

    cfg: DramConfig
    module: str
    verilog: Path
    vlt: Path
    bank_mems: tuple[str, ...]


def sim_core(cfg: DramConfig) -> SimCore:
    """Generate (once per content, cached) the simulation core for ``cfg``.

    Module ``litedram_sim_<part>_<size>``: inputs ``sys_clk``, ``sys_rst``; the native
    port as ``port_cmd_{valid,ready,we,addr}``, ``port_wdata_{valid,ready,data,we}``,
    ``port_rdata_{valid,ready,data}`` (``we``: byte enables). The ``.vlt`` makes the bank
    memories public for the backdoor. Raises ConfigError for a part LiteDRAM does not
    drive or a size below two rows per bank, ToolchainError if LiteDRAM is missing."""
    p = cfg.spec
    name = f"litedram_sim_{p.name}_{cfg.size_bytes >> 10}k"
    geometry(cfg)
    with _slot(name, _key(repr(p), cfg.size_bytes)) as (d, hit):
        if not hit:
            text, info = _generate_sim(cfg, name)
            (d / f"{name}.v").write_text(text)
            vlt = ["`verilator_config"] + [f'lint_off -rule {r} -file "*/{name}.v"'
                                           for r in VLT_WAIVERS] + [
                f'lint_off -file "*/{name}.v"']
            vlt += [f'public_flat_rw -module "{name}" -var "{m}"' for m in info["bank_mems"]]
            (d / f"{name}.vlt").write_text("\n".join(vlt) + "\n")
            (d / "info.json").write_text(json.dumps(info))
        info = json.loads((d / "info.json").read_text())
    return SimCore(cfg, name, d / f"{name}.v", d / f"{name}.vlt", tuple(info["bank_mems"]))


class SimController(wiring.Component):
    """The LiteDRAM simulation core as an Amaranth component.

    ``port``: :func:`tritium.hdl.dram.port_signature` (controller side); clock and reset
    from the ``sync`` domain. Latency and throughput are LiteDRAM's (see sim/dram.py for
    the timing model); a command is accepted when ``cmd.ready``; read data returns in
    command order. LiteDRAM's native port has no read back-pressure, so a
    :class:`~tritium.hdl.dram.readbuffer.ReadBuffer` stands between it and ``port``:
    ``rdata.ready`` is honoured (a stalled requester loses no beat; reads wait for
    credit instead), at no added latency for a requester that is ready."""

    def __init__(self, cfg: DramConfig, core: SimCore):
        self.cfg, self.core = cfg, core
        super().__init__({"port": Out(port_signature(cfg))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.rbuf = rbuf = ReadBuffer(self.cfg)
        wiring.connect(m, wiring.flipped(self.port), rbuf.port)
        p = rbuf.ctrl
        m.submodules.litedram = Instance(
            self.core.module,
            i_sys_clk=ClockSignal(), i_sys_rst=ResetSignal(),
            i_port_cmd_valid=p.cmd.valid, o_port_cmd_ready=p.cmd.ready,
            i_port_cmd_we=p.cmd.payload.we, i_port_cmd_addr=p.cmd.payload.addr,
            i_port_wdata_valid=p.wdata.valid, o_port_wdata_ready=p.wdata.ready,
            i_port_wdata_data=p.wdata.payload.data, i_port_wdata_we=p.wdata.payload.mask,
            o_port_rdata_valid=p.rdata.valid, i_port_rdata_ready=p.rdata.ready,
            o_port_rdata_data=p.rdata.payload)
        return m


BACKDOOR_CPP = r"""
// tritium: direct access to the LiteDRAM PHY model's bank memories (byte address =
// native-port beat x BEAT_BYTES + byte in beat; ROW_BANK_COL mapping). The memories are
// public through the core's .vlt (public_flat_rw).
#include <cstdint>
#include <cstddef>
#include "Vtop___024root.h"

template<class T> static inline void dram_beat_get(T* top, uint64_t beat, uint8_t* out) {
    auto* r = top->rootp;
    const uint64_t col = beat % ROW_BEATS, bank = beat / ROW_BEATS % BANKS,
                   entry = beat / (ROW_BEATS * BANKS) * ROW_BEATS + col;
    switch (bank) {
BANK_GET_CASES
    }
}
template<class T> static inline void dram_beat_put(T* top, uint64_t beat, const uint8_t* in) {
    auto* r = top->rootp;
    const uint64_t col = beat % ROW_BEATS, bank = beat / ROW_BEATS % BANKS,
                   entry = beat / (ROW_BEATS * BANKS) * ROW_BEATS + col;
    switch (bank) {
BANK_PUT_CASES
    }
}
template<class T> void dram_backdoor_write(T* top, uint64_t byte_addr, const uint8_t* p,
                                           size_t n) {
    uint8_t beat[BEAT_BYTES];
    while (n) {
        const uint64_t b = byte_addr / BEAT_BYTES, off = byte_addr % BEAT_BYTES;
        const size_t k = n < BEAT_BYTES - off ? n : BEAT_BYTES - off;
        dram_beat_get(top, b, beat);
        for (size_t i = 0; i < k; i++) beat[off + i] = p[i];
        dram_beat_put(top, b, beat);
        byte_addr += k; p += k; n -= k;
    }
}
template<class T> void dram_backdoor_read(T* top, uint64_t byte_addr, uint8_t* p, size_t n) {
    uint8_t beat[BEAT_BYTES];
    while (n) {
        const uint64_t b = byte_addr / BEAT_BYTES, off = byte_addr % BEAT_BYTES;
        const size_t k = n < BEAT_BYTES - off ? n : BEAT_BYTES - off;
        dram_beat_get(top, b, beat);
        for (size_t i = 0; i < k; i++) p[i] = beat[off + i];
        byte_addr += k; p += k; n -= k;
    }
}
"""


def backdoor_cpp(core: SimCore, path: str) -> str:
    """The backdoor C++ (:data:`BACKDOOR_CPP`) for ``core`` at Verilator path ``path``
    (the core's instance, ``<top>__DOT__<hier>__DOT__litedram``). Byte addresses are not
    checked against the DRAM's size: the caller does that.

    Verilator stores a word of ≤ 64 bits as an integer and a wider one as 32-bit words,
    least significant first; both are handled."""
    cfg = core.cfg
    g = geometry(cfg)
    nbytes = cfg.word_bytes
    gets, puts = [], []
    for b, mem in enumerate(core.bank_mems):
        ref = f"r->{path}__DOT__{mem}[entry]"
        if cfg.port_bits <= 64:
            gets.append(f"    case {b}: {{ uint64_t w = {ref}; for (size_t i = 0; i < "
                        f"{nbytes}; i++) out[i] = (w >> (8 * i)) & 0xff; break; }}")
            puts.append(f"    case {b}: {{ uint64_t w = 0; for (size_t i = 0; i < {nbytes};"
                        f" i++) w |= (uint64_t)in[i] << (8 * i); {ref} = w; break; }}")
        else:
            gets.append(f"    case {b}: {{ for (size_t i = 0; i < {nbytes}; i++) out[i] = "
                        f"({ref}[i / 4] >> (8 * (i % 4))) & 0xff; break; }}")
            puts.append(f"    case {b}: {{ for (size_t i = 0; i < {nbytes}; i += 4) "
                        f"{ref}[i / 4] = (uint32_t)in[i] | (uint32_t)in[i + 1] << 8 | "
                        f"(uint32_t)in[i + 2] << 16 | (uint32_t)in[i + 3] << 24; break; }}")
    text = BACKDOOR_CPP.replace("BANK_GET_CASES", "\n".join(gets))
    text = text.replace("BANK_PUT_CASES", "\n".join(puts))
    consts = (f"static const uint64_t ROW_BEATS = {g['row_beats']}, BANKS = {g['banks']};\n"
              f"static const size_t BEAT_BYTES = {nbytes};\n")
    text = text.replace('#include "Vtop___024root.h"\n',
                        '#include "Vtop___024root.h"\n' + consts)
    return text


@dataclasses.dataclass(frozen=True)
class SimControllerBundle:
    """What :func:`tritium.hdl.dram.sim_controller` returns for a LiteDRAM part.

    ``sources``: the generated Verilog and, last, its ``.vlt`` (Verilator reads both from
    its command line; ``vlt`` names the latter too). ``backdoor_cpp`` assumes the
    controller is instantiated as ``dram`` in the Verilated top module (its instance
    ``litedram`` inside): use :func:`backdoor_cpp` for another hierarchy."""

    component: SimController
    sources: list[Path]
    vlt: Path
    backdoor_cpp: str
    core: SimCore


def sim_controller(cfg: DramConfig, *, top: str = "tritium_soc",
                   hier: str = "dram") -> SimControllerBundle:
    """The simulated LiteDRAM controller for ``cfg`` (see the package's contract).

    ``top``/``hier``: the Verilated top module's name and the controller's instance path
    in it (Amaranth instance names joined by ``__DOT__``), which the backdoor C++ names."""
    core = sim_core(cfg)
    path = f"{top}__DOT__{hier}__DOT__litedram" if hier else f"{top}__DOT__litedram"
    return SimControllerBundle(SimController(cfg, core), [core.verilog, core.vlt], core.vlt,
                               backdoor_cpp(core, path), core)


# Board core -------------------------------------------------------------------------------

#: LiteDRAM's init-table command strings as (cs, ras, cas, we) asserted
_INIT_BITS = {"DFII_COMMAND_CS": 0, "DFII_COMMAND_RAS": 1, "DFII_COMMAND_CAS": 2,
              "DFII_COMMAND_WE": 3}
#: clocks every init command is followed by at least: covers tRP, tMRD and tRFC of the
#: SDR parts at their board clock (LiteDRAM's table gives BIOS loop counts, some 0)
INIT_MIN_WAIT = 16


def init_steps(phy_settings, timing_settings) -> list[tuple[str, int, int, int, int]]:
    """LiteDRAM's power-up sequence for the PHY as hardware steps:
    ``(comment, command bits (cs, ras, cas, we) or -1 for "raise CKE", address, bank,
    wait clocks)``. The waits are LiteDRAM's table's, at least :data:`INIT_MIN_WAIT`; the
    first (CKE high) is 20000 clocks, 400 us at 50 MHz, above the 100 us the SDR
    datasheets ask before the first command."""
    from litedram.init import get_sdram_phy_init_sequence

    seq, _ = get_sdram_phy_init_sequence(phy_settings, timing_settings)
    steps = []
    for comment, a, ba, cmd, delay in seq:
        names = cmd.split("|")
        if all(n.startswith("DFII_CONTROL") for n in names):
            bits = -1
        else:
            bits = sum(1 << _INIT_BITS[n] for n in names)
        steps.append((comment, bits, a, ba, max(delay, INIT_MIN_WAIT)))
    return steps


#: clocks CKE stays low after reset before the sequence raises it
INIT_CKE_LOW = 256


def _hardware_init(dfii, steps, cke_low: int = INIT_CKE_LOW):
    """A Migen FSM that holds CKE low ``cke_low`` clocks, plays ``steps`` into the DFII's
    external DFI (NOPs between commands), then hands the DFI to the controller and raises
    ``done``."""
    from migen import FSM, If, Module as MModule, NextState, NextValue, Signal

    class HardwareInit(MModule):
        def __init__(self):
            self.done = Signal()
            p = dfii.ext_dfi.phases[0]
            cke = Signal()
            wait = Signal(max=max([s[4] for s in steps] + [cke_low]) + 1, reset=cke_low)
            self.comb += [dfii.ext_dfi_sel.eq(~self.done), p.cke.eq(cke),
                          # a NOP unless a step issues a command
                          p.cs_n.eq(1), p.ras_n.eq(1), p.cas_n.eq(1), p.we_n.eq(1)]
            fsm = FSM(reset_state="CKE_LOW")
            self.submodules += fsm
            fsm.act("CKE_LOW", NextValue(wait, wait - 1), If(wait == 0, NextState("STEP0")))
            for i, (_, bits, a, ba, delay) in enumerate(steps):
                nxt = f"WAIT{i}"
                actions = [NextValue(wait, delay), NextState(nxt)]
                if bits < 0:
                    actions.append(NextValue(cke, 1))
                    fsm.act(f"STEP{i}", *actions)
                else:
                    fsm.act(f"STEP{i}", p.address.eq(a), p.bank.eq(ba),
                            p.cs_n.eq(not bits & 1), p.ras_n.eq(not bits & 2),
                            p.cas_n.eq(not bits & 4), p.we_n.eq(not bits & 8), *actions)
                after = f"STEP{i + 1}" if i + 1 < len(steps) else "DONE"
                fsm.act(nxt, NextValue(wait, wait - 1), If(wait == 0, NextState(after)))
            fsm.act("DONE", self.done.eq(1))

    return HardwareInit()


def _generate_board(cfg: DramConfig, name: str) -> str:
    from migen import ClockDomain, Module as MModule, Record, Signal
    from migen.fhdl.verilog import convert
    from litedram.phy import GENSDRPHY
    from litex.build.io import SDRTristate, SDRInput, SDROutput

    p = cfg.spec
    if p.kind != "sdr":
        raise ConfigError(f"the board core drives SDR SDRAM with GENSDRPHY; {p.name} is "
                          f"{p.kind}")
    module = litedram_module(cfg)
    addr_pins = max(p.row_bits, p.col_bits)
    pads = Record([("a", addr_pins), ("ba", (p.banks - 1).bit_length()), ("cs_n", 1),
                   ("cke", 1), ("ras_n", 1), ("cas_n", 1), ("we_n", 1),
                   ("dm", p.dq_bits // 8), ("dq", p.dq_bits)], name="sdram")
    dq_o, dq_oe, dq_i = (Signal(p.dq_bits, name_override=f"sdram_dq_{s}")
                         for s in ("o", "oe", "i"))

    class SplitTristate(MModule):
        """GENSDRPHY's DQ tristate, registered as LiteX's generic lowering does, with
        o / oe / i as separate top-level ports: the board's own I/O buffer drives the pin."""

        def __init__(self, dr):
            bit = dr.io.start if hasattr(dr.io, "start") else 0
            self.specials += SDROutput(dr.o, dq_o[bit], dr.clk)
            self.specials += SDROutput(dr.oe, dq_oe[bit], dr.clk)
            self.specials += SDRInput(dq_i[bit], dr.i, dr.clk)

    class SplitTristateLowering:
        @staticmethod
        def lower(dr):
            return SplitTristate(dr)

    class Top(MModule):
        def __init__(self):
            self.clock_domains.cd_sys = ClockDomain("sys")
            self.clock_domains.cd_user = ClockDomain("user")
            self.submodules.phy = GENSDRPHY(pads, p.clk_hz, cl=p.cl)
            self.submodules.core = _controller(self.phy, module)
            self.submodules.init = _hardware_init(
                self.core.dfii, init_steps(self.phy.settings, module.timing_settings))
            self.port = self.core.crossbar.get_port(clock_domain="user")
            self.init_done = Signal(name_override="init_done")
            self.comb += self.init_done.eq(self.init.done)

    top = Top()
    ios = _native_ios(top.port)
    # the port is closed until the memory is initialised, as litedram_gen's user ports are
    gated = {}
    for n in ("cmd_valid", "wdata_valid"):
        outer = Signal(name_override=f"port_{n}")
        top.comb += ios[f"port_{n}"].eq(outer & top.init_done)
        gated[f"port_{n}"] = outer
    for n in ("cmd_ready", "wdata_ready"):
        outer = Signal(name_override=f"port_{n}")
        top.comb += outer.eq(ios[f"port_{n}"] & top.init_done)
        gated[f"port_{n}"] = outer
    for n, s in ios.items():
        if n not in gated:
            s.name_override = n
    ios.update(gated)
    for f in ("a", "ba", "cs_n", "cke", "ras_n", "cas_n", "we_n", "dm"):
        getattr(pads, f).name_override = f"sdram_{f}"
    signals = (set(ios.values()) | {getattr(pads, f) for f in ("a", "ba", "cs_n", "cke",
               "ras_n", "cas_n", "we_n", "dm")} | {dq_o, dq_oe, dq_i, top.init_done,
               top.cd_sys.clk, top.cd_sys.rst, top.cd_user.clk, top.cd_user.rst})
    return str(convert(top, ios=signals, name=name,
                       special_overrides={SDRTristate: SplitTristateLowering}))


def board_core(cfg: DramConfig) -> Path:
    """Generate (once per content, cached) the board core for ``cfg``'s SDR part; returns
    its Verilog file. Module ``litedram_board_<part>``: ``sys_clk``/``sys_rst`` (the
    memory clock, the part's ``clk_hz``), ``user_clk``/``user_rst`` (the SoC's clock:
    LiteDRAM's native-port clock-domain crossing sits inside), the native port as in
    :func:`sim_core` (in the user domain, closed until ``init_done``), the SDRAM pins
    ``sdram_{a,ba,cs_n,cke,ras_n,cas_n,we_n,dm}`` and the data pins split into
    ``sdram_dq_{o,oe,i}`` (all registered in the memory clock). The SDRAM's own clock pin
    is the board's: the memory clock shifted by 90 degrees (boards/dram.py).
    ConfigError for a part that is not SDR."""
    name = f"litedram_board_{cfg.spec.name}"
    with _slot(name, _key("board", repr(cfg.spec), cfg.size_bytes)) as (d, hit):
        if not hit:
            (d / f"{name}.v").write_text(_generate_board(cfg, name))
    return d / f"{name}.v"


class BoardController(wiring.Component):
    """The board core as an Amaranth component.

    ``port``: :func:`port_signature` (controller side) in the ``sync`` domain; the memory
    runs in the ``dram`` domain (the part's clock). ``pads``: the SDRAM pins as plain
    signals (``dq_o``/``dq_oe``/``dq_i`` for the data pins); ``init_done``: high once the
    power-up sequence has run (the port accepts nothing before). ``rdata.ready`` is
    honoured by a :class:`~tritium.hdl.dram.readbuffer.ReadBuffer` in front of LiteDRAM,
    which returns read data at its own pace (as :class:`SimController`)."""

    def __init__(self, cfg: DramConfig):
        p = cfg.spec
        self.cfg = cfg
        self.verilog = board_core(cfg)
        self.module = f"litedram_board_{p.name}"
        addr_pins = max(p.row_bits, p.col_bits)
        super().__init__({
            "port": Out(port_signature(cfg)), "init_done": Out(1),
            "a": Out(addr_pins), "ba": Out((p.banks - 1).bit_length()), "cs_n": Out(1),
            "cke": Out(1), "ras_n": Out(1), "cas_n": Out(1), "we_n": Out(1),
            "dm": Out(p.dq_bits // 8), "dq_o": Out(p.dq_bits), "dq_oe": Out(p.dq_bits),
            "dq_i": wiring.In(p.dq_bits)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.rbuf = rbuf = ReadBuffer(self.cfg)
        wiring.connect(m, wiring.flipped(self.port), rbuf.port)
        p = rbuf.ctrl
        if platform is not None:
            platform.add_file(self.verilog.name, self.verilog.read_text())
        m.submodules.litedram = Instance(
            self.module,
            i_sys_clk=ClockSignal("dram"), i_sys_rst=ResetSignal("dram"),
            i_user_clk=ClockSignal(), i_user_rst=ResetSignal(allow_reset_less=True),
            i_port_cmd_valid=p.cmd.valid, o_port_cmd_ready=p.cmd.ready,
            i_port_cmd_we=p.cmd.payload.we, i_port_cmd_addr=p.cmd.payload.addr,
            i_port_wdata_valid=p.wdata.valid, o_port_wdata_ready=p.wdata.ready,
            i_port_wdata_data=p.wdata.payload.data, i_port_wdata_we=p.wdata.payload.mask,
            o_port_rdata_valid=p.rdata.valid, i_port_rdata_ready=p.rdata.ready,
            o_port_rdata_data=p.rdata.payload, o_init_done=self.init_done,
            o_sdram_a=self.a, o_sdram_ba=self.ba, o_sdram_cs_n=self.cs_n,
            o_sdram_cke=self.cke, o_sdram_ras_n=self.ras_n, o_sdram_cas_n=self.cas_n,
            o_sdram_we_n=self.we_n, o_sdram_dm=self.dm, o_sdram_dq_o=self.dq_o,
            o_sdram_dq_oe=self.dq_oe, i_sdram_dq_i=self.dq_i)
        return m
