"""`--weights-dir DIR`, shared by every verb that opens models: where the side files a model names are read from."""
from __future__ import annotations

import functools
from typing import Any, Callable

import click

HELP = ("Folder holding the model's external weights files (default: the model's own folder). "
        "Names inside the model are still plain file names confined to it.")


def weights_dir_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--weights-dir`` to a click callback; every model it opens reads its side files from there."""

    @functools.wraps(command)
    def run(*args: Any, weights_dir: str | None = None, **kwargs: Any) -> Any:
        from mtpsurgeon.api import reading_weights_from

        with reading_weights_from(weights_dir):
            return command(*args, **kwargs)

    return click.option("--weights-dir", type=click.Path(file_okay=False), metavar="DIR", help=HELP)(run)
