"""Golden twin of the MatMul-free token core (MFC): its instruction set and a bit- and
cycle-exact interpreter of its programs.

Instruction word (:data:`INSTR_LAYOUT`, 128 bits, little-endian bit fields, from the
table :data:`~tritium.engines.mfc.config.INSTR_FIELDS`)::

    op [7:0] | d [31:8] | a [55:32] | b [87:56] | c [103:88] | zeros [127:104]
    SLI only: op | d [31:8] | imm [95:32] (64-bit two's complement)

Registers: ``cfg.sregs`` 64-bit scalar registers ``S``; the vector length ``VL``.
Memories: ``V`` (``cfg.vmem_depth`` int32, Q.F), ``ACT`` (two banks of
``cfg.act_elems`` int8, the TMV's input), ``RES`` (two banks of ``cfg.res_elems``
int32, the TMV's output), the TMV weight lines, the instruction memory.

======== ============================= ====================================================
op       operands                      effect (``i`` in 0..VL-1; F, Q, R from the config)
======== ============================= ====================================================
HALT                                   wait for the TMV, stop (done)
SETVL    a = n                         VL = n
SLI      d, imm                        S[d] = imm
SMUL     d, a, b, c = shift            S[d] = wrap64((S[a]·S[b]) >> c)
SDIV     d, a, b, c = shift            S[d] = u64(S[a] << c) // u64(S[b])  (0 if S[b] = 0)
SSQRT    d, a, c = shift               S[d] = isqrt(u64(S[a] << c))
SADD     d, a, b                       S[d] = wrap64(S[a] + S[b])
TMV      d=rows a=cols b=base c=flags  engine: RES[rb] = W[base: rows×cols] · ACT[ab]
                                       (flags: bit 0 fmt, bit 1 act bank, bit 2 res bank)
TWAIT                                  wait until the TMV is idle
VADD     d, a, b                       V[d+i] = wrap32(V[a+i] + V[b+i])
VSUB     d, a, b                       V[d+i] = wrap32(V[a+i] - V[b+i])
VMUL     d, a, b                       V[d+i] = wrap32((V[a+i]·V[b+i] + 2^(F-1)) >> F)
VAFF     d, a, c                       V[d+i] = wrap32(((V[a+i]·s32(S[c]) + 2^(F-1)) >> F)
                                                       + s32(S[c+1]))
VSIG     d, a                          V[d+i] = sig(V[a+i])
VSILU    d, a                          V[d+i] = wrap32((V[a+i]·sig(V[a+i]) + 2^(F-1)) >> F)
VNORM    d, a, c                       q_i = clamp((V[a+i]·u32(S[c]) + 2^(N-1)) >> N, int32)
                                       V[d+i] = q_i;  S[c+1] = wrap64(Σ q_i²)
VMAXABS  a, c                          S[c] = max |V[a+i]|   (0 if VL = 0)
VARGMAX  a, c                          S[c] = first i of max V[a+i]   (0 if VL = 0)
VQUANT   d, a, c                       ACT[d+i] = clamp((V[a+i]·s32(S[c]) + 2^(Q-1)) >> Q,
                                                        -128, 127)
VRESCALE d, a, c                       V[d+i] = wrap32((RES[a+i]·s32(S[c]) + h) >> (R - F))
                                       (h = 2^(R-F-1), 0 if R = F)
======== ============================= ====================================================

``>>`` is the arithmetic (flooring) shift, so the products round half up (an unbiased
residual stream and MLGRU state: a floor would drift them by -1/2 LSB per operation); ``s32(x)`` the low 32 bits of x as signed,
``u32(x)`` as unsigned;
``u64(x)`` x modulo 2**64; ``wrap32/64`` two's-complement wrap-around. ``ACT`` and ``RES``
addresses are flat over both banks (bank b starts at ``b·act_elems`` / ``b·res_elems``).

``VNORM`` with ``k = 2^31 // max|V[a+i]|`` (SDIV) rescales a vector of any magnitude to
max-abs in (2^(F_N-1), 2^F_N], i.e. about 1.0 in Q.F_N (F_N = ``norm_frac``, N = 31 -
F_N, :attr:`~tritium.engines.mfc.config.MfcConfig.norm_shift`; ``k = 2^(31-s) // max`` targets
2^(F_N-s)), and sums the squares of the rescaled elements exactly: the RMS of a vector
then comes out with ~F_N bits of relative precision whatever its scale, where a sum of
``(v·v) >> F`` underflows to 0 below RMS 2^(-F/2). With ``k = 2^N`` it is the identity
on V and S[c+1] the exact sum of squares.

``sig(x)``: x clamped to [-L, L) with L = 2**sig_range_log2 (in Q.F), segment
``k = (x + L) >> (F + sig_range_log2 + 1 - G)`` of 2**G, ``sig = ((A[k]·x) >> F) + B[k]``
with A the chord's slope and B centring the line's error over the segment
(:func:`sigmoid_table`).

Bad programs never hang the core: an unknown opcode, an operand range outside its memory
(``d+VL`` etc.) or a vector operand address not a multiple of ``cfg.vpu_lanes``
(:meth:`~tritium.engines.mfc.config.MfcConfig.aligned`), a scalar register index (``c``, and ``c+1`` for VAFF) >= ``sregs``, a TMV
command outside the engine's limits, or a fetch past the instruction memory sets the
sticky ``error`` flag and halts before executing that instruction.

Timing: see :class:`~tritium.engines.mfc.config.MfcConfig`. The TMV computes from ``ACT`` as it is
when the command issues; a program that writes the act bank of a TMV still in flight,
or reads the result bank it is still writing, races the hardware: :func:`run` raises
:class:`ProgramError` for it (``check_races``) so compilers find such bugs here. So it
does for a vector op whose destination range in V starts inside a source range
(``a < d < a + VL``, the same for ``b``): the pipelined unit reads element group k
after it has written group k - 6, so only ``d <= a`` or disjoint ranges give the
whole-vector result defined above.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math

import numpy as np
from amaranth import signed
from amaranth.lib import data

from tritium.engines.mfc.config import IMM_BITS, IMM_SHIFT, INSTR_BITS, INSTR_FIELDS, MfcConfig
from tritium.engines.tmv.config import TMV_FORMATS
from tritium.errors import TritiumError

from tritium.golden.ternary import decode
from tritium.engines.tmv.golden import tmv_unpack_lines


class ProgramError(TritiumError):
    """A program races the TMV engine (see the module docstring); fix the compiler."""


class Op(enum.IntEnum):
    HALT = 0
    SETVL = 1
    SLI = 2
    SMUL = 3
    SDIV = 4
    SSQRT = 5
    TMV = 6
    TWAIT = 7
    VADD = 8
    VSUB = 9
    VMUL = 10
    VAFF = 11
    VSIG = 12
    VSILU = 13
    VNORM = 14
    VMAXABS = 15
    VARGMAX = 16
    VQUANT = 17
    VRESCALE = 18
    SADD = 19


#: per vector op: which of d, a, b address which memory ("v", "act", "res"), and whether
#: c names a scalar register read ("sr"), a pair of them ("sr2"), written ("sw"), or one
#: read and the next written ("sk": S[c] in, S[c+1] out)
VECTOR_OPS: dict[Op, dict[str, str]] = {
    Op.VADD: {"d": "v", "a": "v", "b": "v"},
    Op.VSUB: {"d": "v", "a": "v", "b": "v"},
    Op.VMUL: {"d": "v", "a": "v", "b": "v"},
    Op.VAFF: {"d": "v", "a": "v", "c": "sr2"},
    Op.VSIG: {"d": "v", "a": "v"},
    Op.VSILU: {"d": "v", "a": "v"},
    Op.VNORM: {"d": "v", "a": "v", "c": "sk"},
    Op.VMAXABS: {"a": "v", "c": "sw"},
    Op.VARGMAX: {"a": "v", "c": "sw"},
    Op.VQUANT: {"d": "act", "a": "v", "c": "sr"},
    Op.VRESCALE: {"d": "v", "a": "res", "c": "sr"},
}
SCALAR_OPS: dict[Op, str] = {Op.SMUL: "smul", Op.SDIV: "sdiv", Op.SSQRT: "ssqrt"}
#: per-unit busy counters of a run, in the order the device reports them
COUNTERS = ("cycles", "instructions", "tmv_busy", "vpu_busy", "scalar_busy", "wait_tmv",
            "issue")

M32, M64 = (1 << 32) - 1, (1 << 64) - 1


def wrap(v: int, bits: int) -> int:
    m = 1 << bits
    return ((v + (m >> 1)) % m) - (m >> 1)


def s32(v: int) -> int:
    return wrap(v & M32, 32)


def _instr_layout() -> data.StructLayout:
    """The word from :data:`INSTR_FIELDS`: ``op`` and ``d``, then ``args``: either the
    fields after them (``args.abc``) or SLI's immediate (``args.imm``), then zeros."""
    (op, op_bits), (d, d_bits), *rest = INSTR_FIELDS
    args = data.UnionLayout({"abc": data.StructLayout(dict(rest)), "imm": signed(IMM_BITS)})
    assert op_bits + d_bits == IMM_SHIFT
    return data.StructLayout({op: op_bits, d: d_bits, "args": args,
                              "zero": INSTR_BITS - IMM_SHIFT - args.size})


