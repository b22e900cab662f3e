"""The ternary matrix-vector engine (TMV) as the registry sees it: y = W·x on the SoC.

START ``{rows, cols, base, fmt}`` runs ``rows × cols`` from weight line ``base`` in the
packed format ``fmt`` (its index in ``tritium.engines.tmv.config.TMV_FORMATS``) on the activations
loaded; regions ``weights`` (w), ``activations`` (rw, int8), ``results`` (r, int32)
(``TernaryConfig.soc_regions``); counters :data:`COUNTERS`, :data:`COUNTER_BITS` wide.
"""

from tritium.engine import Engine

#: START's engine byte
START_ID = 1
#: START payload after the engine byte: (field, bytes), little-endian
START_FIELDS = (("rows", 4), ("cols", 4), ("base", 4), ("fmt", 1))
#: the engine's cycle counters, in the order the device reports them, and their width
COUNTERS = ("busy_cycles", "mac_slots", "stall_input", "stall_output", "stall_memory")
COUNTER_BITS = 48

ENGINE = Engine(
    name="tmv", title="the bare ternary matrix-vector engine (y = W·x)",
    workload="one command, ROWSxCOLS[:FMT]",
    config="tritium.engines.tmv.config:TernaryConfig", start_id=START_ID, start_fields=START_FIELDS,
    start_codes=(("fmt", "tritium.engines.tmv.config:TMV_FORMATS"),),
    counters=COUNTERS, counter_bits=COUNTER_BITS,
    adapter="tritium.engines.tmv.hdl.adapter:TmvAdapter", served="tritium.engines.tmv.config:_default_soc_tmv",
    driver="tritium.engines.tmv.driver:Driver", golden="tritium.engines.tmv.golden:ternary_matvec",
    estimate="tritium.engines.tmv.model:estimate", label_fields=("simd", "pe", "weight_depth"),
    compare="tritium.engines.tmv.model:compare",
    lm_matvecs="tritium.engines.tmv.model:lm_matvecs",
    rtl="tritium.engines.tmv.explore_runner:RtlPoints",
    commands="tritium.engines.tmv.commands:register",
    components=(("ternary-dot", "tritium.engines.tmv.config:TernaryDotConfig",
                 "tritium.engines.tmv.hdl:TernaryDot", "ternary_dot"),
                ("ternary-matvec", "tritium.engines.tmv.config:TernaryConfig",
                 "tritium.engines.tmv.hdl:TernaryMatVec", "ternary_matvec")))
