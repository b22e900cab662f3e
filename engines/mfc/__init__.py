"""The MatMul-free token core (MFC) as the registry sees it: whole programs on the SoC.

START ``{entry}`` runs the loaded program from instruction ``entry`` to HALT; regions
``weights`` (w, its TMV's), ``program`` (w), ``vmem`` (rw), ``sregs`` (r)
(``MfcConfig.soc_regions``); counters ``tritium.engines.mfc.golden.COUNTERS`` (the
golden machine counts the same events), ``tritium.engines.mfc.hdl.core.COUNTER_BITS``
wide; host driver :class:`tritium.engines.mfc.driver.Driver`. It owns its TMV, so it does
not sit beside a bare ``tmv`` engine.
"""

from tritium.engine import Engine

START_ID = 2
START_FIELDS = (("entry", 2),)

ENGINE = Engine(
    name="mfc", title="the MatMul-free token core (programs of TMV, vector and scalar ops)",
    workload="an HGRN-bit model, preset or checkpoint dir",
    config="tritium.engines.mfc.config:MfcConfig", start_id=START_ID, start_fields=START_FIELDS,
    counters="tritium.engines.mfc.golden:COUNTERS",
    counter_bits="tritium.engines.mfc.hdl.core:COUNTER_BITS",
    excludes=("tmv",), adapter="tritium.engines.mfc.hdl.adapter:MfcAdapter",
    served="tritium.engines.mfc.config:MfcConfig", driver="tritium.engines.mfc.driver:Driver",
    golden="tritium.engines.mfc.golden:Machine",
    estimate="tritium.engines.mfc.model:estimate",
    label_fields=("tmv.simd", "tmv.pe", "tmv.weight_depth", "imem_depth"),
    lm_estimate="tritium.engines.mfc.model:estimate_mfc",
    commands="tritium.engines.mfc.commands:register",
    components=(("mfc", "tritium.engines.mfc.config:MfcConfig", "tritium.engines.mfc.hdl:MfcCore",
                 "mfc"),))
