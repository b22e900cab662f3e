"""The board side of the SDRAM: LiteDRAM's power-up sequence as the hardware sequencer
plays it, the PLL settings, and the board's DRAM self-test run against LiteDRAM's
simulated controller under Verilator (it passes, and a corrupted byte fails it)."""

from __future__ import annotations

import subprocess

import pytest

from tritium.dram import DramConfig
from tritium.errors import ConfigError

ULX3S = DramConfig(part="mt48lc16m16")


def _settings():
    from litedram.phy import GENSDRPHY
    from migen import Record

    from tritium.hdl.dram.litedram import litedram_module

    p = ULX3S.spec
    pads = Record([("a", 13), ("ba", 2), ("cs_n", 1), ("cke", 1), ("ras_n", 1),
                   ("cas_n", 1), ("we_n", 1), ("dm", 2), ("dq", 16)])
    phy = GENSDRPHY(pads, p.clk_hz, cl=p.cl)
    return phy.settings, litedram_module(ULX3S).timing_settings


def test_the_sdr_power_up_sequence():
    from tritium.hdl.dram.litedram import init_steps

    steps = init_steps(*_settings())
    # (cs, ras, cas, we) bits: precharge = cs|ras|we, mode register = all four,
    # refresh = cs|ras|cas; A10 selects all banks; mode register CL=2 (0x20), BL=1
    assert [(b, a, ba) for _, b, a, ba, _ in steps] == [
        (-1, 0, 0), (0b1011, 0x400, 0), (0b1111, 0x120, 0), (0b1011, 0x400, 0),
        (0b0111, 0, 0), (0b0111, 0, 0), (0b1111, 0x020, 0)]
    # 400 us at 50 MHz after CKE rises: the datasheet asks 100 us before the first command
    assert steps[0][4] == 20000
    assert min(s[4] for s in steps) >= 16


def test_the_sequencer_plays_the_steps_then_hands_over():
    from litedram.dfii import DFIInjector
    from migen import Module
    from migen.sim import run_simulation

    from tritium.hdl.dram.litedram import _hardware_init, init_steps

    # the real steps with short waits: the FSM is the same, the simulation 500x shorter
    steps = [(c, b, a, ba, 3 + i) for i, (c, b, a, ba, _) in enumerate(init_steps(*_settings()))]
    dfii = DFIInjector(addressbits=13, bankbits=2, nranks=1, databits=16, nphases=1)
    seq = _hardware_init(dfii, steps, cke_low=10)

    class Top(Module):
        def __init__(self):
            self.submodules += dfii, seq

    seen, cke, handed = [], [], []

    def watch():
        p = dfii.master.phases[0]
        for cycle in range(120):
            v = {}
            for name in ("cs_n", "ras_n", "cas_n", "we_n", "cke", "address"):
                v[name] = yield getattr(p, name)
            done = yield seq.done
            sel = yield dfii.ext_dfi_sel
            cke.append(v["cke"])
            handed.append((done, sel))
            if not done and not v["cs_n"] and (v["ras_n"], v["cas_n"], v["we_n"]) != (1, 1, 1):
                seen.append((cycle, 1 - v["ras_n"], 1 - v["cas_n"], 1 - v["we_n"],
                             v["address"]))
            yield

    run_simulation(Top(), watch())
    commands = [(r, c, w, a) for _, r, c, w, a in seen]
    assert commands == [(1, 0, 1, 0x400), (1, 1, 1, 0x120), (1, 0, 1, 0x400), (1, 1, 0, 0),
                        (1, 1, 0, 0), (1, 1, 1, 0x020)]
    # each command follows the previous one by at least that step's wait
    gaps = [b[0] - a[0] for a, b in zip(seen, seen[1:])]
    assert all(g >= steps[i + 1][4] for i, g in enumerate(gaps)), gaps
    # CKE low for the first 10 clocks, high from before the first command on
    first = seen[0][0]
    assert cke[:10] == [0] * 10 and all(cke[12:first + 1])
    # the controller gets the DFI when the sequence is done, and keeps it
    end = handed.index((1, 0))
    assert end > seen[-1][0] and all(h == (1, 0) for h in handed[end:])


def test_pll_for_the_ulx3s():
    from tritium.boards.clocks import pll_params

    # the SDRAM clock, its 90-degree copy and the 3 Mbaud UART's 60 MHz from one PLL
    p = pll_params(25e6, [(50e6, 0), (50e6, 90), (60e6, 0)])
    vco = 25e6 / p["p_CLKI_DIV"] * p["p_CLKFB_DIV"] * p["p_CLKOP_DIV"]
    assert 400e6 <= vco <= 800e6 and vco / p["p_CLKOP_DIV"] == 50e6
    assert vco / p["p_CLKOS2_DIV"] == 60e6
    # Lattice: CPHASE counts VCO periods past DIV-1, FPHASE eighths of one
    def phase(o):
        eighths = (p[f"p_CLK{o}_CPHASE"] - (p[f"p_CLK{o}_DIV"] - 1)) * 8 + p[f"p_CLK{o}_FPHASE"]
        return eighths * 45 / p[f"p_CLK{o}_DIV"]

    assert phase("OP") == 0 and phase("OS") == 90 and phase("OS2") == 0
    assert p["p_CLKOS_DIV"] == p["p_CLKOP_DIV"]
    assert "p_CLKOS3_ENABLE" not in p


