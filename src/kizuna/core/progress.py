"""Progress display for long runs: a rich progress bar on a terminal, silent otherwise."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["progress_bar"]


@contextmanager
def progress_bar(label: str, total: float, quiet: bool = False) -> Iterator[Callable[[float, str], None]]:
    """Yield ``advance(completed, text)`` that shows progress toward ``total`` on stderr.

    Nothing is shown when ``quiet`` is set or stderr is not a terminal.
    """
    if quiet or not sys.stderr.isatty():
        yield lambda completed, text="": None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[note]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as prog:
        task = prog.add_task(label, total=total, note="")

        def advance(completed: float, text: str = "") -> None:
            prog.update(task, completed=completed, note=text)

        yield advance
