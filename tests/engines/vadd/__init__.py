"""An example engine outside tritium: element-wise vector add, c[i] = a[i] + b[i].

It is the walk-through of docs/engines.md ("How to add an engine"): one package, its
``ENGINE`` description below, and one registry line (``TRITIUM_ENGINES=vadd``, set by
``tests/engines/conftest.py``). Nothing in tritium names it.

- config (:mod:`vadd.config`): ``VaddConfig(depth, counter_bits)``, kind ``"vadd"``;
  int16 operands, int32 results (exact: a 17-bit sum), at most ``depth`` elements;
- regions: ``vadd_a``, ``vadd_b`` (write only, 2 bytes per element, committed on the
  second byte), ``vadd_c`` (read only, 4 bytes per element);
- START ``{n}`` adds elements 0..n-1; refused unless 1 <= n <= depth; the engine holds
  the bus while it runs; ``cycles(n) = n + 2`` busy cycles (:meth:`VaddConfig.cycles`);
- counters ``cycles`` (busy cycles of the last run) and ``elements`` (results written);
- hdl (:mod:`vadd.hdl`), golden (:mod:`vadd.golden`), cycle model (:mod:`vadd.model`),
  host driver (:mod:`vadd.driver`: ``Device.vadd(a, b)``), CLI (:mod:`vadd.commands`:
  ``tritium run vadd``).
"""

from tritium.engine import Engine

START_ID = 9
START_FIELDS = (("n", 2),)
COUNTERS = ("cycles", "elements")

ENGINE = Engine(
    name="vadd", title="element-wise int16 vector add (the example engine)",
    workload="the vector length n", config="vadd.config:VaddConfig", start_id=START_ID,
    start_fields=START_FIELDS, counters=COUNTERS, counter_bits="counter_bits",
    adapter="vadd.hdl:VaddAdapter", served="vadd.config:VaddConfig",
    driver="vadd.driver:Driver", golden="vadd.golden:vadd", estimate="vadd.model:estimate",
    commands="vadd.commands:register", label_fields=("depth",))