#: the instruction word's layout: the encoder, the decoder below and the core's decoder
#: (:class:`tritium.engines.mfc.hdl.MfcCore`) all read it
INSTR_LAYOUT = _instr_layout()
_WIDTH = dict(INSTR_FIELDS)


def encode(op: Op, d: int = 0, a: int = 0, b: int = 0, c: int = 0, imm: int | None = None) -> int:
    """One instruction word. Raises ValueError if a field does not fit."""
    if imm is not None:
        if op != Op.SLI or not -(1 << (IMM_BITS - 1)) <= imm < 1 << (IMM_BITS - 1):
            raise ValueError(f"immediate {imm} does not fit {IMM_BITS} signed bits (SLI only)")
        values, args = {"op": int(op), "d": d}, {"imm": imm}
    else:
        values = {"op": int(op), "d": d, "a": a, "b": b, "c": c}
        args = {"abc": {k: values.pop(k) for k, _ in INSTR_FIELDS[2:]}}
    for name, value in ({**values, **args.get("abc", {})}).items():
        if not 0 <= value < 1 << _WIDTH[name]:
            raise ValueError(f"{op.name}: {name}={value} does not fit the {_WIDTH[name]}-bit "
                             f"{name} field")
    return INSTR_LAYOUT.const({**values, "args": args}).as_bits()


