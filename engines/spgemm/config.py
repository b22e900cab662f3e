"""The SpGEMM engine's config: the one home of its widths, word layouts, regions and timing.

:class:`SpgemmConfig`, its semirings by command code (:data:`SPGEMM_SEMIRINGS`) and the
served device's engine (:data:`SOC_SPGEMM`). Spec layer: standard library only.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from tritium.config import Config, field as _field, pow2_ceil
from tritium.errors import ConfigError


#: semirings of the SpGEMM engine, by their command code (bit k of SpgemmConfig.semirings)
SPGEMM_SEMIRINGS: tuple[str, ...] = ("plus-times", "fixed", "min-plus", "max-plus", "or-and")


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
    builds the external-memory model of :mod:`tritium.hdl.mem`. C is written as CSR (row
    extents and ``{col, value}`` entries); each PE writes the rows it computed into its
    own bank of ``max_c_nnz`` entries: on-chip memories read back over the bus, or, with
    ``operands_dram``, the SoC's DRAM (:meth:`dram_layout`), where A and B are read from
    too.

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
    operands_dram: int = _field(0, 0, 1, "read A's and B's CSR from the SoC's DRAM and write "
                                "C's there (1) instead of on-chip memories (0)")

    def validate(self) -> None:
        if self.operands_dram and self.mem_bytes_per_cycle:
            raise ConfigError(f"{self.kind}: operands_dram=1 reads at the DRAM's rate; leave "
                              "mem_bytes_per_cycle=0 (mem_latency: the DRAM latency the "
                              "operand FIFOs cover)")
        if self.operands_dram and self.standalone_dram() is None:
            raise ConfigError(f"{self.kind}: operands_dram=1 puts A, B and C in DRAM, "
                              f"{self.dram_bytes(4)} bytes at 4-byte beats, more than any "
                              "DRAM part tritium knows holds; lower max_dim, max_nnz or "
                              "max_c_nnz")
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
        """The external-memory model of :mod:`tritium.hdl.mem` behind each PE port (not
        with ``operands_dram``: those ports are DRAM readers)."""
        return not self.operands_dram and (self.mem_latency != 1 or self.mem_bytes_per_cycle != 0)

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
        :attr:`SOC_REGIONS` order: one word per ``word_stride`` bytes. None with
        ``operands_dram``: A, B and C are in the DRAM (:meth:`dram_layout`)."""
        return tuple((name, getattr(self, depth) * self.word_stride(word), access)
                     for name, (word, depth, access) in self.SOC_REGIONS.items()
                     if not self.operands_dram)

    def dram_layout(self, beat_bytes: int) -> dict[str, tuple[int, int, int]]:
        """With ``operands_dram``: where the engine's memories (:attr:`SOC_REGIONS`: A's
        and B's, read; C's, written) sit in the DRAM, for a DRAM of ``beat_bytes``-byte
        beats: name -> (base byte, stride bytes, words). Word k of memory ``name`` is the
        ``stride`` bytes at DRAM byte ``base + k * stride`` (the word's
        :meth:`word_stride` bytes, zero padded to at least one beat: a power of two),
        little-endian as on the bus. The memories follow each other from DRAM byte 0 in
        the order ``a_ext, a_ent, b_ext, b_ent, c_ext, c_ent``, each ``depth * stride``
        bytes and starting on a multiple of its stride; ``c_ent`` holds PE k's bank at
        word ``k << c_bank_bits``."""
        out, pos = {}, 0
        for name, (word, depth, access) in self.SOC_REGIONS.items():
            stride = max(self.word_stride(word), beat_bytes)
            n = getattr(self, depth)
            pos = -(-pos // stride) * stride
            out[name] = (pos, stride, n)
            pos += n * stride
        return out

    def dram_bytes(self, beat_bytes: int) -> int:
        """DRAM bytes :meth:`dram_layout` occupies."""
        return max(base + stride * n for base, stride, n in self.dram_layout(beat_bytes).values())

    def standalone_dram(self):
        """The DRAM the engine's ports are shaped for when it is built alone (no SoC,
        with ``operands_dram``: ``tritium verilog spgemm``, the lint of every config): the
        first part of :data:`tritium.dram.PARTS` whose size holds :meth:`dram_layout` at
        its beat, at the smallest power-of-two size that does; None if none does (the
        validator then refuses the config)."""
        from tritium.dram import PARTS, DramConfig

        for p in PARTS.values():
            need = self.dram_bytes(p.port_bits // 8)
            if need <= p.size_bytes:
                return DramConfig(part=p.name, size=max(pow2_ceil(need), p.port_bits // 8))
        return None

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


#: the SpGEMM engine of the served device (`tritium serve --engine spgemm`) and of the board
#: builds: 1 PE, 64-slot tables, A and B up to 1024 x 1024 with 4096 entries each, C up
#: to 8192 entries (the pyamg example matrices' A·A fit). One PE, because Verilator
#: evaluates every PE on every cycle, link transfers included: a second PE halves the
#: engine's time on a product but costs the served simulation ~40 % of its cycles/s
#: (docs/spgemm.md, "On the device")
SOC_SPGEMM = SpgemmConfig(pes=1, hash_bits=6, max_dim=1024, max_nnz=4096, max_c_nnz=8192)
