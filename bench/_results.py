"""Where every benchmark writes: bench/results/<name>.json (flat keys, units in the names)."""

import json
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def save_results(name: str, res: dict, *, sort_keys: bool = False) -> Path:
    """Write ``res`` to bench/results/<name>.json and return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(res, indent=2, sort_keys=sort_keys) + "\n")
    return path