@dataclasses.dataclass(frozen=True)
class Instr:
    op: int
    d: int
    a: int
    b: int
    c: int
    imm: int


@functools.lru_cache(maxsize=1 << 16)
def decode_word(word: int) -> Instr:
    w = INSTR_LAYOUT.from_bits(word)
    abc = w.args.abc
    return Instr(int(w.op), int(w.d), int(abc.a), int(abc.b), int(abc.c), int(w.args.imm))


def disassemble(word: int) -> str:
    i = decode_word(word)
    try:
        op = Op(i.op)
    except ValueError:
        return f"??? {word:#0{INSTR_BITS // 4 + 2}x}"
    if op == Op.SLI:
        return f"SLI s{i.d}, {i.imm}"
    if op in (Op.HALT, Op.TWAIT):
        return op.name
    if op == Op.SETVL:
        return f"SETVL {i.a}"
    if op == Op.TMV:
        return (f"TMV rows={i.d} cols={i.a} base={i.b} fmt={TMV_FORMATS[i.c & 1]} "
                f"act{(i.c >> 1) & 1} res{(i.c >> 2) & 1}")
    if op in SCALAR_OPS:
        return f"{op.name} s{i.d}, s{i.a}, s{i.b}, <<{i.c}"
    if op == Op.SADD:
        return f"SADD s{i.d}, s{i.a}, s{i.b}"
    spec = VECTOR_OPS[op]
    parts = [f"{spec[k]}[{getattr(i, k)}]" for k in ("d", "a", "b") if k in spec]
    if "c" in spec:
        parts.append(f"s{i.c}")
    return f"{op.name} " + ", ".join(parts)


