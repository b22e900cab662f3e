"""The SpGEMM engine on the SoC's byte bus (START and counters: :mod:`tritium.engines.spgemm`).

Regions (``SpgemmConfig.soc_regions``; one word per ``word_stride(word)`` bytes,
little-endian, fields as ``SpgemmConfig.word_fields`` lays them out from bit 0):

- ``a_ext``, ``b_ext`` (write only): row r's extent ``{start, end}`` (CSR ``indptr[r]``,
  ``indptr[r+1]``) at word r; ``a_ent``, ``b_ent`` (write only): entry k ``{col, value}``
  at word k. Writing a word's last byte (``word bytes - 1``) hands the assembled word to
  the engine's ``load`` stream; bytes past the word's own are ignored.
- ``c_ext`` (read only): C's row r extent ``{start, end}`` (C's pointer width) at word r;
  ``c_ent`` (read only): C's entries, PE k's bank at word ``k << c_bank_bits``. Each byte
  read asks the engine for its word (``rd``) and answers when ``rdata`` brings it
  (``bus_rvalid``); bytes past the word read as 0.

With ``operands_dram`` none of these regions is on the bus: A's, B's and C's words are
in the SoC's DRAM at ``SpgemmConfig.dram_layout`` (the host writes A and B and reads C
through the ``dram`` region or the simulated device's backdoor); each PE reads each of
A's and B's four memories through its own requester port on the DRAM arbiter
(``EngineBus.dram_port``) and writes its rows of C through one more. ConfigError at
elaboration if the layout does not fit the DRAM.

START ``{rows, b_rows, semiring}`` computes rows 0..rows-1 of C = A·B, B having
``b_rows`` rows. Refused (NAK argument) unless 1 <= rows <= max_dim,
1 <= b_rows <= max_dim and the semiring is built. While the engine runs (from the
accepted START until the last word of C is written) it holds the bus: every access is
NAKed (address), so the host cannot race it. STATUS: busy, done (set when a run ends),
error (the engine's sticky error flag: a bad column index in A or a PE's C bank full);
``result_beats`` = C entries written by the last run. Counters: the engine's
(:data:`tritium.engines.spgemm.COUNTERS`, ``cfg.counter_bits`` wide, cleared by each
START).
"""

from __future__ import annotations

from amaranth import Cat, Const, Signal
from amaranth.hdl import ResetInserter
from amaranth.utils import exact_log2

from amaranth.lib import wiring

from tritium.engines.spgemm.config import SPGEMM_SEMIRINGS
from tritium.errors import ConfigError

from tritium.hdl.adapter import EngineAdapter, EngineBus, EngineOut
from .engine import COUNTERS, MEMORIES, SpgemmEngine

#: the C regions by the engine's ``rd.mem`` code
READ_MEMORIES = ("c_ext", "c_ent")


