"""The TMV engine's configs: the one home of its widths, depths, formats and timing.

:class:`TernaryDotConfig` is the N-lane dot product, :class:`TernaryConfig` the
matrix-vector engine (the bare ``tmv`` engine's config, and the token core's ``tmv``);
:data:`TMV_FORMATS` the packed weight formats by command code. Spec layer: standard
library only; a dict with ``"kind": "ternary-matvec"`` parses once this module is
imported (:func:`tritium.registry.engines` imports it).
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

from tritium.config import Config, field as _field, pow2_ceil, signed_bits_for
from tritium.errors import ConfigError


class _TernaryTerms:
    """Widths shared by the ternary datapaths: signed ``act_bits`` activations, and an
    exact accumulator for ``_max_terms`` terms w·x with w in {-1, 0, +1}.

    Each term has |w·x| <= 2**(act_bits-1) (x = act_min, w = -1), so a sum of n terms has
    |sum| <= n·2**(act_bits-1); the bound is reached, so ``acc_bits`` is the narrowest safe
    width and overflow is impossible.
    """

    @property
    def act_min(self) -> int:
        return -(1 << (self.act_bits - 1))

    @property
    def act_max(self) -> int:
        return (1 << (self.act_bits - 1)) - 1

    @property
    def acc_bits(self) -> int:
        bound = self._max_terms * (1 << (self.act_bits - 1))
        return signed_bits_for(-bound, bound)


@dataclasses.dataclass(frozen=True)
class TernaryDotConfig(_TernaryTerms, Config):
    """N-lane ternary dot product: sum_k w_k * x_k with w in {-1, 0, +1}, x signed int.

    A dot product of length L arrives as ceil(L / lanes) beats; lanes past L in the last
    beat carry weight code 0 (value 0). ``max_length`` bounds L and thereby the accumulator.
    """

    kind: ClassVar[str] = "ternary-dot"

    lanes: int = _field(16, 1, 4096, "activations consumed per beat")
    max_length: int = _field(4096, 1, 1 << 24, "longest dot product, in elements")
    act_bits: int = _field(8, 2, 16, "signed activation width")
    levels_per_stage: int = _field(2, 1, 16, "adder-tree levels between pipeline registers")

    @property
    def _max_terms(self) -> int:
        return self.max_length

    @property
    def max_beats(self) -> int:
        return math.ceil(self.max_length / self.lanes)

    @property
    def tree_levels(self) -> int:
        return max(0, math.ceil(math.log2(self.lanes)))

    @property
    def latency(self) -> int:
        """Cycles from accepting the last beat of a vector to its result being valid.

        One register after the lane multiplexers, one after every ``levels_per_stage``
        adder levels (the last level always registered), one for the accumulator.
        """
        return 1 + math.ceil(self.tree_levels / self.levels_per_stage) + 1

    def cycles(self, length: int) -> int:
        """Cycles from the first input beat to the result, with no stalls on either side."""
        return math.ceil(length / self.lanes) - 1 + self.latency


#: packed weight formats of the TMV engine, by their command code (see TernaryConfig)
TMV_FORMATS: tuple[str, ...] = ("t2", "t3")


@dataclasses.dataclass(frozen=True)
class TernaryConfig(_TernaryTerms, Config):
    """Ternary matrix-vector engine (TMV): y = W·x, W in {-1, 0, +1}, x signed ``act_bits``.

    The engine consumes one weight *word* per cycle: ``pe`` rows × ``simd`` columns of W
    (``pe*simd`` MAC slots), in the word order of :func:`tritium.engines.tmv.golden.tile_tmv`.
    A word is stored packed as ``t2`` (4 codes/byte) or ``t3`` (5 codes/byte) in one
    memory line of ``line_bits``; a build supports the formats whose flag is 1.

    Weight memory: ``mem_latency`` cycles from an accepted read request to its data, and
    ``mem_bytes_per_cycle`` bytes per cycle of bandwidth (0: a whole line per cycle).
    ``mem_latency=1, mem_bytes_per_cycle=0`` is on-chip block RAM; anything else builds the
    external-memory model of :mod:`tritium.hdl.mem`.

    Accumulator bound: every term w·x has |w·x| <= 2**(act_bits-1) (the most negative
    activation, -2**(act_bits-1), times w = -1), and a row has at most ``max_in`` terms, so
    |y| <= max_in·2**(act_bits-1). ``acc_bits`` is the smallest two's-complement width
    holding ±that bound; the bound is reached (x = act_min, w = -1 everywhere), so no
    narrower accumulator is safe and no overflow is possible. Results leave as int32, so
    the bound must fit 32 bits (checked).

    Cycle formula (no stalls, one command; proved against the hardware counters in
    tests/test_ternary_matvec*.py): ``cycles(rows, cols, fmt) = (words - 1)·k + latency``
    with ``words = ceil(rows/pe)·ceil(cols/simd)``, ``k = transfer_cycles(fmt)`` and
    ``latency`` the fixed pipeline depth; back-to-back commands overlap, so a stream of
    commands takes ``sum(words_i·k_i) - k_last + latency`` busy cycles.
    """

    kind: ClassVar[str] = "ternary-matvec"

    simd: int = _field(16, 1, 1024, "activations (columns) per cycle")
    pe: int = _field(4, 1, 256, "output rows per cycle")
    act_bits: int = _field(8, 2, 16, "signed activation width")
    max_in: int = _field(4096, 1, 1 << 20, "most columns (input length) of a command")
    max_out: int = _field(4096, 1, 1 << 20, "most rows (output length) of a command")
    weight_depth: int = _field(4096, 1, 1 << 32, "weight memory depth, in words (lines)")
    has_t2: int = _field(1, 0, 1, "build the t2 (2-bit) weight format")
    has_t3: int = _field(1, 0, 1, "build the t3 (base-3, 1.6-bit) weight decoder")
    mem_latency: int = _field(1, 1, 64, "weight memory read latency, cycles (1 = block RAM)")
    mem_bytes_per_cycle: int = _field(0, 0, 1 << 16,
                                      "weight memory bandwidth, bytes/cycle (0 = a line/cycle)")
    levels_per_stage: int = _field(2, 1, 16, "adder-tree levels between pipeline registers")
    weights_dram: int = _field(0, 0, 1, "read the weight lines from the SoC's DRAM (1) "
                                        "instead of on-chip memory (0)")

    def validate(self) -> None:
        if self.weights_dram and self.mem_bytes_per_cycle:
            raise ConfigError(f"{self.kind}: weights_dram=1 reads at the DRAM's rate; leave "
                              "mem_bytes_per_cycle=0 (mem_latency: the DRAM latency the "
                              "weight FIFO covers)")
        if not (self.has_t2 or self.has_t3):
            raise ConfigError(f"{self.kind}: enable at least one weight format "
                              "(has_t2=1 or has_t3=1)")
        if self.acc_bits > 32:
            raise ConfigError(
                f"{self.kind}: max_in={self.max_in} with act_bits={self.act_bits} needs a "
                f"{self.acc_bits}-bit accumulator, more than the int32 results; lower max_in")

    def soc_check(self) -> None:
        """On a SoC the link moves activations as bytes into memories of ``simd`` byte
        lanes and results out of ones of ``pe`` lanes: 8-bit activations, ``simd`` and
        ``pe`` powers of two; ConfigError otherwise."""
        if self.act_bits != 8:
            raise ConfigError("soc: the link moves activations as bytes; use tmv.act_bits=8")
        for name in ("simd", "pe"):
            v = getattr(self, name)
            if v & (v - 1):
                raise ConfigError(f"soc: tmv.{name}={v} must be a power of two (byte lanes "
                                  "of the device memories)")

    @property
    def tmv(self) -> "TernaryConfig":
        """The TMV this engine config holds (:attr:`tritium.config.SocConfig.tmv`): itself."""
        return self

    # --- widths ------------------------------------------------------------------------
    @property
    def _max_terms(self) -> int:
        return self.max_in  # acc_bits: |y| <= max_in·2**(act_bits-1), see the docstring

    @property
    def formats(self) -> tuple[str, ...]:
        return tuple(f for f, on in zip(TMV_FORMATS, (self.has_t2, self.has_t3)) if on)

    @property
    def word_codes(self) -> int:
        return self.pe * self.simd

    def word_bytes(self, fmt: str) -> int:
        """Bytes of one packed weight word (``pe*simd`` codes) in format ``fmt``."""
        per = {"t2": 4, "t3": 5}[fmt]
        return -(-self.word_codes // per)

    @property
    def line_bits(self) -> int:
        """Weight memory line: the widest packed word among the built formats."""
        return 8 * max(self.word_bytes(f) for f in self.formats)

    @property
    def act_depth(self) -> int:
        """Activation buffer depth: ``simd``-wide blocks of the longest input."""
        return -(-self.max_in // self.simd)

    @property
    def line_stride(self) -> int:
        """Bytes of device address space per weight line: the line's bytes rounded up to a
        power of two (the bytes past the line are ignored)."""
        return pow2_ceil(self.line_bits // 8)

    def soc_regions(self) -> tuple[tuple[str, int, str], ...]:
        """(name, bytes, access) of the bare engine's regions on the device bus: the weight
        lines (write only), the int8 activations, the int32 results (read only)."""
        own = (("activations", self.act_depth * self.simd, "rw"),
               ("results", -(-self.max_out // self.pe) * self.pe * 4, "r"))
        if self.weights_dram:  # the weight lines live in the SoC's dram region
            return own
        return (("weights", self.weight_depth * self.line_stride, "w"),) + own

    # --- memory and timing ---------------------------------------------------------------
    @property
    def external_memory(self) -> bool:
        return not self.weights_dram and (self.mem_latency != 1 or self.mem_bytes_per_cycle != 0)

    def transfer_cycles(self, fmt: str) -> int:
        """Cycles the memory port is busy per word: ceil(word_bytes / bandwidth), at least 1."""
        if self.mem_bytes_per_cycle == 0:
            return 1
        return max(1, -(-self.word_bytes(fmt) // self.mem_bytes_per_cycle))

    @property
    def decode_stages(self) -> int:
        """Registers between the memory and the weight FIFO: one on the memory's data (block
        RAM clock-to-out is slow), two more inside the t3 decoder in a build with t3. Every
        format passes all of them, so the engine has one latency for both."""
        return 1 + 2 * self.has_t3

    @property
    def fifo_depth(self) -> int:
        """Weight words in flight or buffered: covers the request-to-use loop (memory
        latency, decoder, FIFO write, pop), so the memory never waits for credit."""
        return self.mem_latency + self.decode_stages + 2

    @property
    def tree_stages(self) -> int:
        """Registers in each PE's adder tree (one per ``levels_per_stage`` levels, and one
        after the last level)."""
        levels = max(0, math.ceil(math.log2(self.simd)))
        return max(1, math.ceil(levels / self.levels_per_stage))

    @property
    def fill_cycles(self) -> int:
        """Busy cycles before the first weight word can be taken: the issue cycle after the
        command register, the memory latency, the registers up to the weight FIFO."""
        return 1 + self.mem_latency + self.decode_stages

    @property
    def latency(self) -> int:
        """Busy cycles of a one-word command: the fill, the cycle the word is taken, the
        activation-select and lane-multiplexer registers, the adder tree, the
        accumulator/result register (its handshake cycle included)."""
        return self.fill_cycles + 1 + 2 + self.tree_stages + 1

    def stall_memory_cycles(self, rows: int, cols: int, fmt: str = "t2") -> int:
        """Memory-stall cycles of one unstalled command: the fill, then ``k - 1`` per
        further word while a bandwidth-limited memory is still moving it."""
        return self.fill_cycles + (self.words(rows, cols) - 1) * (self.transfer_cycles(fmt) - 1)

    def words(self, rows: int, cols: int) -> int:
        return -(-rows // self.pe) * -(-cols // self.simd)

    def cycles(self, rows: int, cols: int, fmt: str = "t2") -> int:
        """Busy cycles of one ``rows × cols`` command with no stalls (closed form)."""
        return (self.words(rows, cols) - 1) * self.transfer_cycles(fmt) + self.latency


#: the default engine of a SoC: the demo's bare TMV (t2 only: the t3 decoder costs the
#: served simulation a third of its speed, 1.8M -> 1.2M cycles/s measured; boards that
#: want t3 set has_t3=1)
def _default_soc_tmv() -> "TernaryConfig":
    return TernaryConfig(simd=16, pe=4, max_in=1024, max_out=1024, weight_depth=4096,
                         has_t3=0)