# --- sigmoid ------------------------------------------------------------------------------

#: points per segment at which :func:`sigmoid_table` measures its line's deviation
SIG_FIT_POINTS = 64


def sigmoid_table(cfg: MfcConfig) -> tuple[list[int], list[int]]:
    """Slopes A and intercepts B (Q.F) of the sigmoid's lines, one per segment of width
    h = 2L/2^G: A is the chord's slope rounded half up to the grid; B centres the error
    of the line as :func:`sig_fixed` evaluates it (``floor(A·x / 2^F)``, so half an LSB is
    added back) between its extremes over the segment (sampled at ``SIG_FIT_POINTS``
    points and both ends), rounded half up. The error inside [-L, L) is then at most
    half the spread of ``σ(x) - A·x`` over a segment plus one LSB (B's rounding and the
    floor): about h²·max|σ''|/16 + h·|ΔA|/2 + 2^-F, with max|σ''| = 1/(6√3)."""
    F, G, lr = cfg.frac_bits, cfg.sig_segments_log2, cfg.sig_range_log2
    lim, n, one = float(1 << lr), 1 << G, float(1 << F)
    width = 2 * lim / n
    A, B = [], []
    for k in range(n):
        x0 = -lim + k * width
        y0, y1 = 1 / (1 + math.exp(-x0)), 1 / (1 + math.exp(-(x0 + width)))
        a = math.floor((y1 - y0) / width * one + 0.5)
        x = x0 + width * np.arange(SIG_FIT_POINTS + 1) / SIG_FIT_POINTS
        dev = 1 / (1 + np.exp(-x)) - a * x / one
        A.append(a)
        B.append(math.floor((dev.max() + dev.min()) / 2 * one + 0.5 + 0.5))
    return A, B


def sig_fixed(cfg: MfcConfig, x: np.ndarray, table=None) -> np.ndarray:
    """``sig`` of the module docstring, element-wise on int64 arrays of Q.F values."""
    F, G, lr = cfg.frac_bits, cfg.sig_segments_log2, cfg.sig_range_log2
    A, B = table or sigmoid_table(cfg)
    lim = 1 << (F + lr)
    xc = np.clip(np.asarray(x, dtype=np.int64), -lim, lim - 1)
    k = (xc + lim) >> (F + lr + 1 - G)
    return ((np.asarray(A, dtype=np.int64)[k] * xc) >> F) + np.asarray(B, dtype=np.int64)[k]


def sigmoid_max_error(cfg: MfcConfig, points: int = 1 << 16) -> float:
    """Largest |sig(x) - sigma(x)| over a dense grid of [-2L, 2L] (clamping included)."""
    F = cfg.frac_bits
    lim = 2 << (F + cfg.sig_range_log2)
    x = np.linspace(-lim, lim, points).astype(np.int64)
    got = sig_fixed(cfg, x) / (1 << F)
    return float(np.abs(got - 1 / (1 + np.exp(-x / (1 << F)))).max())


# --- the machine --------------------------------------------------------------------------

def _wrap_arr(v: np.ndarray, bits: int) -> np.ndarray:
    # int64 arithmetic wraps modulo 2**64 already; narrower widths need a fold
    if bits == 64:
        return v
    m = np.int64(1 << bits)
    return ((v + (m >> 1)) % m) - (m >> 1)


