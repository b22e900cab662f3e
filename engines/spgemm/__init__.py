"""The SpGEMM engine as the registry sees it: C = A·B of sparse matrices on the SoC.

START ``{rows, b_rows, semiring}`` computes rows 0..rows-1 of C = A·B, B having
``b_rows`` rows, under the semiring of that code (``tritium.engines.spgemm.config.SPGEMM_SEMIRINGS``);
regions ``a_ext``, ``a_ent``, ``b_ext``, ``b_ent`` (w), ``c_ext``, ``c_ent`` (r)
(``SpgemmConfig.soc_regions``; none with ``operands_dram``, where all six are in the
SoC's DRAM at ``SpgemmConfig.dram_layout``); counters :data:`COUNTERS`,
``cfg.counter_bits`` wide.
"""

from tritium.engine import Engine

START_ID = 3
START_FIELDS = (("rows", 4), ("b_rows", 4), ("semiring", 1))
#: the engine's counters (per run), in the order the device reports them
COUNTERS = ("cycles", "products", "probes", "collisions", "merges", "inserts", "hazards",
            "passes", "mem_reads", "c_words", "mem_writes", "stall_merge", "stall_memory",
            "stall_fetch", "stall_pass", "stall_output", "idle_pe")

ENGINE = Engine(
    name="spgemm", title="the SpGEMM engine (C = A·B, row-wise, hash accumulators)",
    workload="A of A·A: a pyamg example or fixture name",
    config="tritium.engines.spgemm.config:SpgemmConfig", start_id=START_ID, start_fields=START_FIELDS,
    start_codes=(("semiring", "tritium.engines.spgemm.config:SPGEMM_SEMIRINGS"),),
    counters=COUNTERS, counter_bits="counter_bits",
    adapter="tritium.engines.spgemm.hdl.adapter:SpgemmAdapter",
    served="tritium.engines.spgemm.config:SOC_SPGEMM", driver="tritium.engines.spgemm.driver:Driver",
    golden="tritium.engines.spgemm.golden:spgemm",
    estimate="tritium.engines.spgemm.model:estimate",
    compare="tritium.engines.spgemm.model:compare",
    commands="tritium.engines.spgemm.commands:register",
    label_fields=("pes", "hash_bits", "max_nnz", "max_c_nnz"),
    components=(("spgemm", "tritium.engines.spgemm.config:SpgemmConfig",
                 "tritium.engines.spgemm.hdl:SpgemmEngine", "spgemm"),))