class SpgemmAdapter(EngineAdapter):
    def elaborate(self, bus: EngineBus) -> EngineOut:
        m, proc, cfg = bus.m, bus.proc, self.cfg
        dram = bus.dram if cfg.operands_dram else None
        if dram is not None and cfg.dram_bytes(dram.word_bytes) > dram.size_bytes:
            raise ConfigError(f"soc: spgemm's A, B and C memories (max_dim={cfg.max_dim}, "
                              f"max_nnz={cfg.max_nnz}, max_c_nnz={cfg.max_c_nnz}, "
                              f"pes={cfg.pes}) take {cfg.dram_bytes(dram.word_bytes)} "
                              f"bytes, more than the {dram.size_bytes}-byte DRAM; lower them")
        if cfg.operands_dram and dram is None:
            bus.dram_port()  # raises the ConfigError that says how to give the SoC a DRAM
        eng = SpgemmEngine(cfg, dram)
        m.d.comb += eng.mem_hold.eq(0)
        if dram is None:
            m.submodules.spgemm = ResetInserter(bus.soft)(eng)
        else:
            # RESET with the DRAM in use: the readers and writers first stop asking and
            # let what the DRAM still owes them (or they owe it) pass, then the engine is
            # reset; at once when they are already quiet (an idle engine)
            reset_wait, reset = Signal(), Signal()
            m.d.comb += [eng.dram_flush.eq(bus.soft | reset_wait),
                         reset.eq((bus.soft | reset_wait) & eng.dram_idle)]
            with m.If(reset):
                m.d.sync += reset_wait.eq(0)
            with m.Elif(bus.soft):
                m.d.sync += reset_wait.eq(1)
            m.submodules.spgemm = ResetInserter(reset)(eng)
            for name in (*MEMORIES, "c"):
                for k in range(cfg.pes):
                    wiring.connect(m, getattr(eng, f"dram_{name}{k}"), bus.dram_port())

        # ---- A and B: bytes -> words -> the load stream --------------------------------
        load = eng.load
        with m.If(load.ready):  # held until taken (always ready while the bus is open)
            m.d.sync += load.valid.eq(0)
        for code, name in enumerate(MEMORIES if dram is None else ()):
            word = cfg.SOC_REGIONS[name][0]
            commit, waddr = Signal(name=f"{name}_commit"), Signal(32, name=f"{name}_waddr")
            wdata = Signal(-(-cfg.word_bits(word) // 8) * 8, name=f"{name}_wdata")
            bus.assemble(name, cfg.word_stride(word), len(wdata) // 8, commit, waddr, wdata)
            with m.If(commit):
                m.d.sync += [load.valid.eq(1), load.payload.mem.eq(code),
                             load.payload.addr.eq(waddr),
                             load.payload.data.eq(wdata[:cfg.word_bits(word)])]

        # ---- C: each byte read asks for its word -----------------------------------------
        rd, rdata = eng.rd, eng.rdata
        want, lane = Signal(), Signal(3)
        m.d.comb += [rd.valid.eq(want), rdata.ready.eq(1)]
        with m.If(rd.valid & rd.ready):
            m.d.sync += want.eq(0)
        with m.If(proc.bus_re):
            for code, name in enumerate(READ_MEMORIES if dram is None else ()):
                stride = cfg.word_stride(cfg.SOC_REGIONS[name][0])
                lo = exact_log2(stride)
                off = bus.offset(name)
                with m.If(bus.hit(name)):
                    m.d.sync += [want.eq(1), rd.payload.mem.eq(code),
                                 rd.payload.addr.eq(off[lo:]),
                                 lane.eq(off[:lo] if lo else 0)]
        word = Cat(rdata.payload.data, Const(0, 64))
        rbyte = word.word_select(lane, 8)

        # ---- START ------------------------------------------------------------------------
        f = bus.fields
        built = Const(cfg.semirings, len(SPGEMM_SEMIRINGS))
        sem_ok = (f["semiring"] < len(SPGEMM_SEMIRINGS)) & built.bit_select(f["semiring"][:3], 1)
        args_ok = ((f["rows"] >= 1) & (f["rows"] <= cfg.max_dim) & (f["b_rows"] >= 1) &
                   (f["b_rows"] <= cfg.max_dim) & sem_ok)
        cmd = eng.cmd
        pending, running, done = Signal(), Signal(), Signal()
        m.d.comb += cmd.valid.eq(pending)
        with m.If(bus.start):
            m.d.sync += [pending.eq(1), running.eq(1), done.eq(0),
                         cmd.payload.rows.eq(f["rows"]), cmd.payload.b_rows.eq(f["b_rows"]),
                         cmd.payload.semiring.eq(f["semiring"])]
        with m.If(cmd.valid & cmd.ready):
            m.d.sync += pending.eq(0)
        # the engine's busy rises the cycle after it takes the command
        with m.If(running & ~pending & ~eng.busy & ~bus.start):
            m.d.sync += [running.eq(0), done.eq(1)]
        with m.If(bus.soft):
            m.d.sync += [pending.eq(0), running.eq(0), done.eq(0), want.eq(0),
                         load.valid.eq(0)]
        busy = running | pending | eng.busy
        return EngineOut(flags=Cat(busy, done, eng.error), beats=eng.counters.c_words,
                         counters=[getattr(eng.counters, n) for n in COUNTERS], busy=busy,
                         locks=busy, args_ok=args_ok, ready=~busy, rdata=rbyte,
                         rvalid=rdata.valid)