class Timer:
    """The timing rules of :class:`~tritium.engines.mfc.config.MfcConfig`, one instruction at a time:
    the cycle model both the interpreter and :func:`estimate_cycles` use."""

    def __init__(self, cfg: MfcConfig):
        self.cfg = cfg
        self.t = 0              # the sequencer's clock
        self.tmv_free = 0       # the cycle the engine is idle again
        self.counts = dict.fromkeys(COUNTERS, 0)

    def issue(self) -> None:
        self.t += self.cfg.issue_cycles
        self.counts["issue"] += self.cfg.issue_cycles

    @property
    def tmv_busy(self) -> bool:
        return self.t < self.tmv_free

    def execute(self, op: Op, ins: Instr, vl: int) -> None:
        """Account for ``op`` after its issue (the instruction retires)."""
        cfg, cnt = self.cfg, self.counts
        cnt["instructions"] += 1
        if op in (Op.HALT, Op.TWAIT) or (op == Op.TMV and self.tmv_busy):
            cnt["wait_tmv"] += max(0, self.tmv_free - self.t)
            self.t = max(self.t, self.tmv_free)
        if op in SCALAR_OPS:
            busy = cfg.scalar_cycles[SCALAR_OPS[op]]
            self.t += busy
            cnt["scalar_busy"] += busy
        elif op == Op.TMV:
            busy = cfg.tmv_cycles(ins.d, ins.a, TMV_FORMATS[ins.c & 1])
            self.tmv_free = self.t + busy
            cnt["tmv_busy"] += busy
        elif op in VECTOR_OPS:
            self.t += cfg.vector_cycles(vl)
            cnt["vpu_busy"] += cfg.vector_cycles(vl)
        cnt["cycles"] = self.t


