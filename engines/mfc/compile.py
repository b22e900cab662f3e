"""Compile an HGRN-bit checkpoint into a program and memory image of the token core (MFC).

One run of the program is one token: the host writes the token's embedding (in the
residual's format Q.(F + ``x_shift``), :meth:`Compiled.embed`; the embedding lookup stays
on the host: the table is V×H floats the core has no use for) to
``layout.x``, starts the core, and reads the argmax token from scalar register
``layout.argmax`` (the argmax runs on the device; the logits stay readable at
``layout.logits`` when the lm_head fits one TMV command, else it runs in chunks with a
running argmax, :meth:`_Compiler.head`). The MLGRU state ``h`` of every layer lives in
the vector memory and carries over from one run to the next, so nothing but the
embedding crosses the link per token.

Addresses are real (vector memory, weight lines from line 0 in the order of
:func:`tritium.engines.tmv.placement.plan_weights`, the head's chunks last), also for a
shape alone (:func:`shape_program`); a model that does not fit the core is a
CompileError naming the limit and the config field to raise: the vector memory
(``mfc.vmem_depth``), the weight lines (``mfc.tmv.weight_depth``, with the weights in
DRAM also ``soc.dram.size``), the program (``mfc.imem_depth``), a matrix beyond
``mfc.tmv.max_in`` / ``max_out``.

Arithmetic (fixed point, see :mod:`tritium.engines.mfc.golden`). A BitLinear after a block norm
computes ``BitLinear(RMSNorm_eb(x)·w)`` with the BitLinear's own ``RMSNorm_el(·)·g``
(``eb`` = config ``rms_norm_eps``, ``el`` = :data:`~tritium.golden.quantize.BITLINEAR_NORM_EPS`).
Both norms scale by positive scalars, which the per-token absmax quantisation removes
again. The core first rescales the norm's input to max-abs 1 (``x̃ = x·κ``, VNORM with
``k = 2^31 // max|x|`` to max-abs 2^F_N, F_N = ``norm_frac``: Q.23 at the defaults, 7
bits finer than the residual's Q.F; before ``o_proj`` then scaled down exactly to Q.F,
below), so nothing below depends on the activations' scale; with ``t̃ = x̃⊙w`` and
``ũ = t̃⊙g``::

    x_q = round(ũ · 127 / max|ũ|)       y = acc · max|ũ| / (127 · s_w · D)
    D² = mean(t̃²) + el · (mean(x̃²) + κ²·eb)

which is the reference's ``y = acc · max|x̂| / (127 · s_w)`` with ``x̂ = ũ / D`` exactly:
both eps terms are kept (scaled by κ²). ``g_norm`` before ``o_proj`` is the same with
``x`` = the g_proj output and ``t̃ = x̃⊙w_g⊙SiLU(h)``, formed with f = F (times SiLU(h)'s
extra bits, below); it normalises the whole width, so ``num_heads`` has no numerical
effect. ``down_proj`` has no block norm: ``t̃ =
x̃`` and ``D² = mean(t̃²) + el·κ²``. Per norm the program computes ``n·D²·2^(2f)`` from
VNORM's exact sums of squares (SMULs for the eps terms, SADD), its square root once
(shifted so the root keeps F + 4 fraction bits), and per BitLinear the max-abs, ũ
renormalised to max-abs 2^F_N (so ``k = 127·2^Q/max`` has Q - F_N + 7 = 22 bits whatever
g did to the maximum), the quantisation, the TMV and the rescale factor ``c =
max|ũ|·Kp/root`` with the compile-time ``Kp = 2^(R + shift/2)·sqrt(n)/(127·s_w)``.
Static norm gains that would overflow the Q.F_N vectors are refused (CompileError).

Vector formats (static block exponents, :meth:`_Compiler.shifts`). A vector read only by a
norm, or by a product a norm then reads, may carry s extra fraction bits, Q.(F + s): the
norm divides the scale out, and its eps terms are scaled by 2^(2s) at compile time. The
compiler gives the residual, the MLGRU state with SiLU(i) and SiLU(h), the g_proj output
and the GLU's gate, y and SiLU(gate)⊙y each the largest s whose range it proves from the
checkpoint's own weights (a Cauchy-Schwarz bound per BitLinear output,
:meth:`_Compiler.output_bound`), so their relative precision follows the model's scale
rather than Q.F's fixed LSB: scaling a model's residual by λ moves its shift by -log2 λ.
σ reads its input in Q.F (:meth:`_Compiler.unshift`, a rounding VAFF), and SiLU(v) is
v·σ(v) with v at its own shift. The logits and the σ/f path stay in Q.F.

Schedule: the TMV runs while the vector unit prepares the next projection's input
(i/f/g share one normalised input; each quantises into the other activation bank) and
post-processes the previous one's output (SiLU(i), σ(f), the MLGRU update). Each matvec
starts as soon as its input is quantised: the scalar work only its result needs (the
norm's root: the eps terms and the square root; the rescale factor c) is emitted after
the TMV and runs under it (:meth:`_Compiler.issue`). Between dependent matvecs (g_proj →
o_proj → gate_proj → down_proj → the next layer's i_proj, and the lm_head) the rescale,
the residual add, the norm's vector passes and the quantisation stay in series with the
TMV; ``vpu_lanes`` shortens them (each vector op ``ceil(n / L) + 5`` cycles). Vectors
are allocated on lane boundaries (:meth:`_Emitter.alloc`).
"""

from __future__ import annotations

import dataclasses
import types

import numpy as np

from tritium.engines.mfc.config import MfcConfig, field_limit
from tritium.engines.tmv.config import TMV_FORMATS
from tritium.errors import TritiumError
from tritium.engines.mfc.golden import Machine, Op, encode, estimate_cycles
from tritium.engines.tmv.golden import tmv_lines
from tritium.golden.checkpoint import ARCH_HGRN, ModelDescription, load_checkpoint
from tritium.golden.quantize import BITLINEAR_NORM_EPS
from tritium.engines.tmv.placement import plan_weights


class CompileError(TritiumError):
    """The checkpoint cannot run on this core configuration (the message says what to change)."""


