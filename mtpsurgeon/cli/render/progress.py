"""Progress shown on stderr only when it is a terminal: byte bars and run status lines."""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from mtpsurgeon.cli.render.console import stderr_console


@contextlib.contextmanager
def sized_progress(description: str, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """Yield ``advance(nbytes, total)`` for API calls that learn the total as they go."""
    console = stderr_console()
    if not (enabled and console.is_terminal):
        yield lambda n, total: None
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(description, total=None)
        yield lambda n, total: progress.update(task, total=total, advance=n)


@contextlib.contextmanager
def status_lines(enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """Yield ``say(message)``: a spinner with the current step on a terminal, nothing when piped."""
    console = stderr_console()
    if not (enabled and console.is_terminal):
        yield lambda message: None
        return
    with console.status("starting") as status:
        yield lambda message: status.update(message)