class Machine:
    """The core's architectural state, and :meth:`run` to execute from an entry point.

    ``vmem``/``act``/``res`` are numpy arrays (int64 holding int32/int8 values),
    ``sregs`` Python ints (signed 64-bit), ``imem`` and ``weights`` (packed lines) lists of
    ints. State persists between runs, as on the device (the MLGRU state lives in V).
    """

    def __init__(self, cfg: MfcConfig):
        self.cfg = cfg
        self.vmem = np.zeros(cfg.vmem_depth, dtype=np.int64)
        self.act = np.zeros(2 * cfg.act_elems, dtype=np.int64)
        self.res = np.zeros(2 * cfg.res_elems, dtype=np.int64)
        self.sregs = [0] * cfg.sregs
        self.imem = [0] * cfg.imem_depth
        self.weights = [0] * cfg.tmv.weight_depth
        self._matrices: dict = {}   # (rows, cols, base, fmt) -> decoded weights
        self.vl = 0
        self.error = False
        self._inflight = (0, 0)   # (act bank, result bank) of the last TMV command
        # VRESCALE results (projections) so far and how many were all zero: a collapsed
        # rescale shows here (not architectural state; the device has no such counter)
        self.rescales = self.zero_rescales = 0
        self._table = sigmoid_table(cfg)

    # -- loading
    def load_program(self, words, at: int = 0) -> None:
        if at + len(words) > self.cfg.imem_depth:
            raise ProgramError(f"program of {len(words)} words at {at} exceeds the "
                               f"instruction memory ({self.cfg.imem_depth}); raise imem_depth")
        self.imem[at:at + len(words)] = [int(w) for w in words]

    def load_weights(self, lines, at: int = 0) -> None:
        self.weights[at:at + len(lines)] = [int(x) for x in lines]
        self._matrices.clear()

    # -- one TMV command, as the engine computes it
    def _matvec(self, rows, cols, base, fmt, abank) -> np.ndarray:
        t = self.cfg.tmv
        key = (rows, cols, base, fmt)
        if key not in self._matrices:   # unpacking lines is slow; weights change rarely
            words = t.words(rows, cols)
            lines = [self.weights[(base + k) % t.weight_depth] for k in range(words)]
            codes, _ = tmv_unpack_lines(t, lines, rows, cols, fmt)
            self._matrices[key] = decode(codes).astype(np.int8)
        w = self._matrices[key]
        x = self.act[abank * self.cfg.act_elems:][:cols]
        # float32 is exact here: every partial sum is an integer below cols·2^(A-1) <= 2^24
        if cols << (t.act_bits - 1) <= 1 << 24:
            return (w.astype(np.float32) @ x.astype(np.float32)).astype(np.int64)
        return w.astype(np.int64) @ x

    def _bad(self, ins: Instr) -> bool:
        """The decode-time checks of the module docstring."""
        cfg, t = self.cfg, self.cfg.tmv
        try:
            op = Op(ins.op)
        except ValueError:
            return True
        if op in SCALAR_OPS:
            return max(ins.d, ins.a, ins.b) >= cfg.sregs or ins.c > 63
        if op == Op.SLI:
            return ins.d >= cfg.sregs
        if op == Op.SADD:
            return max(ins.d, ins.a, ins.b) >= cfg.sregs
        if op == Op.TMV:
            fmt = ins.c & 1
            return not (1 <= ins.d <= t.max_out and 1 <= ins.a <= t.max_in and
                        ins.b < t.weight_depth and TMV_FORMATS[fmt] in t.formats) \
                or ins.c > 7
        if op in VECTOR_OPS:
            size = {"v": cfg.vmem_depth, "act": 2 * cfg.act_elems, "res": 2 * cfg.res_elems}
            spec = VECTOR_OPS[op]
            for k in ("d", "a", "b"):
                if k in spec and (getattr(ins, k) + self.vl > size[spec[k]] or
                                  not cfg.aligned(getattr(ins, k))):
                    return True
            if "c" in spec:
                return ins.c + (spec["c"] in ("sr2", "sk")) >= cfg.sregs
        return False

    def run(self, entry: int = 0, max_instructions: int = 1 << 24,
            check_races: bool = True) -> dict[str, int]:
        """Execute from ``entry`` to HALT (or an error); returns the run's counters
        (:data:`COUNTERS`), ``error`` (0/1) and ``pc`` (the halting instruction)."""
        cfg, S = self.cfg, self.sregs
        timer = Timer(cfg)
        pc = entry
        self.error = False
        for _ in range(max_instructions):
            if pc >= cfg.imem_depth:
                self.error = True
                break
            ins = decode_word(self.imem[pc])
            timer.issue()
            if self._bad(ins):
                self.error = True
                break
            op = Op(ins.op)
            # races are judged at the cycle the instruction starts, before any wait
            if check_races and op in VECTOR_OPS and timer.tmv_busy:
                self._check_race(op, ins, self._inflight)
            if check_races and op in VECTOR_OPS:
                self._check_overlap(op, ins)
            n, d, a, b, c = self.vl, ins.d, ins.a, ins.b, ins.c
            timer.execute(op, ins, n)
            if op == Op.HALT:
                break
            pc += 1
            if op == Op.SETVL:
                self.vl = a
            elif op == Op.SLI:
                S[d] = ins.imm
            elif op == Op.SMUL:
                S[d] = wrap((S[a] * S[b]) >> c, 64)
            elif op == Op.SDIV:
                den = S[b] & M64
                S[d] = wrap((((S[a] << c) & M64) // den) if den else 0, 64)
            elif op == Op.SSQRT:
                S[d] = math.isqrt((S[a] << c) & M64)
            elif op == Op.SADD:
                S[d] = wrap(S[a] + S[b], 64)
            elif op == Op.TMV:
                fmt, abank, rbank = TMV_FORMATS[c & 1], (c >> 1) & 1, (c >> 2) & 1
                self.res[rbank * cfg.res_elems:][:d] = self._matvec(d, a, b, fmt, abank)
                self._inflight = (abank, rbank)
            elif op in VECTOR_OPS:
                self._vector(op, ins, n, cfg.frac_bits)
        else:
            raise ProgramError(f"no HALT within {max_instructions} instructions")
        return {**timer.counts, "cycles": timer.t, "error": int(self.error), "pc": pc}

    def _check_race(self, op, ins, inflight):
        abank, rbank = inflight
        cfg = self.cfg
        if op == Op.VQUANT and ins.d < (abank + 1) * cfg.act_elems and \
                ins.d + self.vl > abank * cfg.act_elems:
            raise ProgramError(f"VQUANT writes act bank {abank} while a TMV reads it; "
                               "TWAIT first or use the other bank")
        if op == Op.VRESCALE and ins.a < (rbank + 1) * cfg.res_elems and \
                ins.a + self.vl > rbank * cfg.res_elems:
            raise ProgramError(f"VRESCALE reads result bank {rbank} while a TMV writes it; "
                               "TWAIT first")

    def _check_overlap(self, op, ins):
        spec = VECTOR_OPS[op]
        for k in ("a", "b"):
            src = getattr(ins, k)
            if spec.get("d") == "v" and spec.get(k) == "v" and src < ins.d < src + self.vl:
                raise ProgramError(f"{op.name} writes V[{ins.d}:] over its source "
                                   f"V[{src}:] at a higher address; the pipelined unit "
                                   "would read elements it has already written: use "
                                   "d <= a, b or disjoint ranges")

    def _vector(self, op, ins, n, F):
        cfg, V, S = self.cfg, self.vmem, self.sregs
        d, a, b, c = ins.d, ins.a, ins.b, ins.c
        x = V[a:a + n].copy() if VECTOR_OPS[op].get("a") == "v" else None
        half = 1 << (F - 1)
        if op == Op.VADD:
            V[d:d + n] = _wrap_arr(x + V[b:b + n], 32)
        elif op == Op.VSUB:
            V[d:d + n] = _wrap_arr(x - V[b:b + n], 32)
        elif op == Op.VMUL:
            V[d:d + n] = _wrap_arr((x * V[b:b + n] + half) >> F, 32)
        elif op == Op.VAFF:
            V[d:d + n] = _wrap_arr(((x * s32(S[c]) + half) >> F) + s32(S[c + 1]), 32)
        elif op == Op.VSIG:
            V[d:d + n] = _wrap_arr(sig_fixed(cfg, x, self._table), 32)
        elif op == Op.VSILU:
            V[d:d + n] = _wrap_arr((x * sig_fixed(cfg, x, self._table) + half) >> F, 32)
        elif op == Op.VNORM:
            N = cfg.norm_shift
            # |x·k| < 2**63 for int32 x and u32 k: int64 holds the product exactly
            q = np.clip((x * (S[c] & M32) + (1 << (N - 1))) >> N, -(1 << 31), (1 << 31) - 1)
            V[d:d + n] = q
            S[c + 1] = wrap(sum(int(v) * int(v) for v in q), 64)
        elif op == Op.VMAXABS:
            S[c] = int(np.abs(x).max()) if n else 0
        elif op == Op.VARGMAX:
            S[c] = int(np.argmax(x)) if n else 0
        elif op == Op.VQUANT:
            Q = cfg.quant_shift
            q = (x * s32(S[c]) + (1 << (Q - 1))) >> Q
            self.act[d:d + n] = np.clip(q, -128, 127)
        elif op == Op.VRESCALE:
            r, sh = self.res[a:a + n], cfg.rescale_frac - cfg.frac_bits
            V[d:d + n] = _wrap_arr((r * s32(S[c]) + (1 << sh >> 1)) >> sh, 32)
            self.rescales += 1
            self.zero_rescales += bool(n) and not V[d:d + n].any()


def estimate_cycles(cfg: MfcConfig, program, vl: int = 0) -> dict[str, int]:
    """The cycle model of a straight-line program without its data: the timing rules of
    :class:`Timer` applied to each word up to HALT. Returns the run's counters."""
    timer = Timer(cfg)
    for word in program:
        ins = decode_word(word)
        op = Op(ins.op)
        timer.issue()
        timer.execute(op, ins, vl)
        if op == Op.HALT:
            break
        if op == Op.SETVL:
            vl = ins.a
    return timer.counts
