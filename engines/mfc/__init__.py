"""The MatMul-free token core (MFC) as the registry sees it: whole programs on the SoC.

START ``{entry}`` runs the loaded program from instruction ``entry`` to HALT; regions
``weights`` (w, its TMV's), ``program`` (w), ``vmem`` (rw), ``sregs`` (r)
(``MfcConfig.soc_regions``); counters ``tritium.golden.mfc.COUNTERS`` (the golden
machine counts the same events), ``tritium.hdl.mfc.core.COUNTER_BITS`` wide. It owns
its TMV, so it does not sit beside a bare ``tmv`` engine.
"""

from tritium.engine import Engine

START_ID = 2
START_FIELDS = (("entry", 2),)

ENGINE = Engine(
    name="mfc", title="the MatMul-free token core (programs of TMV, vector and scalar ops)",
    workload="an HGRN-bit model, preset or checkpoint dir",
    config="tritium.config:MfcConfig", start_id=START_ID, start_fields=START_FIELDS,
    counters="tritium.golden.mfc:COUNTERS", counter_bits="tritium.hdl.mfc.core:COUNTER_BITS",
    excludes=("tmv",), adapter="tritium.hdl.mfc.adapter:MfcAdapter",
    served="tritium.config:MfcConfig", golden="tritium.golden.mfc:Machine",
    estimate="tritium.engines.mfc.model:estimate",
    label_fields=("tmv.simd", "tmv.pe", "tmv.weight_depth", "imem_depth"))
