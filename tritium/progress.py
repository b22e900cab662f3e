"""Progress bars on stderr for long commands (checkpoint reads, ``tritium compare``).

rich is imported only when a bar is made, so the spec layer stays free of heavy imports.
"""

from __future__ import annotations

from typing import Iterable


def make_progress(enabled: bool):
    """A rich progress display on stderr (disabled: draws nothing); use it as a context
    manager, then :func:`track` or ``add_task``/``advance``."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=True,
                    disable=not enabled)


def track(progress, items: Iterable, description: str, total: int | None = None):
    """Iterate ``items``, advancing a task of ``progress`` (None: plain iteration)."""
    if progress is None:
        return items
    return progress.track(items, total=total, description=description)
