"""docs/protocol.md agrees with the specs: its generated part is what
:mod:`tritium.docgen` makes now, and its command table has the codes of
``tritium.protocol.Command``."""

from __future__ import annotations

import re
from pathlib import Path

from tritium import docgen, registry
from tritium import protocol as P

DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"


def test_the_generated_part_is_current():
    text = DOC.read_text()
    assert docgen.rendered(text) == text, "run `python -m tritium.docgen`"


def test_the_generated_part_holds_every_engine_as_info_describes_it():
    part = docgen.generated()
    for eng in registry.builtin().values():
        info = eng.describe(eng.served_config())
        section = part.split(f"### Engine {eng.start_id}: `{eng.name}`")[1].split("### ")[0]
        assert [f"| `{n}` | {b} |" in section for n, b in info["fields"]] == \
            [True] * len(info["fields"])
        for name in info["regions"]:
            assert f"| `{name}` |" in section
        assert ", ".join(f"`{n}`" for n, _ in info["counters"]) in section


def test_a_changed_spec_changes_the_document(monkeypatch):
    import dataclasses

    eng = registry.builtin()[registry.BUILTIN[0]]
    changed = dataclasses.replace(eng, start_fields=eng.start_fields + (("extra", 2),))
    first = registry.BUILTIN[0]
    monkeypatch.setattr(registry, "builtin", lambda: {first: changed})
    monkeypatch.setattr(registry, "BUILTIN", (first,))
    assert "| `extra` | 2 |" in docgen.generated()
    assert docgen.rendered(DOC.read_text()) != DOC.read_text()


def test_the_command_table_has_the_protocol_codes():
    rows = dict(re.findall(r"^\| 0x([0-9a-f]{2}) \| (\w+) \|", DOC.read_text(), re.M))
    assert {int(k, 16): v for k, v in rows.items()} == \
        {c.value: c.name for c in P.Command if c is not P.Command.NAK}