# scalar registers: constants first, then working registers. VNORM reads its factor from
# S[c] and writes the sum of squares to S[c+1]: R_ID/R_AT and R_KN/R_AX are such pairs.
R_127, R_NEG1, R_ONE = 0, 1, 2                      # R_NEG1/R_ONE: the pair (−1, +1) of VAFF
R_ID, R_AT = 3, 4                                   # identity factor 2^N; Σ t̃²
R_KN, R_AX = 5, 6                                   # k = 2^31 // max|x|; Σ x̃²
R_MAX, R_K, R_T, R_N, R_ROOT, R_ARGMAX, R_E = 7, 8, 9, 10, 11, 12, 13
R_C = (14, 15)                                      # rescale factors, one per result bank
N_REGS = 16
#: constants loaded by SLI stay below this (the product of one with an int32 in SMUL stays
#: inside 64 bits with room for the rescale's roundings)
CONST_LIMIT = 1 << 40
#: the chunked lm_head (:meth:`_Compiler.head`) adds this to each logit (Q.F) so that
#: VMAXABS finds the chunk's maximum: exact while |logit| < HEAD_BIAS, which the compiler
#: proves from the head's weights (else CompileError)
HEAD_BIAS = 1 << 30
#: the extra fraction bits of a vector (Compiled.x_shift, _Compiler.shifts) at most and at
#: least (negative: coarser than Q.F, for values beyond its range), and the bits of slack
#: a range bound keeps for the core's roundings
X_SHIFT_MAX, X_SHIFT_MIN, X_SHIFT_MARGIN = 24, -12, 1


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the host finds things (vector-memory element addresses, a scalar register).
    ``logits``: the head's output; all ``vocab`` logits when ``head_chunks`` is 1, else
    the last chunk only (biased by HEAD_BIAS): no memory holds all of them then."""

    x: int
    logits: int
    argmax: int
    vmem_used: int
    head_chunks: int = 1


@dataclasses.dataclass
class Compiled:
    """A checkpoint compiled for one core configuration."""

    cfg: MfcConfig
    fmt: str
    program: list[int]
    vmem: dict[int, np.ndarray]       # address -> int32 values (constants and zero state)
    weights: list[int]                # packed weight lines from line 0
    placements: dict                  # BitLinear name -> LayerPlacement
    layout: Layout
    hidden: int
    vocab: int
    embeddings: np.ndarray            # [V, H] float32, for the host-side lookup
    state: list[tuple[int, int]]      # (address, length) of each layer's MLGRU state
    x_shift: int = 0                  # extra fraction bits of the residual (Q.(F + this))

    def embed(self, token: int) -> np.ndarray:
        """The token's embedding in the residual's format, Q.(F + ``x_shift``)."""
        if not 0 <= token < self.vocab:
            raise CompileError(f"token id {token} is outside [0, {self.vocab - 1}]")
        return to_fixed(self.embeddings[token], self.cfg.frac_bits + self.x_shift)

    def estimate(self) -> dict[str, int]:
        """Cycles per token by the cycle model (the program is straight-line)."""
        return estimate_cycles(self.cfg, self.program)

    def listing(self) -> str:
        from tritium.engines.mfc.golden import disassemble
        return "\n".join(f"{k:5d}  {disassemble(w)}" for k, w in enumerate(self.program))


def to_fixed(values, frac_bits: int) -> np.ndarray:
    """Float -> int32 Q.F, rounded half up, saturated."""
    v = np.floor(np.asarray(values, dtype=np.float64) * (1 << frac_bits) + 0.5)
    return np.clip(v, -(1 << 31), (1 << 31) - 1).astype(np.int64)


class _Emitter:
    def __init__(self, cfg: MfcConfig, dry: bool = False):
        self.cfg, self.words, self.vl, self.dry = cfg, [], None, dry
        self.vmem: dict[int, np.ndarray] = {}
        self.top = 0

    def alloc(self, n: int, init=None, what: str = "") -> int:
        """``n`` elements of V at the next address a vector op may name (a multiple of
        ``vpu_lanes``, :meth:`MfcConfig.aligned`), optionally holding ``init`` in Q.F."""
        lanes = self.cfg.vpu_lanes
        addr = -(-self.top // lanes) * lanes
        self.top = addr + n
        if self.top > self.cfg.vmem_depth:
            raise CompileError(f"the vector memory is too small ({self.cfg.vmem_depth} "
                               f"elements; {what or 'the model'} needs more); raise "
                               "mfc.vmem_depth")
        if init is not None and not self.dry:   # dry: the shape's program, no data
            self.vmem[addr] = to_fixed(init, self.cfg.frac_bits)
        return addr

    def __call__(self, op: Op, **fields) -> None:
        try:
            self.words.append(encode(op, **fields))
        except ValueError as err:   # MfcConfig keeps every depth inside its field
            raise CompileError(f"{err}: an instruction field is too narrow for this "
                               "model") from None

    def setvl(self, n: int) -> None:
        if n != self.vl:
            self(Op.SETVL, a=n)
            self.vl = n


class _Compiler:
    def __init__(self, desc: ModelDescription, cfg: MfcConfig, fmt: str, dry: bool = False):
        self.desc, self.cfg, self.fmt = desc, cfg, fmt
        self.e = e = _Emitter(cfg, dry)
        self.F = cfg.frac_bits
        self.H, self.I, self.V = desc.hidden_size, desc.intermediate_size, desc.vocab_size
        t = cfg.tmv
        self.head_parts = self.head_chunks(desc.lm_head)
        linears = [x for x in desc.bitlinears() if x is not desc.lm_head] + self.head_parts
        lines = sum(t.words(*x.codes.shape) for x in linears)
        if lines > t.weight_depth:
            where = ("the SoC's DRAM (tmv.weights_dram)" if t.weights_dram else
                     "the core's weight memory")
            raise CompileError(
                f"the weights need {lines} lines of {t.line_stride} bytes "
                f"({lines * t.line_stride / 2**20:.1f} MiB), more than {where} addresses "
                f"(mfc.tmv.weight_depth={t.weight_depth}); raise mfc.tmv.weight_depth"
                + (" and soc.dram.size to hold them" if t.weights_dram else
                   " or put the weights in DRAM (mfc.tmv.weights_dram=1)"))
        try:
            # dry (a shape only): the same placement, its codes never packed
            self.plan = plan_weights(t, linears, fmt)
        except TritiumError as err:
            raise CompileError(f"{err}; raise mfc.tmv.max_in / max_out") from None
        self.bank = 0
        self.pending_root: list[int] = []   # the last norm's root, emitted by issue()
        self.next_name = "a BitLinear"    # names the norm in a CompileError
        # working vectors
        H, I = self.H, self.I
        self.x = e.alloc(H, what="the residual")
        self.t, self.u = e.alloc(max(H, I)), e.alloc(max(H, I))
        self.iv, self.ivs, self.fv, self.gv, self.tmp = (e.alloc(H) for _ in range(5))
        self.mlp = e.alloc(2 * I, what="the MLP")
        self.logits = e.alloc(self.head_parts[0].codes.shape[0], what="the logits")

    # --- one norm, then BitLinears on its output, split around the TMV ---------------------
    def _scaled(self, dst: int, k: int, eps: float, n: int, frac: int,
                in_shift: int = 0, t_shift: int = 0) -> None:
        """S[dst] = (S[k]·sqrt(base))² with base = n·eps·2^(2(F+in_shift+t_shift)+2f-62),
        in an SLI and two SMULs: with S[k] = k = 2^31 // max|x| that is n·eps·κ²·2^(2f)
        for a norm to max-abs 2^f (:meth:`norm`; κ = k·2^(F+in_shift)/2^31 for an input
        held in Q.(F + in_shift)), times 2^(2·t_shift) when t̃ carries that many extra
        fraction bits. sqrt(base) is loaded with the largest shift a (<= 63) that keeps
        it below CONST_LIMIT, the first SMUL shifts a out (k·sqrt(base), floored: a
        relative error below 1/(k·sqrt(base)), which matters only where the term is
        small beside Σ t̃²), the second squares. The result is n·eps·2^(2f)/max|x|² in
        the units of Σ t̃² (max|x| the input's value): below 2^60 for n <= 8192, eps <=
        1e-6 and max|x| >= 2^(f-37) (7e-4 at f = F_N = 23, an input RMS of about 1e-4);
        smaller inputs can overflow it. Raises CompileError if even a = 0 leaves sqrt(base)
        above CONST_LIMIT (the vector's format is for values far below that floor)."""
        e = self.e
        base = n * eps * 2.0 ** (2 * (self.F + in_shift + t_shift) + 2 * frac - 2 * 31)
        root = float(np.sqrt(base))
        shift = min(63, int(np.floor(np.log2(CONST_LIMIT / root))))
        if shift < 0:
            raise CompileError(f"the norm before {self.next_name}: its eps term does not fit "
                               "the scalar unit at this vector format (activations bounded "
                               "far below RMS 1e-4); rescale the checkpoint")
        e(Op.SLI, d=R_E, imm=int(np.floor(root * 2.0 ** shift + 0.5)))
        e(Op.SMUL, d=dst, a=k, b=R_E, c=shift)
        e(Op.SMUL, d=dst, a=dst, b=dst, c=0)

    def _check_gains(self, what: str, n: int, frac: int, gains, squares: bool) -> None:
        """The static gains multiplied into a vector normalised to max-abs 2^frac keep it
        inside int32 (max|Πgains| < 2^(31-frac)) and, if its squares are summed, the sum
        below 2^63 (n·max|Πgains|²·2^(2·frac) < 2^63); else a CompileError."""
        g = np.ones(n)
        for v in gains:
            g = g * np.abs(np.asarray(v, dtype=np.float64))
        top = float(g.max()) if n else 0.0
        if top >= 2.0 ** (31 - frac) or (squares and n * top ** 2 >= 2.0 ** (63 - 2 * frac)):
            raise CompileError(f"{what}: norm gains up to {top:.3g} overflow the normalised "
                               f"vectors (Q.{frac} in int32, squares summed in 64 bits); "
                               "lower mfc.norm_frac")

    def norm(self, x: int, n: int, mults=(), eps_block: float | None = None,
             gains=(), frac: int | None = None, in_shift: int = 0,
             t_shift: int = 0) -> None:
        """t̃ = (V[x:x+n]·κ) ⊙ mults[0] ⊙ ... into V[self.t:], the norm's input rescaled
        to max-abs 1 in Q.frac (default F_N = ``norm_frac``; κ = k·2^F/2^31), and
        R_ROOT = isqrt(n·D²·2^(2·frac) << root shift) with
        ``D² = mean(t̃²) + el·(mean(x̃²) + κ²·eps_block)`` (module docstring); without a
        block norm (``eps_block`` None, no mults) ``D² = mean(x̃²) + el·κ²``. ``gains``:
        the static vectors among ``mults`` (checked, :meth:`_check_gains`). Sets
        ``self.root_shift`` (2·(F + 4 - frac), at least 0: the root keeps F + 4
        fraction bits) and ``self.gains`` for :meth:`issue`. ``in_shift``: V[x:] holds
        Q.(F + in_shift) (:meth:`shifts`); only κ's eps terms see it, the normalisation
        divides it out. ``t_shift``: a dynamic vector among ``mults`` holds Q.(F +
        t_shift), so t̃ holds Q.(frac + t_shift) and both eps terms are scaled by
        2^(2·t_shift) to match; D, max|ũ| and so the rescale carry the same factor, which
        cancels."""
        e, el, cfg = self.e, BITLINEAR_NORM_EPS, self.cfg
        frac = cfg.norm_frac if frac is None else frac
        self._check_gains(f"the norm before {self.next_name}", n, frac, gains, True)
        self.gains, self.frac = list(gains), frac
        down = cfg.norm_shift - (cfg.norm_frac - frac)
        if down < 0:
            raise CompileError(f"norm_frac {cfg.norm_frac} is too far above frac_bits "
                               f"{self.F} for the norm before {self.next_name}; lower "
                               "mfc.norm_frac")
        e.setvl(n)
        e(Op.VMAXABS, a=x, c=R_MAX)
        # R_ONE << (31 - F) = 2^31: k = 2^31 // max|x| keeps 31 bits whatever max|x|
        e(Op.SDIV, d=R_KN, a=R_ONE, b=R_MAX, c=31 - self.F)
        e(Op.VNORM, d=self.t, a=x, c=R_KN)                   # x̃ in Q.F_N; R_AX = Σ x̃²
        sx = R_AX
        if frac < cfg.norm_frac:
            # exactly (rounded) x̃ / 2^(F_N - frac): a smaller k would lose its bits
            e(Op.SLI, d=R_T, imm=1 << down)
            e(Op.VNORM, d=self.t, a=self.t, c=R_T)           # R_N = Σ x̃² in Q.frac
            sx = R_N
        if eps_block is not None:
            for w in mults:
                e(Op.VMUL, d=self.t, a=self.t, b=w)
            e(Op.VNORM, d=self.t, a=self.t, c=R_ID)          # identity; R_AT = Σ t̃²
        # the root, from R_KN, sx and R_AT (which issue() leaves alone), is only needed
        # for the rescale factors: it is held back and emitted after the first TMV
        mark = len(e.words)
        if eps_block is None:
            self._scaled(R_T, R_KN, el, n, frac, in_shift, t_shift)  # n·el·κ²·2^(2f)
            e(Op.SADD, d=R_N, a=sx, b=R_T)
        else:
            # el·2^50 (30 bits of el) shifted by 50 - 2·t_shift: el·Σ x̃²·2^(2·t_shift)
            shift = min(63, 50 - 2 * t_shift)
            e(Op.SLI, d=R_E, imm=int(np.floor(el * 2.0 ** (shift + 2 * t_shift) + 0.5)))
            e(Op.SMUL, d=R_T, a=sx, b=R_E, c=shift)
            e(Op.SADD, d=R_N, a=R_AT, b=R_T)
            self._scaled(R_T, R_KN, el * eps_block, n, frac,  # n·el·eb·κ²·2^(2f)
                         in_shift, t_shift)
            e(Op.SADD, d=R_N, a=R_N, b=R_T)
        self.root_shift = max(0, 2 * (self.F + 4 - frac))
        e(Op.SSQRT, d=R_ROOT, a=R_N, c=self.root_shift)
        self.pending_root = e.words[mark:]
        del e.words[mark:]

    def issue(self, lin, src: int, n: int, out_shift: int = 0) -> tuple[int, int]:
        """Quantise V[src:src+n]·g into a free act bank, start the TMV and compute the
        rescale factor of its results (:meth:`quantise`, :meth:`tmv`,
        :meth:`rescale_factor`); returns (result bank, rescale register). The norm's root
        (:meth:`norm`) for ``src`` is pending or in R_ROOT.

        Schedule: what the matvec's input needs (g, the max-abs, the renormalisation, the
        quantisation) runs before the TMV; what only its result needs (the norm's root,
        when still pending, and the rescale factor c) runs after it, under the matvec."""
        bank = self.quantise(lin, src, n)
        self.tmv(self.plan[lin.name], bank, bank)
        self.rescale_factor(lin, bank, n, out_shift)
        return bank, R_C[bank]

    def tmv(self, p, abank: int, rbank: int) -> None:
        """TMV of placement ``p`` from act bank ``abank`` into result bank ``rbank``."""
        self.e(Op.TMV, d=p.rows, a=p.cols, b=p.base,
               c=TMV_FORMATS.index(self.fmt) | abank << 1 | rbank << 2)

    def quantise(self, lin, src: int, n: int) -> int:
        """Quantise V[src:src+n]·g into a free act bank (returned), leaving max|ũ| in
        R_MAX for :meth:`rescale_factor`.

        ũ = t̃⊙g is renormalised to max-abs in (2^(F_N-1), 2^F_N] before VQUANT, so its
        factor k = 127·2^Q / max|ũ'| always has Q - F_N + 7 bits (whatever g and, for
        o_proj, SiLU(h) did to the maximum) and fits 32 bits (MfcConfig checks Q). The
        renormalisation uses the pair R_K/R_T, so R_KN, R_AX, R_N and R_AT keep the
        norm's sums for a pending root."""
        e, cfg = self.e, self.cfg
        e.setvl(n)
        u = src
        if lin.norm_weight is not None:
            self._check_gains(lin.name, n, self.frac, [*self.gains, lin.norm_weight], False)
            g = e.alloc(n, lin.norm_weight, f"{lin.name} norm")
            e(Op.VMUL, d=self.u, a=src, b=g)
            u = self.u
        bank = self.bank
        self.bank ^= 1
        e(Op.VMAXABS, a=u, c=R_MAX)                          # max|ũ|, for the rescale
        e(Op.SDIV, d=R_K, a=R_ONE, b=R_MAX, c=31 - self.F)
        e(Op.VNORM, d=self.u, a=u, c=R_K)                    # ũ' (R_T: unused sum)
        e(Op.VMAXABS, a=self.u, c=R_T)
        e(Op.SDIV, d=R_K, a=R_127, b=R_T, c=cfg.quant_shift)
        e(Op.VQUANT, d=bank * cfg.act_elems, a=self.u, c=R_K)
        return bank

    def rescale_factor(self, lin, bank: int, n: int, out_shift: int = 0) -> None:
        """The norm's root, if still pending, then R_C[bank] = the factor rescaling
        ``lin``'s results to Q.(F + out_shift) (``x_shift`` for what adds to the
        residual): c = max|ũ|·Kp / root with Kp = 2^(R + root shift/2)·sqrt(n) /
        (127·s_w), R_MAX holding max|ũ| (:meth:`quantise`). Emitted after the TMV: it
        runs under the matvec."""
        e, cfg = self.e, self.cfg
        e.words += self.pending_root
        self.pending_root = []
        # Kp is loaded with extra fraction bits that the SMUL shifts out
        kp = 2.0 ** (cfg.rescale_frac + out_shift + self.root_shift / 2) * np.sqrt(n) / \
            (127.0 * lin.scale)
        if not 1 <= kp < CONST_LIMIT:
            raise CompileError(f"{lin.name}: the rescale constant {kp:.4g} is outside [1, "
                               f"{CONST_LIMIT:.4g}) (weight scale out of range); lower "
                               "mfc.rescale_frac")
        sh = min(63, int(np.floor(np.log2(CONST_LIMIT / kp))))
        e(Op.SLI, d=R_E, imm=int(np.floor(kp * 2.0 ** sh + 0.5)))
        e(Op.SMUL, d=R_T, a=R_MAX, b=R_E, c=sh)
        e(Op.SDIV, d=R_C[bank], a=R_T, b=R_ROOT, c=0)

    def head_chunks(self, lin) -> list:
        """The lm_head as the TMV runs it: itself if its rows fit one command and one
        result bank, else consecutive row ranges of ``tmv.max_out`` rows (the last one
        shorter), each placed as a BitLinear of its own named ``lm_head[r0:r1]``."""
        rows, step = lin.codes.shape[0], self.cfg.tmv.max_out
        if rows <= step:
            return [lin]
        return [types.SimpleNamespace(name=f"{lin.name}[{r0}:{min(rows, r0 + step)}]",
                                      codes=lin.codes[r0:r0 + step], scale=lin.scale,
                                      norm_weight=lin.norm_weight)
                for r0 in range(0, rows, step)]

    def head(self, lin, src: int) -> None:
        """The logits and their argmax into R_ARGMAX: the first index of the maximum over
        all ``vocab`` rows, as VARGMAX over the whole vector would give it.

        One chunk: TMV, VRESCALE into V[logits:], VARGMAX. Several (:meth:`head_chunks`):
        the input is quantised once and every chunk's TMV reads that act bank, writing
        the result banks in turn, so chunk k + 1 computes while chunk k is rescaled into
        V[logits:] and merged: each logit gets HEAD_BIAS added (VAFF, exact: |logit| <
        HEAD_BIAS is proven, else CompileError), VMAXABS is then the chunk's biased
        maximum m and VARGMAX its first index i; with the best so far (b in R_ROOT, its
        index in R_ARGMAX), the flag f = (b - m) >> 63 (-1 when m > b, else 0: a tie keeps
        the earlier chunk) selects without a branch: b -= f·(b - m), index -= f·(index -
        (i + r0)). No memory holds all the logits."""
        e, cfg, F = self.e, self.cfg, self.F
        parts = self.head_parts
        if len(parts) == 1:
            issued = self.issue(lin, src, self.H)
            e(Op.TWAIT)
            self.result(issued, self.logits, self.V)
            e(Op.VARGMAX, a=self.logits, c=R_ARGMAX)
            return
        bound = 0.0 if e.dry else self.output_bound(lin) * 2.0 ** F
        if not bound < HEAD_BIAS:
            raise CompileError(f"{lin.name}: its logits may reach {bound / 2**F:.4g}, beyond "
                               f"the chunked argmax's exact range (±{HEAD_BIAS / 2**F:g} at "
                               f"frac_bits={F}); lower mfc.frac_bits or raise "
                               "mfc.tmv.max_out to take the head in one chunk")
        bank = self.quantise(lin, src, self.H)

        def merge(k: int) -> None:
            rows, r0 = parts[k].codes.shape[0], k * cfg.tmv.max_out
            e.setvl(rows)
            e(Op.VRESCALE, d=self.logits, a=(k % 2) * cfg.res_elems, c=R_C[k % 2])
            e(Op.SLI, d=R_T, imm=1 << F)
            e(Op.SLI, d=R_N, imm=HEAD_BIAS)
            e(Op.VAFF, d=self.logits, a=self.logits, c=R_T)   # logit + HEAD_BIAS >= 0
            e(Op.VMAXABS, a=self.logits, c=R_MAX)             # m
            e(Op.VARGMAX, a=self.logits, c=R_K)               # i
            if k == 0:
                e(Op.SLI, d=R_E, imm=0)
                e(Op.SADD, d=R_ROOT, a=R_MAX, b=R_E)
                e(Op.SADD, d=R_ARGMAX, a=R_K, b=R_E)
                return
            e(Op.SLI, d=R_E, imm=r0)
            e(Op.SADD, d=R_K, a=R_K, b=R_E)                   # i + r0
            e(Op.SMUL, d=R_AX, a=R_MAX, b=R_NEG1, c=F)        # -m
            e(Op.SADD, d=R_AX, a=R_ROOT, b=R_AX)              # b - m
            e(Op.SMUL, d=R_AT, a=R_AX, b=R_ONE, c=63)         # f
            e(Op.SMUL, d=R_AX, a=R_AT, b=R_AX, c=0)
            e(Op.SADD, d=R_ROOT, a=R_ROOT, b=R_AX)
            e(Op.SMUL, d=R_E, a=R_K, b=R_NEG1, c=F)
            e(Op.SADD, d=R_E, a=R_ARGMAX, b=R_E)
            e(Op.SMUL, d=R_E, a=R_AT, b=R_E, c=0)
            e(Op.SADD, d=R_ARGMAX, a=R_ARGMAX, b=R_E)

        for k, part in enumerate(parts):
            self.tmv(self.plan[part.name], bank, k % 2)
            if not k:
                # under the first chunk: the factor, for both result banks
                self.rescale_factor(lin, bank, self.H)
                e(Op.SLI, d=R_E, imm=0)
                e(Op.SADD, d=R_C[1 - bank], a=R_C[bank], b=R_E)
            else:
                merge(k - 1)
        e(Op.TWAIT)
        merge(len(parts) - 1)

    def result(self, issued: tuple[int, int], dst: int, rows: int) -> None:
        bank, reg = issued
        self.e.setvl(rows)
        self.e(Op.VRESCALE, d=dst, a=bank * self.cfg.res_elems, c=reg)

    def unshift(self, dst: int, src: int, shift: int) -> None:
        """V[dst:] = V[src:] (Q.(F + shift)) rounded to Q.F: VAFF with the pair
        (2^(F - shift), 0) in R_T/R_N (free between a norm's uses), for σ's input."""
        e = self.e
        e(Op.SLI, d=R_T, imm=1 << (self.F - shift))     # < 2^31: shift > F - 31
        e(Op.SLI, d=R_N, imm=0)
        e(Op.VAFF, d=dst, a=src, c=R_T)

    def constants(self) -> None:
        """The constant registers every program starts by loading."""
        F = self.F
        for reg, value in ((R_127, 127), (R_NEG1, -(1 << F)), (R_ONE, 1 << F),
                           (R_ID, 1 << self.cfg.norm_shift)):
            self.e(Op.SLI, d=reg, imm=value)

    # --- the residual's format ---------------------------------------------------------------
    @staticmethod
    def output_bound(lin) -> float:
        """A bound on |y| of a BitLinear's output, from its weights alone. The core's y_i =
        Σ_j W_ij·q_j·max|x̂| / (127·s_w) with W_ij ternary and q = round(x̂·127/max|x̂|), so
        by Cauchy-Schwarz |y_i| <= sqrt(nnz_i)·‖q‖·max|x̂| / (127·s_w) with nnz_i the
        nonzero weights of row i; an RMSNorm's output has ‖x_n‖ <= sqrt(n), so ‖x̂‖ <=
        sqrt(n)·max|g| and max|x̂| <= the same, and the rounding adds at most
        sqrt(n)/2 codes: |y| <= sqrt(max nnz_i)·sqrt(n)·max|g|·(1 + sqrt(n)/254) / s_w."""
        g = 1.0 if lin.norm_weight is None else float(np.abs(lin.norm_weight).max(initial=0))
        nnz = int((np.asarray(lin.codes) != 1).sum(1).max(initial=0))
        n = lin.codes.shape[1]
        return np.sqrt(nnz * n) * g * (1 + np.sqrt(n) / 254) / float(lin.scale)

    def _fit(self, top: float, rescaled=(), budget: int = 31, cap: int = X_SHIFT_MAX) -> int:
        """The largest shift s in [X_SHIFT_MIN, cap] with top·2^(F+s) <
        2^(budget - X_SHIFT_MARGIN)
        (``top`` a proven bound on the values) and, for each BitLinear in ``rescaled``
        (rescaled into that format), its rescale factor c = 2^(R+s)·max|x̂| / (127·s_w)
        <= 2^(R+s)·sqrt(n)·max|g| / (127·s_w) below 2^(31 - X_SHIFT_MARGIN) (VRESCALE
        takes s32(S[c])), and its constant Kp <= 2^(R+s+4)·sqrt(n) / (127·s_w) (a root
        shift of at most 8, :meth:`issue`) below CONST_LIMIT."""
        cfg, F = self.cfg, self.F
        s = cap
        if top > 0:
            s = min(s, int(np.floor(np.log2(2.0 ** (budget - X_SHIFT_MARGIN) / top))) - F)
        for lin in rescaled:
            g = 1.0 if lin.norm_weight is None else float(np.abs(lin.norm_weight).max())
            kp = 2.0 ** cfg.rescale_frac * np.sqrt(lin.codes.shape[1]) / \
                (127.0 * float(lin.scale))
            s = min(s, int(np.floor(np.log2(CONST_LIMIT / (16 * kp)))))
            if g > 0:
                s = min(s, int(np.floor(np.log2(2.0 ** (31 - X_SHIFT_MARGIN) / (kp * g)))))
        return max(X_SHIFT_MIN, s)

    def shifts(self) -> dict:
        """The extra fraction bits of the vectors whose consumers are scale-free (an
        RMSNorm, or a product that one normalises), chosen from bounds proven on the
        checkpoint's own weights (:meth:`output_bound`), so that their relative precision
        follows the model's scale instead of Q.F's fixed LSB:

        - ``x``, the residual (:attr:`Compiled.x_shift`): |r| <= max|embedding| + Σ over
          layers (bound of o_proj + bound of down_proj);
        - per layer ``h``: the MLGRU state, SiLU(i) and SiLU(h), |h| <= bound of i_proj
          (h is a convex combination of SiLU(i) values, |SiLU(v)| <= |v|); t̃ =
          x̃⊙w_g⊙SiLU(h) keeps its sum of squares, shifted by o_proj's root shift, below
          2^64 and ũ = t̃⊙g inside int32;
        - ``g``: the g_proj output (only o_proj's norm reads it);
        - ``m``: both halves of the gate_proj output, and twice that for SiLU(gate)⊙y,
          |·| <= B² with B gate_proj's bound.

        σ's inputs stay in Q.F (:meth:`unshift`). Each shift is in [X_SHIFT_MIN,
        X_SHIFT_MAX] (``h`` and ``m`` at most F, the VAFF of unshift); a model whose bound
        needs less than X_SHIFT_MIN is not proven free of wrap-around."""
        desc, F, H = self.desc, self.F, self.H
        emb = desc.tensors.get("model.embeddings.weight")
        top = float(np.abs(emb).max(initial=0)) if emb is not None else 0.0
        adds = [la.linears[k] for la in desc.layers for k in ("attn.o_proj", "mlp.down_proj")]
        top += sum(self.output_bound(lin) for lin in adds)
        out = {"x": self._fit(top, adds), "layers": []}
        for la in desc.layers:
            lin = la.linears
            bi = self.output_bound(lin["attn.i_proj"])
            wg = float(np.abs(la.tensors["attn.g_norm.weight"]).max(initial=0))
            og = lin["attn.o_proj"].norm_weight
            go = 1.0 if og is None else float(np.abs(og).max(initial=0))
            # o_proj's norm has frac = F: its root shift is 2·4 = 8 bits
            sh = min(self._fit(bi * wg * np.sqrt(H) * 2.0 ** 4, [], budget=32, cap=F),
                     self._fit(bi * wg * go, [lin["attn.i_proj"]]),
                     self._fit(bi, [], cap=F))
            bm = self.output_bound(lin["mlp.gate_proj"])
            sm = min(self._fit(bm, [lin["mlp.gate_proj"]], cap=F),
                     self._fit(bm * bm, [], cap=2 * X_SHIFT_MAX) // 2)
            out["layers"].append({"h": sh, "g": self._fit(self.output_bound(lin["attn.g_proj"]),
                                                           [lin["attn.g_proj"]]), "m": sm})
        return out

    # --- the model ------------------------------------------------------------------------
    def compile(self) -> Compiled:
        desc, e, cfg, H, I = self.desc, self.e, self.cfg, self.H, self.I
        eps = float(desc.rms_norm_eps)
        shifts = self.shifts()
        xs = shifts["x"]
        self.constants()
        lower = desc.tensors.get("model.lower_bounds")
        if lower is not None:
            p = np.exp(lower - lower.max(0))
            p = p / p.sum(0)
            lower = np.cumsum(p, 0) - p[0]
        state = []
        for layer, sl in zip(desc.layers, shifts["layers"]):
            sh, sg, sm = sl["h"], sl["g"], sl["m"]
            lin = layer.linears
            tens = layer.tensors
            h = e.alloc(H, np.zeros(H), "the MLGRU state")
            state.append((h, H))
            # ---- MLGRU: f, i, g share t = x ⊙ w_attn
            w_attn = e.alloc(H, tens["attn_norm.weight"])
            self.next_name = f"model.layers.{layer.index}.attn"
            self.norm(self.x, H, [w_attn], eps, gains=[tens["attn_norm.weight"]], in_shift=xs)
            ti = self.issue(lin["attn.i_proj"], self.t, H, out_shift=sh)
            tf = self.issue(lin["attn.f_proj"], self.t, H)     # waits for i's TMV to finish
            self.result(ti, self.ivs, H)                       # i in Q.(F + sh)
            self.unshift(self.iv, self.ivs, sh)                # ... and in Q.F, for σ
            e(Op.VSIG, d=self.iv, a=self.iv)
            e(Op.VMUL, d=self.ivs, a=self.ivs, b=self.iv)      # SiLU(i) = i·σ(i)
            tg = self.issue(lin["attn.g_proj"], self.t, H, out_shift=sg)  # waits for f's
            self.result(tf, self.fv, H)
            e(Op.VSIG, d=self.fv, a=self.fv)
            if lower is not None and layer.index > 0:
                lb = lower[layer.index]
                one_m = e.alloc(H, 1.0 - lb)
                lbv = e.alloc(H, lb)
                e(Op.VMUL, d=self.fv, a=self.fv, b=one_m)
                e(Op.VADD, d=self.fv, a=self.fv, b=lbv)
            e(Op.VAFF, d=self.tmp, a=self.fv, c=R_NEG1)           # 1 - f
            e(Op.VMUL, d=self.ivs, a=self.ivs, b=self.tmp)         # i = SiLU(i)·(1 - f)
            e(Op.VMUL, d=h, a=self.fv, b=h)
            e(Op.VADD, d=h, a=h, b=self.ivs)                       # h = f ⊙ h + i
            self.unshift(self.iv, h, sh)
            e(Op.VSIG, d=self.iv, a=self.iv)
            e(Op.VMUL, d=self.tmp, a=h, b=self.iv)                 # SiLU(h), Q.(F + sh)
            e(Op.TWAIT)
            self.result(tg, self.gv, H)                            # g in Q.(F + sg)
            w_g = e.alloc(H, tens["attn.g_norm.weight"])
            # g_norm(g) ⊙ SiLU(h): t̃ = x̃⊙w_g in Q.F, times SiLU(h) in Q.(F + sh), whose
            # bound (shifts) keeps t̃ and its sum of squares in range; ũ is renormalised
            self.next_name = lin["attn.o_proj"].name
            self.norm(self.gv, H, [w_g, self.tmp], eps, gains=[tens["attn.g_norm.weight"]],
                      frac=self.F, in_shift=sg, t_shift=sh)
            to = self.issue(lin["attn.o_proj"], self.t, H, out_shift=xs)
            e(Op.TWAIT)
            self.result(to, self.tmp, H)
            e(Op.VADD, d=self.x, a=self.x, b=self.tmp)             # r = x + o
            # ---- GLU MLP
            w_mlp = e.alloc(H, tens["mlp_norm.weight"])
            self.next_name = lin["mlp.gate_proj"].name
            self.norm(self.x, H, [w_mlp], eps, gains=[tens["mlp_norm.weight"]], in_shift=xs)
            tgate = self.issue(lin["mlp.gate_proj"], self.t, H, out_shift=sm)
            e(Op.TWAIT)
            self.result(tgate, self.mlp, 2 * I)                    # gate, y in Q.(F + sm)
            e.setvl(I)
            self.unshift(self.u, self.mlp, sm)
            e(Op.VSIG, d=self.u, a=self.u)
            e(Op.VMUL, d=self.mlp, a=self.mlp, b=self.u)           # SiLU(gate)
            e(Op.VMUL, d=self.t, a=self.mlp, b=self.mlp + I)       # ⊙ y: Q.(F + 2·sm)
            self.next_name = lin["mlp.down_proj"].name
            self.norm(self.t, I, in_shift=2 * sm)
            tdown = self.issue(lin["mlp.down_proj"], self.t, I, out_shift=xs)
            e(Op.TWAIT)
            self.result(tdown, self.tmp, H)
            e(Op.VADD, d=self.x, a=self.x, b=self.tmp)
        # ---- head
        e.setvl(H)
        w_f = e.alloc(H, desc.tensors["model.norm.weight"])
        self.next_name = desc.lm_head.name
        self.norm(self.x, H, [w_f], eps, gains=[desc.tensors["model.norm.weight"]],
                  in_shift=xs)
        self.head(desc.lm_head, self.t)
        e(Op.HALT)
        if len(e.words) > cfg.imem_depth:
            raise CompileError(f"the program has {len(e.words)} instructions, more than the "
                               f"instruction memory ({cfg.imem_depth}); raise mfc.imem_depth")
        if e.dry:
            return e.words
        lines = []
        for p in self.plan.values():
            lines += tmv_lines(cfg.tmv, p.codes, self.fmt)
        return Compiled(cfg, self.fmt, e.words, e.vmem, lines, self.plan,
                        Layout(self.x, self.logits, R_ARGMAX, e.top, len(self.head_parts)),
                        H, self.V,
                        desc.tensors["model.embeddings.weight"].astype(np.float32), state, xs)


def compile_model(model, cfg: MfcConfig | None = None, fmt: str = "t2") -> Compiled:
    """Compile an HGRN-bit model (a ModelDescription or a checkpoint path) for ``cfg``.

    Raises CompileError when the model does not fit the configuration or uses what the
    core does not implement (another architecture, ``expand_ratio`` ≠ 1,
    ``use_short_conv``). ``num_heads`` may be anything upstream accepts: g_norm
    normalises the whole width, so heads have no numerical effect."""
    cfg = cfg or MfcConfig()
    desc = model if isinstance(model, ModelDescription) else load_checkpoint(model)
    if desc.arch != ARCH_HGRN:
        raise CompileError(f"{desc.source} is a {desc.arch} checkpoint; the token core runs "
                           "HGRN-bit (MatMul-free LM) models")
    expand = desc.config.get("expand_ratio")
    if expand not in (None, 1):
        raise CompileError(f"expand_ratio={expand}: the core implements expand_ratio 1 (the "
                           "released MMfreeLM checkpoints); this checkpoint cannot run on it")
    if desc.config.get("use_short_conv"):
        raise CompileError("use_short_conv=true: the core has no short convolution (nor can "
                           "upstream run one); use a checkpoint with use_short_conv false")
    if desc.intermediate_size % cfg.vpu_lanes:
        raise CompileError(f"intermediate_size {desc.intermediate_size} is not a multiple of "
                           f"mfc.vpu_lanes={cfg.vpu_lanes}: the GLU's second half would "
                           "start off a lane boundary; lower mfc.vpu_lanes")
    if cfg.sregs < N_REGS:
        raise CompileError(f"the program uses {N_REGS} scalar registers; raise mfc.sregs")
    if fmt not in cfg.tmv.formats:
        raise CompileError(f"this core's TMV has no {fmt} decoder; use one of "
                           f"{list(cfg.tmv.formats)}")
    return _Compiler(desc, cfg, fmt).compile()


def _shape_compiler(cfg: MfcConfig, hidden: int, intermediate: int, vocab: int,
                    layers: int, fmt: str) -> tuple["_Compiler", list[int]]:
    """The compiler run dry on an HGRN-bit model of this shape (no weights made)."""
    def lin(name, out, inp):
        codes = np.broadcast_to(np.uint8(1), (out, inp))   # shape only, no memory
        return types.SimpleNamespace(name=name, codes=codes, scale=1.0,
                                     norm_weight=np.ones(inp, dtype=np.float32))

    H, I = hidden, intermediate
    shapes = {"attn.i_proj": (H, H), "attn.f_proj": (H, H), "attn.g_proj": (H, H),
              "attn.o_proj": (H, H), "mlp.gate_proj": (2 * I, H), "mlp.down_proj": (H, I)}
    ones = np.ones(H, dtype=np.float32)
    layer_list = [types.SimpleNamespace(
        index=l, linears={k: lin(f"model.layers.{l}.{k}", *v) for k, v in shapes.items()},
        tensors={"attn_norm.weight": ones, "attn.g_norm.weight": ones,
                 "mlp_norm.weight": ones}) for l in range(layers)]
    head = lin("lm_head", vocab, H)
    desc = types.SimpleNamespace(
        hidden_size=H, intermediate_size=I, vocab_size=vocab, layers=layer_list,
        lm_head=head, rms_norm_eps=1e-6, tensors={"model.norm.weight": ones,
                               "model.lower_bounds": np.zeros((layers, H), np.float32)},
        bitlinears=lambda: [*(x for la in layer_list for x in la.linears.values()), head])
    comp = _Compiler(desc, cfg, fmt, dry=True)
    return comp, comp.compile()


def shape_program(cfg: MfcConfig, hidden: int, intermediate: int, vocab: int,
                  layers: int, fmt: str = "t2") -> list[int]:
    """The program the compiler emits for an HGRN-bit model of this shape, with its real
    addresses (vector memory, weight lines, the lm_head's chunks) and no data, for the
    cycle model of models of any size (:func:`estimate_cycles`: exact). CompileError, as
    :func:`compile_model`, when the shape does not fit ``cfg`` (:func:`shape_footprint`
    says what it needs)."""
    return _shape_compiler(cfg, hidden, intermediate, vocab, layers, fmt)[1]


def shape_footprint(cfg: MfcConfig, hidden: int, intermediate: int, vocab: int,
                    layers: int, fmt: str = "t2") -> dict[str, int]:
    """What the shape's program needs of a core like ``cfg`` (its TMV lanes and limits):
    ``vmem_elements``, ``weight_lines``, ``instructions`` and ``head_chunks``; ``cfg``'s
    own memory depths are not checked (run with the largest the fields allow)."""
    from tritium.engines.mfc.config import ENTRY_BITS, VMEM_LIMIT

    roomy = dataclasses.replace(
        cfg, vmem_depth=VMEM_LIMIT, imem_depth=1 << ENTRY_BITS,
        tmv=dataclasses.replace(cfg.tmv, weight_depth=field_limit("b")))
    comp, words = _shape_compiler(roomy, hidden, intermediate, vocab, layers, fmt)
    return {"vmem_elements": comp.e.top, "instructions": len(words),
            "weight_lines": sum(p.lines for p in comp.plan.values()),
            "head_chunks": len(comp.head_parts)}


def greedy(step, prompt_ids, n: int, on_step=None) -> tuple[list[int], list]:
    """Greedy decoding with ``step(token) -> result`` (``int(result)`` or ``result.token``
    is the next token): every prompt token, then ``n`` tokens, the last of which is not
    stepped. Returns (prompt + generated ids, every step's result); ``on_step(result)``
    after each step."""
    out, results = [int(t) for t in prompt_ids], []

    def advance(t):
        results.append(step(t))
        if on_step:
            on_step(results[-1])
        r = results[-1]
        return int(getattr(r, "token", r))

    nxt = None
    for t in list(out):
        nxt = advance(t)
    for k in range(n):
        out.append(nxt)
        if k + 1 < n:
            nxt = advance(nxt)
    return out, results


class GoldenCore:
    """The compiled program on the golden machine: the fixed-point model the device
    must match token for token (:meth:`step`, :meth:`generate`)."""

    def __init__(self, compiled: Compiled):
        self.c = compiled
        self.m = Machine(compiled.cfg)
        self.m.load_program(compiled.program)
        self.m.load_weights(compiled.weights)
        for addr, values in compiled.vmem.items():
            self.m.vmem[addr:addr + len(values)] = values
        self.last: dict[str, int] = {}

    def step(self, token: int) -> tuple[int, np.ndarray | None]:
        """One token: (argmax token, logits as floats; None when the head runs in chunks,
        :attr:`Layout.head_chunks`, and no memory holds them all)."""
        c = self.c
        self.m.vmem[c.layout.x:c.layout.x + c.hidden] = c.embed(token)
        self.last = self.m.run()
        if self.last["error"]:
            raise CompileError(f"the program stopped with the error flag at pc "
                               f"{self.last['pc']}; this is a compiler bug")
        token = int(self.m.sregs[c.layout.argmax])
        if c.layout.head_chunks > 1:
            return token, None
        logits = self.m.vmem[c.layout.logits:c.layout.logits + c.vocab]
        return token, logits / float(1 << c.cfg.frac_bits)

    def logits(self, ids) -> np.ndarray:
        """Teacher-forced logits [T, V] for the token ids, from the zero state; CompileError
        when the head runs in chunks (compile with tmv.max_out >= vocab for logits)."""
        if self.c.layout.head_chunks > 1:
            raise CompileError(f"the lm_head runs in {self.c.layout.head_chunks} chunks and no "
                               "memory holds all logits; compile with mfc.tmv.max_out >= "
                               f"{self.c.vocab} to read them")
        self.reset_state()
        return np.stack([self.step(int(t))[1] for t in ids])

    def generate(self, prompt_ids, n: int) -> list[int]:
        """Greedy: the prompt then ``n`` argmax tokens, from the zero state."""
        self.reset_state()
        return greedy(lambda t: self.step(t)[0], prompt_ids, n)[0]

    def reset_state(self) -> None:
        for addr, n in self.c.state:
            self.m.vmem[addr:addr + n] = 0


class AgreementError(TritiumError):
    """The core's logits disagree with the float reference beyond the set minimum."""

    exit_code = 1


@dataclasses.dataclass(frozen=True)
class Agreement:
    """The fixed-point core against the float reference, teacher-forced: top-1 agreement,
    max |Δlogit| (and the reference's max |logit|, so ``rel_max_dlogit`` is their
    ratio), and the projections (VRESCALE results) the core computed, how many all zero."""

    tokens: int
    top1_agreement: float
    max_abs_dlogit: float
    max_abs_logit: float
    sigmoid_max_error: float
    projections: int
    zero_projections: int

    @property
    def rel_max_dlogit(self) -> float:
        return self.max_abs_dlogit / max(self.max_abs_logit, 1e-30)

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "rel_max_dlogit": self.rel_max_dlogit}


def agreement(compiled: Compiled, reference, ids) -> Agreement:
    """Compare :class:`GoldenCore` with ``reference`` (an HGRNBitForCausalLM) on ``ids``."""
    from tritium.engines.mfc.golden import sigmoid_max_error

    core = GoldenCore(compiled)
    fixed = core.logits(ids)
    ref = reference.logits(list(ids)).float().numpy()
    agree = float((fixed.argmax(-1) == ref.argmax(-1)).mean())
    return Agreement(len(ids), agree, float(np.abs(fixed - ref).max()),
                     float(np.abs(ref).max()), sigmoid_max_error(compiled.cfg),
                     core.m.rescales, core.m.zero_rescales)
