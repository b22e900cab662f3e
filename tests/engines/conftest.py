"""The example engines' one registry line: ``TRITIUM_ENGINES`` names them, and this
folder is on the import path, for this process and every subprocess it starts."""

import os
import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
os.environ["TRITIUM_ENGINES"] = "vadd"
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (HERE, os.environ.get("PYTHONPATH"))))
sys.path.insert(0, HERE)