def test_pll_refuses_an_unreachable_clock():
    from tritium.boards.clocks import pll_params

    with pytest.raises(ConfigError, match="no ECP5 PLL setting makes 1 MHz"):
        pll_params(25e6, [(1e6, 0)])
    # 50 and 48 MHz share no VCO in range (their multiples meet at 1.2 GHz)
    with pytest.raises(ConfigError, match="makes 50, 48 MHz"):
        pll_params(25e6, [(50e6, 0), (48e6, 0)])


def test_tester_refuses_more_beats_than_the_dram_has():
    from tritium.boards.dram import DramTester

    small = DramConfig(part="mt48lc16m16", size=1 << 16)
    with pytest.raises(ConfigError, match="between 1 and the DRAM's 32768 beats"):
        DramTester(small, 1 << 16)


MAIN = r"""
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include "Vtop.h"
#include "verilated.h"
BACKDOOR
int main(int argc, char** argv) {
    Vtop* top = new Vtop;
    const bool corrupt = argc > 1 && !strcmp(argv[1], "corrupt");
    bool hit = false;
    unsigned long long c = 0;
    top->rst = 1;
    for (int i = 0; i < 8; i++) { top->clk = 0; top->eval(); top->clk = 1; top->eval(); }
    top->rst = 0;
    while (!top->done && c < 20000000ULL) {
        top->clk = 0; top->eval();
        // at the first read command, flip one byte the write pass stored
        if (corrupt && !hit && top->reading) {
            uint8_t b; dram_backdoor_read(top, 1001, &b, 1); b ^= 0x10;
            dram_backdoor_write(top, 1001, &b, 1); hit = true;
        }
        top->clk = 1; top->eval(); c++;
    }
    printf("done %d ok %d error %d cycles %llu\n", top->done, top->ok, top->error, c);
    return 0;
}
"""


@pytest.fixture(scope="module")
def tester_exe():
    from amaranth import ClockDomain, ClockSignal, Module, ResetSignal
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from tritium.boards.dram import DramTester
    from tritium.hdl.dram.litedram import sim_controller
    from tritium.sim.build import Design, build_standalone, to_verilog
    from tritium.sim.dram_rtl import BUILD_ARGS

    cfg = DramConfig(part="mt48lc16m16", size=1 << 20)
    bundle = sim_controller(cfg, top="tester_top", hier="dram")

    class TesterTop(wiring.Component):
        def __init__(self):
            super().__init__({"clk": In(1), "rst": In(1), "done": Out(1), "ok": Out(1),
                              "error": Out(1), "reading": Out(1)})

        def elaborate(self, platform):
            m = Module()
            m.domains.sync = ClockDomain()
            m.d.comb += [ClockSignal().eq(self.clk), ResetSignal().eq(self.rst)]
            m.submodules.dram = ctrl = bundle.component
            m.submodules.tester = t = DramTester(cfg, 3 * cfg.spec.row_beats * 4 + 77)
            wiring.connect(m, t.port, ctrl.port)
            m.d.comb += [t.start.eq(1), self.done.eq(t.done), self.ok.eq(t.ok),
                         self.error.eq(t.error),
                         self.reading.eq(t.port.cmd.valid & ~t.port.cmd.payload.we)]
            return m

    return build_standalone(Design("tester_top", to_verilog(TesterTop(), "tester_top")),
                            MAIN.replace("BACKDOOR", bundle.backdoor_cpp), kind="dram",
                            args=BUILD_ARGS + tuple(map(str, bundle.sources)))


@pytest.mark.verilator
@pytest.mark.slow
def test_the_tester_passes_on_litedram(tester_exe):
    out = subprocess.run([str(tester_exe)], capture_output=True, text=True, timeout=300).stdout
    assert out.startswith("done 1 ok 1 error 0"), out


@pytest.mark.verilator
@pytest.mark.slow
def test_the_tester_catches_a_corrupted_byte(tester_exe):
    out = subprocess.run([str(tester_exe), "corrupt"], capture_output=True, text=True,
                         timeout=300).stdout
    assert out.startswith("done 1 ok 0 error 1"), out


@pytest.mark.fpga
def test_the_controller_alone_synthesises_for_ecp5(tmp_path):
    from tritium.boards.flow import controller_cells

    cells = controller_cells(ULX3S, tmp_path)
    # a small controller: hundreds of LUTs and flip-flops, no block RAM or DSP
    assert 200 < cells["LUT4"] < 5000 and 100 < cells["TRELLIS_FF"] < 5000, cells
    assert not any(c in cells for c in ("DP16KD", "MULT18X18D"))
    assert (tmp_path / "litedram.rpt").is_file()
