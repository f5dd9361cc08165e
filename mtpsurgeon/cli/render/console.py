"""Consoles, JSON output and progress bars that stay quiet when piped."""
from __future__ import annotations

import contextlib
import json
import sys
from typing import TYPE_CHECKING, Any, Callable, Iterator

import click

if TYPE_CHECKING:
    from rich.console import Console

# rich loads on first use: a verb that prints only plain lines or JSON (extract --section) never imports it.


def stdout_console() -> Console:
    """Console for results; no highlighting or emoji codes (file-derived text stays literal)."""
    from rich.console import Console

    return Console(highlight=False, emoji=False)


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, emoji=False)


def status_line(message: str, err: bool = True) -> None:
    """One unwrapped line (stderr by default) with file-derived text made safe."""
    from mtpsurgeon.cli.render.escape import plain

    click.echo(plain(message), err=err)


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON to stdout."""
    json.dump(data, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


@contextlib.contextmanager
def byte_progress(description: str, total: int, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(nbytes)``; draws a rich bar on stderr only if it is a terminal."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    console = stderr_console()
    if not (enabled and console.is_terminal):
        yield lambda n: None
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)
