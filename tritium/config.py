"""Engine and SoC configurations: the one source of truth for widths, depths and formulas.

Each config is a frozen dataclass. The same object parametrises the Amaranth component,
its golden model, its cocotb bench, the cycle model and the host-side packer, so a width,
a depth or a latency is derived here once and read everywhere else.

Configs round-trip through JSON (``cfg.to_json()`` / ``Config.from_json(text)``); the
``kind`` field names the class, so ``load_config(path)`` returns the right type. Invalid
values raise :class:`~tritium.errors.ConfigError` with the offending field and its
allowed range.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, ClassVar

from .errors import ConfigError

_REGISTRY: dict[str, type["Config"]] = {}


def _register(cls):
    _REGISTRY[cls.kind] = cls
    return cls


def signed_bits_for(lo: int, hi: int) -> int:
    """Smallest two's-complement width that holds every integer in [lo, hi]."""
    if lo > hi:
        raise ValueError(f"empty range [{lo}, {hi}]")
    width = 1
    while not (-(1 << (width - 1)) <= lo and hi <= (1 << (width - 1)) - 1):
        width += 1
    return width


@dataclasses.dataclass(frozen=True)
class Config:
    """Base class: JSON round trip and field validation.

    A subclass that sets its own ``kind`` is registered under it (so ``from_dict`` and
    ``load_config`` parse its dicts): an engine package outside tritium needs no call
    here. Its fields take ranges by :func:`field`."""

    kind: ClassVar[str] = "config"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            _register(cls)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            lo, hi = f.metadata.get("range", (None, None))
            if f.type in ("int", int) and (not isinstance(value, int)
                                           or isinstance(value, bool)):
                raise ConfigError(f"{self.kind}.{f.name} must be an integer, got {value!r}")
            if lo is not None and value < lo or hi is not None and value > hi:
                raise ConfigError(
                    f"{self.kind}.{f.name}={value} is out of range [{lo}, {hi}]; "
                    f"choose a value inside it")
        self.validate()

    def validate(self) -> None:
        """Cross-field checks; subclasses raise ConfigError."""

    def _nested(self, name: str, cls: type["Config"], optional: bool = False) -> None:
        """Turn field ``name`` from its JSON dict into a ``cls`` config (in place) and
        check its type; ``optional`` allows None."""
        value = getattr(self, name)
        if isinstance(value, dict):
            value = cls.from_dict(value)
            object.__setattr__(self, name, value)
        if not (isinstance(value, cls) or optional and value is None):
            raise ConfigError(f"{self.kind}.{name} must be a {cls.kind} config"
                              + (" or null" if optional else ""))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **dataclasses.asdict(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Config":
        d = dict(d)
        kind = d.pop("kind", cls.kind)
        target = _REGISTRY.get(kind) if isinstance(kind, str) else None
        if target is None:
            raise ConfigError(f"unknown config kind {kind!r}; known kinds: {sorted(_REGISTRY)}")
        if cls is not Config and target is not cls:
            raise ConfigError(f"expected a {cls.kind!r} config, got {kind!r}")
        names = {f.name for f in dataclasses.fields(target)}
        extra = sorted(set(d) - names)
        if extra:
            raise ConfigError(
                f"{kind} config has unknown field(s) {extra}; valid fields: {sorted(names)}")
        try:
            return target(**d)
        except TypeError as e:
            raise ConfigError(f"bad {kind} config: {e}") from None

    @classmethod
    def from_json(cls, text: str) -> "Config":
        try:
            d = json.loads(text)
        except (ValueError, RecursionError) as e:  # JSONDecodeError; too deep; huge ints
            raise ConfigError(f"config is not valid JSON ({type(e).__name__}: "
                              f"{str(e)[:120]}); fix the file") from None
        if not isinstance(d, dict):
            raise ConfigError("config JSON must be an object with a 'kind' field")
        return cls.from_dict(d)


def load_config(path: str | Path) -> Config:
    """Read a config JSON file; raises ConfigError if missing or invalid."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist; pass the path of a JSON config")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {p} ({e}); pass a UTF-8 JSON file") \
            from None
    return Config.from_json(text)


def _field(default, lo=None, hi=None, doc=""):
    return dataclasses.field(default=default, metadata={"range": (lo, hi), "doc": doc})


#: a config field with its allowed range [lo, hi] and help text (the CLI's config options)
field = _field


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


@_register
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


@_register
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
    weight_depth: int = _field(4096, 1, 1 << 24, "weight memory depth, in words (lines)")
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


#: semirings of the SpGEMM engine, by their command code (bit k of SpgemmConfig.semirings)
SPGEMM_SEMIRINGS: tuple[str, ...] = ("plus-times", "fixed", "min-plus", "max-plus", "or-and")


@_register
@dataclasses.dataclass(frozen=True)
class SpgemmConfig(Config):
    """SpGEMM engine (SPG): C = A·B, row-wise (Gustavson), one hash accumulator per PE.

    ``pes`` row-PEs each own a table of ``2**hash_bits`` slots holding at most
    ``capacity`` entries (load <= 3/4, so a missing key's probe always ends at a free
    slot). A, B and C have at most ``max_dim`` rows and columns; A and B at most
    ``max_nnz`` stored entries each (the depth of their on-chip entry memories).
    Values are two's-complement ``value_bits`` wide; ``frac_bits`` is the binary point
    of the ``fixed`` semiring. ``semirings`` is a bitmask over :data:`SPGEMM_SEMIRINGS`
    (bit 0 plus-times … bit 4 or-and); a run asking for one not built raises the
    engine's error flag and produces nothing.

    Operand memories (A and B: row extents and entries): each PE has its own read port
    on each of the four, with ``mem_latency`` cycles from an accepted request to its data
    and ``mem_bytes_per_cycle`` bytes per cycle of bandwidth per port (0: a word per
    cycle). ``mem_latency=1, mem_bytes_per_cycle=0`` is on-chip block RAM; anything else
    builds the external-memory model of :mod:`tritium.hdl.mem`. C is written to on-chip
    memory as CSR (row extents and ``{col, value}`` entries); each PE writes the rows it
    computed into its own bank of ``max_c_nnz`` entries.

    Cycle model (see docs/spgemm.md): each PE has two tables, so a row's drain overlaps
    the next row's merging and the fetcher runs ahead into the next row;
    :meth:`row_cycles` gives a row's PE cycles.
    """

    kind: ClassVar[str] = "spgemm"

    pes: int = _field(2, 1, 16, "row-PEs, each with its own hash table")
    hash_bits: int = _field(6, 2, 14, "log2 of the hash-table slots per PE")
    max_dim: int = _field(1024, 1, 1 << 20, "most rows/columns of A, B and C")
    max_nnz: int = _field(8192, 1, 1 << 22, "most stored entries of A and of B")
    value_bits: int = _field(32, 8, 32, "value width (two's complement)")
    frac_bits: int = _field(16, 0, 30, "fraction bits of the fixed-point semiring")
    semirings: int = _field(31, 1, 31, "bitmask of built semirings: 1 plus-times, "
                            "2 fixed, 4 min-plus, 8 max-plus, 16 or-and")
    mem_latency: int = _field(1, 1, 64, "operand memory read latency, cycles (1 = block RAM)")
    mem_bytes_per_cycle: int = _field(0, 0, 1 << 16, "operand memory bandwidth per PE port, "
                                      "bytes/cycle (0 = a word per cycle)")
    max_c_nnz: int = _field(16384, 1, 1 << 22, "C entries a PE's bank holds (C has at most this many)")

    def validate(self) -> None:
        if self.frac_bits >= self.value_bits:
            raise ConfigError(f"{self.kind}: frac_bits={self.frac_bits} must be below "
                              f"value_bits={self.value_bits}")

    # --- widths ------------------------------------------------------------------------
    @property
    def slots(self) -> int:
        return 1 << self.hash_bits

    @property
    def capacity(self) -> int:
        """Entries a table takes before a new column is refused (3/4 of the slots)."""
        return (3 * self.slots) // 4

    @property
    def index_bits(self) -> int:
        """Row/column index width."""
        return max(1, (self.max_dim - 1).bit_length())

    @property
    def ptr_bits(self) -> int:
        """Entry-memory address width, holding 0..max_nnz (row extents end there)."""
        return max(1, self.max_nnz.bit_length())

    @property
    def c_bank_bits(self) -> int:
        """Address bits of one PE's bank of C entries (``max_c_nnz`` deep)."""
        return max(1, (self.max_c_nnz - 1).bit_length())

    @property
    def c_ptr_bits(self) -> int:
        """C's entry address width: PE k's bank starts at ``k << c_bank_bits``."""
        return (((self.pes - 1) << self.c_bank_bits) + self.max_c_nnz).bit_length()

    @property
    def window_bits(self) -> int:
        """Column-window bounds: one more than an index, so 'no upper bound' fits, and
        wide enough for ``lo + capacity``."""
        return max(self.index_bits, self.hash_bits) + 2

    @property
    def no_limit(self) -> int:
        """Window upper bound meaning 'every column' (above any index)."""
        return 1 << (self.window_bits - 1)

    @property
    def value_min(self) -> int:
        return -(1 << (self.value_bits - 1))

    @property
    def value_max(self) -> int:
        return (1 << (self.value_bits - 1)) - 1

    @property
    def path_min(self) -> int:
        """Smallest finite min-plus/max-plus operand: any two sum without overflow."""
        return -(1 << (self.value_bits - 2))

    @property
    def path_max(self) -> int:
        return (1 << (self.value_bits - 2)) - 1

    @property
    def semiring_names(self) -> tuple[str, ...]:
        return tuple(n for k, n in enumerate(SPGEMM_SEMIRINGS) if self.semirings >> k & 1)

    @property
    def counter_bits(self) -> int:
        return 32

    # --- memory and timing ---------------------------------------------------------------
    @property
    def external_memory(self) -> bool:
        return self.mem_latency != 1 or self.mem_bytes_per_cycle != 0

    @property
    def word_fields(self) -> dict[str, tuple[tuple[str, int, bool], ...]]:
        """The engine's memory words, field by field from bit 0: (name, bits, signed).
        ``ext``: an A/B row extent, ``ent``: an entry of A, B or C, ``c_ext``: a row
        extent of C (C's wider pointers). The hardware's layouts and the host's packing
        both read this."""
        return {"ext": (("start", self.ptr_bits, False), ("end", self.ptr_bits, False)),
                "ent": (("col", self.index_bits, False), ("value", self.value_bits, True)),
                "c_ext": (("start", self.c_ptr_bits, False), ("end", self.c_ptr_bits, False))}

    def word_bits(self, word: str) -> int:
        return sum(bits for _, bits, _ in self.word_fields[word])

    @property
    def extent_bytes(self) -> int:
        """Bytes one read of a row extent ``{start, end}`` moves."""
        return -(-self.word_bits("ext") // 8)

    @property
    def entry_bytes(self) -> int:
        """Bytes one read of an entry ``{col, value}`` moves."""
        return -(-self.word_bits("ent") // 8)

    @property
    def c_entries(self) -> int:
        """Addresses of C's entry memory: ``pes`` banks of ``2**c_bank_bits``."""
        return self.pes << self.c_bank_bits

    #: the engine's regions on the device bus: name -> (word, depth property, access);
    #: A and B are written (load stream), C read back (rd/rdata)
    SOC_REGIONS: ClassVar[dict[str, tuple[str, str, str]]] = {
        "a_ext": ("ext", "max_dim", "w"), "a_ent": ("ent", "max_nnz", "w"),
        "b_ext": ("ext", "max_dim", "w"), "b_ent": ("ent", "max_nnz", "w"),
        "c_ext": ("c_ext", "max_dim", "r"), "c_ent": ("ent", "c_entries", "r")}

    def word_stride(self, word: str) -> int:
        """Bytes of address space per word on the device bus (a power of two; the bytes
        past the word's own are ignored on write and read as 0)."""
        return pow2_ceil(-(-self.word_bits(word) // 8))

    def soc_regions(self) -> tuple[tuple[str, int, str], ...]:
        """(name, bytes, access) of the engine's regions on the device bus, in
        :attr:`SOC_REGIONS` order: one word per ``word_stride`` bytes."""
        return tuple((name, getattr(self, depth) * self.word_stride(word), access)
                     for name, (word, depth, access) in self.SOC_REGIONS.items())

    def transfer_cycles(self, nbytes: int) -> int:
        """Cycles a memory port is busy per read of ``nbytes``: ceil(nbytes / bandwidth)."""
        if self.mem_bytes_per_cycle == 0:
            return 1
        return max(1, -(-nbytes // self.mem_bytes_per_cycle))

    @property
    def fetch_depth(self) -> int:
        """Entries of each FIFO behind a memory port (requests in flight + buffered): covers
        the latency, so a port that delivers a word per cycle is never short of credit."""
        return max(4, self.mem_latency + 3)

    @property
    def fetch_latency(self) -> int:
        """Cycles from a pass entering the fetcher to its first product at a table: four
        dependent reads (A extent, A entry, B extent, B entry), a FIFO after each, the
        streamer's job register and the product register."""
        return 4 * (self.mem_latency + 1) + 3

    #: PE cycles an extra pass waits beyond the previous pass's drain (drain start/end,
    #: table restart), and a row's cost on the C writer beyond its entries (end beat)
    pass_overhead: ClassVar[int] = 5
    row_overhead: ClassVar[int] = 1

    def row_cycles(self, probes: int, entries: int, passes: int, products: int = 0) -> int:
        """Approximate PE cycles of one row in steady state: the merging (one cycle per
        probe, or per B entry read on a bandwidth-limited port), plus per extra pass the
        wait for the previous pass's drain (``entries / passes`` on average) or the fetch
        latency, whichever is longer. The first pass's fetch and the last drain overlap
        the neighbouring rows (two tables per PE)."""
        merge = max(probes, products * self.transfer_cycles(self.entry_bytes))
        wait = max(self.fetch_latency, entries // max(passes, 1) + self.pass_overhead)
        return merge + self.row_overhead + (passes - 1) * wait


def pow2_ceil(n: int) -> int:
    """Smallest power of two >= n (1 for n <= 1)."""
    return 1 << max(0, (n - 1).bit_length())


#: scalar-unit operations of the token core, by name -> busy cycles (see MfcConfig)
MFC_SCALAR_OPS: tuple[str, ...] = ("smul", "sdiv", "ssqrt")


@_register
@dataclasses.dataclass(frozen=True)
class MfcConfig(Config):
    """MatMul-free token core (MFC): a sequencer, a scalar unit, a one-element-per-cycle
    vector unit and the TMV engine (``tmv``), running programs from an instruction memory.

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
    SLI and SADD retire there); a vector
    op of length n then ``n + vpu_latency``; a scalar op ``scalar_cycles[op]``; ``TMV``
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
    vmem_depth: int = _field(4096, 16, 1 << 16, "vector memory, int32 elements")
    imem_depth: int = _field(1024, 16, 1 << 16, "instruction memory, 64-bit words")
    sregs: int = _field(16, 4, 64, "scalar registers (64-bit)")

    def __post_init__(self):
        self._nested("tmv", TernaryConfig)
        super().__post_init__()

    def validate(self) -> None:
        t = self.tmv
        if t.act_bits != 8:
            raise ConfigError("mfc: the core quantises activations to int8; use tmv.act_bits=8")
        if max(t.max_in, t.max_out, t.weight_depth) > 1 << 16:
            raise ConfigError("mfc: TMV rows, cols and base are 16-bit instruction fields; keep "
                              "tmv.max_in, max_out and weight_depth <= 65536")
        if self.frac_bits + self.sig_range_log2 + 1 < self.sig_segments_log2:
            raise ConfigError("mfc: more sigmoid segments than input codes; lower "
                              "sig_segments_log2")
        if self.rescale_frac < self.frac_bits:
            raise ConfigError("mfc: rescale_frac must be >= frac_bits")
        if self.norm_frac < self.frac_bits:
            raise ConfigError("mfc: norm_frac must be >= frac_bits")
        if self.quant_shift > self.norm_frac + 23:
            raise ConfigError("mfc: quant_shift > norm_frac + 23: the quantisation factor "
                              "of a normalised vector would not fit 32 bits; lower "
                              "quant_shift")

    def to_dict(self):
        d = super().to_dict()
        d["tmv"] = self.tmv.to_dict()
        return d

    def soc_regions(self) -> tuple[tuple[str, int, str], ...]:
        """(name, bytes, access) of the core's regions on the device bus: its TMV's weight
        lines, the program (8 bytes per instruction), the vector memory (4 bytes per
        element), the scalar registers (8 bytes each, read only)."""
        return (self.tmv.soc_regions()[0], ("program", self.imem_depth * 8, "w"),
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
        """int32 elements per result bank (two banks)."""
        return -(-self.tmv.max_out // self.tmv.pe) * self.tmv.pe

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
        return n + self.vpu_latency

    def tmv_cycles(self, rows: int, cols: int, fmt: str = "t2") -> int:
        """Engine-busy cycles of one TMV instruction: the engine's own formula plus the
        adapter's command register (the last result is written in the engine's last
        busy cycle)."""
        return self.tmv.cycles(rows, cols, fmt) + 1


class MemoryMap:
    """A byte address map under construction: regions placed in the order added, each
    aligned to its size rounded up to a power of two (so decoding a region is a compare of
    the address's high bits), at the next free aligned base or at a given ``base``.

    :meth:`add` raises ConfigError for a name used twice, an empty region, a base that is
    not aligned, a region overlapping one already placed, or one ending past
    ``addr_bits`` of address space. :meth:`regions` is ``name -> {base, size, access}``.
    """

    def __init__(self, addr_bits: int = 32):
        self.addr_bits = addr_bits
        self._regions: dict[str, dict[str, int | str]] = {}
        self._next = 0

    def add(self, name: str, size: int, access: str, base: int | None = None) -> int:
        if name in self._regions:
            raise ConfigError(f"memory map: region {name!r} is defined twice; give each "
                              "region of the device its own name")
        if size < 1 or set(access) - set("rw") or not access:
            raise ConfigError(f"memory map: region {name!r} needs a size >= 1 and access "
                              f"'r', 'w' or 'rw' (got size {size}, access {access!r})")
        span = pow2_ceil(size)
        if base is None:
            base = -(-self._next // span) * span
        elif base % span:
            raise ConfigError(f"memory map: region {name!r} at {base:#x} is not aligned to "
                              f"its span {span:#x}; put it at a multiple of {span:#x}")
        for other, r in self._regions.items():
            if base < r["base"] + pow2_ceil(r["size"]) and r["base"] < base + span:
                raise ConfigError(f"memory map: region {name!r} [{base:#x}, {base + span:#x}) "
                                  f"overlaps {other!r} at {r['base']:#x}; move one of them")
        if base + span > 1 << self.addr_bits:
            raise ConfigError(f"memory map: region {name!r} ends at {base + span:#x}, past the "
                              f"{self.addr_bits}-bit bus; make the engine's memories smaller")
        self._regions[name] = {"base": base, "size": size, "access": access}
        self._next = max(self._next, base + span)
        return base

    def regions(self) -> dict[str, dict[str, int | str]]:
        return {k: dict(v) for k, v in self._regions.items()}


#: the SpGEMM engine of the served device (`tritium serve --engine spgemm`) and of the board
#: builds: 1 PE, 64-slot tables, A and B up to 1024 x 1024 with 4096 entries each, C up
#: to 8192 entries (the pyamg example matrices' A·A fit). One PE, because Verilator
#: evaluates every PE on every cycle, link transfers included: a second PE halves the
#: engine's time on a product but costs the served simulation ~40 % of its cycles/s
#: (docs/spgemm.md, "On the device")
SOC_SPGEMM = SpgemmConfig(pes=1, hash_bits=6, max_dim=1024, max_nnz=4096, max_c_nnz=8192)


#: the default engine of a SoC: the demo's bare TMV (t2 only: the t3 decoder costs the
#: served simulation a third of its speed, 1.8M -> 1.2M cycles/s measured; boards that
#: want t3 set has_t3=1)
def _default_soc_tmv() -> "TernaryConfig":
    return TernaryConfig(simd=16, pe=4, max_in=1024, max_out=1024, weight_depth=4096,
                         has_t3=0)


@_register
@dataclasses.dataclass(frozen=True)
class SocConfig(Config):
    """The device: link (framer, command processor) + engines + their memories.

    ``engines`` is the tuple of engine configs the device holds, at most one of each
    engine of :mod:`tritium.registry` and none beside one its description ``excludes``
    (a :class:`TernaryConfig` = the bare TMV, an :class:`MfcConfig` = the token core, a
    :class:`SpgemmConfig`, or an engine's from outside tritium; dicts in JSON), e.g.
    ``SocConfig(engines=(SpgemmConfig(),))``.
    The older form ``SocConfig(tmv=..., mfc=...)`` still works and means
    ``engines=(mfc,)`` if ``mfc`` is set, else ``engines=(tmv,)``. After construction
    ``tmv`` is the device's TMV (the bare engine's, or the core's ``mfc.tmv``; None
    without one) and ``mfc`` the core (or None).

    The byte address map (:meth:`address_map`) is derived from the engines' regions here,
    once (each engine config's ``soc_regions``, placed by :class:`MemoryMap` in engine
    order): the hardware decodes it, the device reports it in INFO, the host reads it
    from there.

    Constraints the link's memories rely on (checked): 8-bit activations, ``simd`` and
    ``pe`` powers of two (byte lanes of the activation and result memories).
    """

    kind: ClassVar[str] = "soc"

    tmv: "TernaryConfig | None" = dataclasses.field(default_factory=_default_soc_tmv)
    #: the token core (its own ``tmv`` is then the engine's config); None: no core
    mfc: "MfcConfig | None" = None
    engines: tuple = ()
    max_payload: int = _field(1024, 16, 65535, "largest frame payload, bytes")
    frame_timeout: int = _field(20_000, 64, 1 << 30,
                                "cycles without a byte before a partial frame is dropped")
    clock_hz: int = _field(25_000_000, 1, 1 << 31, "system clock, Hz")
    baud: int = _field(115_200, 300, 12_000_000, "UART baud rate (boards)")
    #: the device's DRAM (:class:`tritium.dram.DramConfig`), None: on-chip memories only.
    #: With it, the map gains a read/write ``dram`` region of the DRAM's size, after the
    #: engines' regions (docs/memory.md)
    dram: "DramConfig | None" = None

    def __post_init__(self):
        # the DRAM config class registers itself (kind "dram") when tritium.dram is
        # imported, which the package does: this module cannot import it back
        self._nested("dram", _REGISTRY["dram"], optional=True)
        self._nested("tmv", TernaryConfig, optional=True)
        self._nested("mfc", MfcConfig, optional=True)
        from tritium import registry

        known = registry.engines()  # loads every engine's config class: its dicts parse
        kinds_known = ", ".join(registry.kinds())
        engines = self.engines
        if not isinstance(engines, (tuple, list)):
            raise ConfigError("soc.engines must be a list of engine configs "
                              f"(kinds {kinds_known})")
        engines = tuple(Config.from_dict(e) if isinstance(e, dict) else e for e in engines)
        kinds = [getattr(e, "kind", type(e).__name__) for e in engines]
        if not engines:  # the older form
            if self.mfc is not None:
                # the core owns its engine: one TMV config, taken from mfc.tmv
                if self.tmv not in (self.mfc.tmv, _default_soc_tmv()):
                    raise ConfigError("soc.tmv differs from soc.mfc.tmv; with a token core "
                                      "set only mfc.tmv")
                engines = (self.mfc,)
            elif self.tmv is None:
                raise ConfigError("soc: no engine; give engines=(...) with at least one of "
                                  f"{kinds_known}")
            else:
                engines = (self.tmv,)
        else:
            bad = [k for k in kinds if k not in registry.kinds()]
            if bad or len(set(kinds)) != len(kinds):
                raise ConfigError(f"soc.engines {kinds}: give at most one of each of "
                                  f"{kinds_known}")
            names = {registry.by_kind(k).name for k in kinds}
            for name in names:
                clash = names.intersection(known[name].excludes)
                if clash:
                    raise ConfigError(f"soc.engines: not both {name} and "
                                      f"{', '.join(sorted(clash))} ({name} excludes them: "
                                      f"{known[name].title}); drop one of them")
            # tmv/mfc beside engines (a JSON round trip, or dataclasses.replace(cfg, tmv=...)):
            # a tmv or mfc that differs replaces the engine of its kind. The field's default
            # TMV is no choice: SocConfig(engines=(TernaryConfig(simd=8),)) keeps its engine
            default_tmv = _default_soc_tmv()
            for kind, given in (("mfc", self.mfc), ("ternary-matvec", self.tmv)):
                if given is not None and given != default_tmv \
                        and kind in kinds and engines[kinds.index(kind)] != given:
                    engines = tuple(given if k == kind else e for k, e in zip(kinds, engines))
            mfc = next((e for e in engines if e.kind == "mfc"), None)
            tmv = next((e for e in engines if e.kind == "ternary-matvec"),
                       mfc.tmv if mfc is not None else None)
            if self.mfc not in (None, mfc) or self.tmv not in (None, tmv, default_tmv):
                raise ConfigError("soc: tmv/mfc name an engine the engines list does not hold "
                                  "(or a TMV beside a token core); give the engines only")
            object.__setattr__(self, "mfc", mfc)
            object.__setattr__(self, "tmv", tmv)
        object.__setattr__(self, "engines", engines)
        super().__post_init__()

    @property
    def engine_kinds(self) -> tuple[str, ...]:
        return tuple(e.kind for e in self.engines)

    def engine_config(self, kind: str):
        """The engine config of ``kind`` (a config class's ``kind``), or None."""
        return next((e for e in self.engines if e.kind == kind), None)

    @property
    def spgemm(self) -> "SpgemmConfig | None":
        return self.engine_config("spgemm")

    @property
    def engine(self) -> str:
        """What the TMV-side host code runs: "mfc" (the token core), "tmv" (the bare
        engine) or "none" (a device without a TMV)."""
        return "mfc" if self.mfc is not None else "tmv" if self.tmv is not None else "none"

    def validate(self) -> None:
        for e in self.engines:
            if getattr(e, "weights_dram", 0):
                lines = e.weight_depth * e.line_stride
                if self.dram is None:
                    raise ConfigError(f"soc: {e.kind}.weights_dram=1 needs a DRAM; set "
                                      "soc.dram (e.g. `tritium serve --dram ideal`)")
                if lines > self.dram.size_bytes or e.line_stride % self.dram.word_bytes:
                    raise ConfigError(
                        f"soc: {e.kind}'s {e.weight_depth} weight lines of {e.line_stride} "
                        f"bytes must fit the {self.dram.size_bytes}-byte DRAM in whole "
                        f"{self.dram.word_bytes}-byte beats; lower weight_depth")
        t = self.tmv
        if t is None:
            return
        if t.act_bits != 8:
            raise ConfigError("soc: the link moves activations as bytes; use tmv.act_bits=8")
        for name in ("simd", "pe"):
            v = getattr(t, name)
            if v & (v - 1):
                raise ConfigError(f"soc: tmv.{name}={v} must be a power of two (byte lanes "
                                  "of the device memories)")

    def to_dict(self):
        d = super().to_dict()
        d["tmv"] = None if self.tmv is None else self.tmv.to_dict()
        d["mfc"] = None if self.mfc is None else self.mfc.to_dict()
        d["engines"] = [e.to_dict() for e in self.engines]
        d["dram"] = None if self.dram is None else self.dram.to_dict()
        return d

    @property
    def uart_divisor(self) -> int:
        return max(1, round(self.clock_hz / self.baud))

    @property
    def line_bytes(self) -> int:
        return self.tmv.line_bits // 8

    @property
    def line_stride(self) -> int:
        """Bytes of address space per weight line (a power of two; bytes past
        ``line_bytes`` are ignored)."""
        return self.tmv.line_stride

    def address_map(self) -> dict[str, dict[str, int | str]]:
        """name -> {base, size, access}: every engine's regions, power-of-two aligned, in
        engine order (:class:`MemoryMap`)."""
        mm = MemoryMap()
        for e in self.engines:
            for name, size, access in e.soc_regions():
                mm.add(name, size, access)
        if self.dram is not None:
            mm.add(DRAM_REGION, self.dram.size_bytes, "rw")
        return mm.regions()


#: the address-map region of the device's DRAM (SocConfig.dram)
DRAM_REGION = "dram"


def served_soc(engine: str) -> SocConfig:
    """The SoC ``tritium serve --engine engine`` serves without ``--config``: that engine
    alone, in the config its description names (``Engine.served``: the demo's bare TMV,
    the token core, :data:`SOC_SPGEMM`, ...). ConfigError for an unknown engine."""
    from tritium import registry

    return SocConfig(engines=(registry.get(engine).served_config(),))
