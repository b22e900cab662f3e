"""The token core's config: the one home of its formats, memory depths and timing.

:class:`MfcConfig` (its own TMV a :class:`~tritium.engines.tmv.config.TernaryConfig`)
and the scalar unit's operations (:data:`MFC_SCALAR_OPS`). Spec layer: standard library
only.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from tritium.config import Config, field as _field
from tritium.engines.mfc import START_FIELDS
from tritium.engines.tmv.config import TernaryConfig
from tritium.errors import ConfigError


#: the instruction word's fields from bit 0: (name, bits). ``op`` the opcode; ``d``, ``a``
#: and ``b`` name scalar registers, vector-memory addresses (all three), the vector length
#: (``a``), TMV rows (``d``), cols (``a``) and weight base (``b``, in weight lines); ``c`` a
#: shift, a scalar register or the TMV flags. The hardware's and the golden's word layout
#: (:data:`tritium.engines.mfc.golden.INSTR_LAYOUT`) is built from this table, and so are
#: the limits :class:`MfcConfig` checks: wide enough for the released MMfreeLM shapes
#: (2.7B: I = 6912, gate_proj 13824 rows, ~0.6M vector elements, ~41M weight lines of
#: 16x4 codes)
INSTR_FIELDS: tuple[tuple[str, int], ...] = (("op", 8), ("d", 24), ("a", 24), ("b", 32),
                                             ("c", 16))
#: bits of an instruction word: the fields, then zeros up to a power of two
INSTR_BITS = 128
#: bytes of one instruction in the program region
INSTR_BYTES = INSTR_BITS // 8
#: SLI's two's-complement immediate, in the bits after ``op`` and ``d`` (overlaying a, b,
#: c): as wide as a scalar register, so SLI loads any 64-bit value
IMM_BITS = 64
IMM_SHIFT = INSTR_FIELDS[0][1] + INSTR_FIELDS[1][1]
assert sum(b for _, b in INSTR_FIELDS) <= INSTR_BITS and IMM_SHIFT + IMM_BITS <= INSTR_BITS


def field_limit(name: str) -> int:
    """One past the largest value the instruction field ``name`` holds."""
    return 1 << dict(INSTR_FIELDS)[name]


#: vector-memory addresses are in ``d``, ``a`` and ``b``: the narrowest bounds the depth
VMEM_LIMIT = min(field_limit(k) for k in ("d", "a", "b"))
#: the program's entry point is START's ``entry`` argument (its bytes,
#: :data:`tritium.engines.mfc.START_FIELDS`); the instruction memory stops there
ENTRY_BITS = 8 * dict(START_FIELDS)["entry"]

#: most elements the vector unit takes a cycle (MfcConfig.vpu_lanes)
VPU_LANES_MAX = 16

def lanes_fit(simd: int, pe: int, lanes: int) -> bool:
    """The vector unit's ``lanes`` against its TMV: they divide ``simd`` (VQUANT's group in
    one activation word) and divide or are a multiple of ``pe`` (a VRESCALE group and a
    result beat share one RES word)."""
    return simd % lanes == 0 and (pe % lanes == 0 or lanes % pe == 0)


#: scalar-unit operations of the token core, by name -> busy cycles (see MfcConfig)
MFC_SCALAR_OPS: tuple[str, ...] = ("smul", "sdiv", "ssqrt")


@dataclasses.dataclass(frozen=True)
class MfcConfig(Config):
    """MatMul-free token core (MFC): a sequencer, a scalar unit, a vector unit of
    ``vpu_lanes`` elements a cycle and the TMV engine (``tmv``), running programs from an
    instruction memory.

    Lanes: V is banked by lane (element i in bank i % L, L = ``vpu_lanes``), so the vector
    unit reads two and writes L operands a cycle; a vector op's ``d``, ``a`` and ``b``
    addresses (in V, ACT or RES) must be multiples of L, checked at decode like every
    other operand (:meth:`aligned`); VL may be anything (the last group runs part-full).
    L divides ``tmv.simd`` (VQUANT's L bytes land in one activation word) and divides or
    is a multiple of ``tmv.pe`` (VRESCALE's L results come from one result word).

    Fixed-point formats (documented in docs/mfc.md, executed by :mod:`tritium.engines.mfc.golden`):

    - vector memory: ``vmem_depth`` int32 elements in Q(32-F).F, F = ``frac_bits``, the
      binary point of the vector ops (the compiler holds vectors that only norms read in
      Q.(F + s), s from a proven bound: :meth:`tritium.engines.mfc.compile._Compiler.shifts`);
    - per-token activation quantisation: ``x_q = clamp((u·k + 2**(Q-1)) >> Q, -128, 127)``
      with ``k = (127 << Q) // max|u|``, Q = ``quant_shift``; the compiler quantises a
      vector normalised to max-abs in (2**(F_N-1), 2**F_N], so k lies in
      [127·2**(Q-F_N), 127·2**(Q-F_N+1)): Q - F_N + 8 bits (22 at the defaults), and
      below 2**31 while Q <= F_N + 23;
    - matvec rescale: ``y = (acc·c) >> (R - F)`` with ``c`` a factor holding R =
      ``rescale_frac`` fraction bits;
    - max-abs normalisation (VNORM): ``q = clamp((v·k + 2**(N-1)) >> N, int32)`` with
      ``k = 2**31 // max|v|`` (unsigned 32-bit) and N = :attr:`norm_shift` = 31 - F_N,
      F_N = ``norm_frac``, so that ``max|q|`` lies in (2**(F_N-1), 2**F_N]: the vector
      rescaled to max-abs ≈ 1.0 in Q.F_N, whatever its scale (a smaller k targets a
      smaller maximum); F_N > F gives the normalised vectors, which hold no range,
      finer rounding than the residual's Q.F;
    - sigmoid: ``2**sig_segments_log2`` chords over [-2**sig_range_log2, 2**sig_range_log2),
      the input clamped into that range.

    Timing (the contract the RTL meets cycle for cycle; :func:`tritium.engines.mfc.golden.run`
    adds it up): every instruction spends ``issue_cycles`` in fetch and decode (SETVL,
    SLI and SADD retire there); a vector op of length n then :meth:`vector_cycles` =
    ``ceil(n / vpu_lanes) + vpu_latency``; a scalar op ``scalar_cycles[op]``; ``TMV``
    hands its command to the engine (waiting while the engine is busy) and the sequencer
    goes on, the engine busy for ``tmv_cycles(rows, cols, fmt)``; ``TWAIT`` and ``HALT``
    wait for the engine to be idle.
    """

    kind: ClassVar[str] = "mfc"

    tmv: "TernaryConfig" = dataclasses.field(default_factory=lambda: TernaryConfig(
        simd=16, pe=4, max_in=1024, max_out=1024, weight_depth=4096, has_t3=0))
    frac_bits: int = _field(16, 8, 24, "F: fraction bits of the int32 vector elements")
    norm_frac: int = _field(23, 8, 24, "F_N: fraction bits of max-abs-normalised vectors")
    quant_shift: int = _field(38, 8, 40, "Q: fraction bits of the quantisation factor k")
    rescale_frac: int = _field(28, 16, 40, "R: fraction bits of the rescale factor c")
    sig_segments_log2: int = _field(8, 0, 8, "log2 of the sigmoid's linear segments")
    sig_range_log2: int = _field(3, 1, 5, "sigmoid input range is ±2**this")
    vmem_depth: int = _field(4096, 16, VMEM_LIMIT, "vector memory, int32 elements")
    imem_depth: int = _field(1024, 16, 1 << ENTRY_BITS, "instruction memory, in instructions")
    sregs: int = _field(16, 4, 64, "scalar registers (64-bit)")
    vpu_lanes: int = _field(1, 1, VPU_LANES_MAX, "vector-unit elements per cycle (a power "
                                                 "of two)")

    def __post_init__(self):
        self._nested("tmv", TernaryConfig)
        super().__post_init__()

    def validate(self) -> None:
        t = self.tmv
        if t.act_bits != 8:
            raise ConfigError("mfc: the core quantises activations to int8; use tmv.act_bits=8")
        for name, value, fld in (("max_out", t.max_out, "d"), ("max_in", t.max_in, "a"),
                                 ("weight_depth", t.weight_depth, "b")):
            if value > field_limit(fld):
                raise ConfigError(f"mfc: tmv.{name}={value} does not fit the instruction's "
                                  f"{dict(INSTR_FIELDS)[fld]}-bit {fld} field; keep it <= "
                                  f"{field_limit(fld)}")
        if self.frac_bits + self.sig_range_log2 + 1 < self.sig_segments_log2:
            raise ConfigError("mfc: more sigmoid segments than input codes; lower "
                              "sig_segments_log2")
        if self.rescale_frac < self.frac_bits:
            raise ConfigError("mfc: rescale_frac must be >= frac_bits")
        if self.norm_frac < self.frac_bits:
            raise ConfigError("mfc: norm_frac must be >= frac_bits")
        L = self.vpu_lanes
        if L & (L - 1):
            raise ConfigError(f"mfc: vpu_lanes={L} must be a power of two (1 ... "
                              f"{VPU_LANES_MAX})")
        if not lanes_fit(t.simd, t.pe, L):
            raise ConfigError(f"mfc: vpu_lanes={L} must divide tmv.simd ({t.simd}; VQUANT "
                              f"writes its {L} bytes into one activation word) and divide "
                              f"or be a multiple of tmv.pe ({t.pe}; VRESCALE reads {L} "
                              "results a cycle); lower vpu_lanes")
        if self.vmem_depth % L:
            raise ConfigError(f"mfc: vmem_depth={self.vmem_depth} must be a multiple of "
                              f"vpu_lanes={L} (V is banked by lane)")
        if self.quant_shift > self.norm_frac + 23:
            raise ConfigError("mfc: quant_shift > norm_frac + 23: the quantisation factor "
                              "of a normalised vector would not fit 32 bits; lower "
                              "quant_shift")

    def soc_check(self) -> None:
        """The link's constraints on the core's TMV (:meth:`TernaryConfig.soc_check`)."""
        self.tmv.soc_check()

    def to_dict(self):
        d = super().to_dict()
        d["tmv"] = self.tmv.to_dict()
        return d

    def soc_regions(self) -> tuple[tuple[str, int, str], ...]:
        """(name, bytes, access) of the core's regions on the device bus: its TMV's weight
        lines (none with ``tmv.weights_dram``: they are in the SoC's DRAM), the program
        (:data:`INSTR_BYTES` per instruction), the vector memory (4 bytes per element), the
        scalar registers (8 bytes each, read only)."""
        weights = tuple(r for r in self.tmv.soc_regions() if r[0] == "weights")
        return weights + (("program", self.imem_depth * INSTR_BYTES, "w"),
                ("vmem", self.vmem_depth * 4, "rw"), ("sregs", self.sregs * 8, "r"))

    @property
    def norm_shift(self) -> int:
        """N: the shift of VNORM, 31 - F_N: with ``k = 2**31 // m`` (``m`` = max|v|,
        1 <= m < 2**31) the normalised maximum ``m·k >> N`` is in (2**(F_N-1), 2**F_N]."""
        return 31 - self.norm_frac

    # --- memories ------------------------------------------------------------------------
    @property
    def act_elems(self) -> int:
        """int8 elements per activation bank (two banks: one fills while the TMV reads)."""
        return self.tmv.act_depth * self.tmv.simd

    @property
    def res_elems(self) -> int:
        """int32 elements per result bank (two banks): ``max_out`` rounded up to whole
        result words of ``max(pe, vpu_lanes)`` lanes, so that bank 1 starts aligned."""
        w = self.res_word_lanes
        return -(-self.tmv.max_out // w) * w

    @property
    def res_word_lanes(self) -> int:
        """int32 lanes of a RES memory word: the TMV writes ``pe`` of them a beat,
        VRESCALE reads ``vpu_lanes`` a cycle; the larger of the two (one divides the
        other)."""
        return max(self.tmv.pe, self.vpu_lanes)

    # --- timing --------------------------------------------------------------------------
    @property
    def issue_cycles(self) -> int:
        """Fetch (instruction-memory read) and decode of every instruction."""
        return 2

    @property
    def vpu_latency(self) -> int:
        """Vector-op cycles beyond one per element: the operand read, the unit's four
        stages (select and sigmoid table, multiply, shift/round/clamp, VSILU's second
        multiply); the result is written in the fifth cycle after its read."""
        return 5

    @property
    def scalar_cycles(self) -> dict[str, int]:
        """Busy cycles of the iterative scalar unit, per operation: one result bit per
        cycle (64 for SMUL and SDIV, 32 for SSQRT), plus taking the operands and handing
        back the result."""
        return {"smul": 66, "sdiv": 66, "ssqrt": 34}

    def vector_cycles(self, n: int) -> int:
        """Sequencer cycles of a vector op of length ``n``: ``ceil(n / vpu_lanes)`` element
        groups, one a cycle, then the pipeline's ``vpu_latency``."""
        return -(-n // self.vpu_lanes) + self.vpu_latency

    def aligned(self, addr: int) -> bool:
        """A vector op's operand address may start there: a multiple of ``vpu_lanes``."""
        return addr % self.vpu_lanes == 0

    def tmv_cycles(self, rows: int, cols: int, fmt: str = "t2") -> int:
        """Engine-busy cycles of one TMV instruction: the engine's own formula plus the
        adapter's command register (the last result is written in the engine's last
        busy cycle)."""
        return self.tmv.cycles(rows, cols, fmt) + 1
