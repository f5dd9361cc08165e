"""`mtpsurgeon inspect MODEL`: structure, orphans and the MTP verdict."""
from __future__ import annotations

from pathlib import Path

import click

from mtpsurgeon.api import inspect_json, tensor_rows
from mtpsurgeon.cli.render.console import stdout_console
from mtpsurgeon.cli.render.inspect_view import LISTING_LIMIT, render_overview, render_tensors
from mtpsurgeon.cli.render.json_stream import write_json
from mtpsurgeon.cli.input_options import weights_dir_option


@click.command("inspect")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (stable schema: docs/how-it-works.md).")
@click.option("--tensors", is_flag=True, help="List tensors instead of the overview.")
@click.option("--orphans", is_flag=True, help="With --tensors: only orphaned tensors.")
@click.option("--mtp", is_flag=True, help="With --tensors: only tensors tied to MTP.")
@click.option("--match", "pattern", metavar="GLOB", help="With --tensors: only names matching GLOB.")
@click.option("--base", type=click.Path(dir_okay=False), help="Base model (.litertlm/.tflite) for a standalone drafter's link checks.")
@click.option("--all", "show_all", is_flag=True, help=f"With --tensors: list every row (text output stops at {LISTING_LIMIT}).")
@weights_dir_option
def inspect(model: str, as_json: bool, tensors: bool, orphans: bool, mtp: bool, pattern: str | None, base: str | None,
            show_all: bool) -> None:
    """Show sections, subgraphs, signatures, tensors, orphans and the MTP verdict of MODEL.

    --json is written as it is produced, so listings of any length stream.
    """
    if tensors or orphans or mtp or pattern:
        with tensor_rows(model, base=base, orphans=orphans, mtp=mtp, match=pattern) as rows:
            if as_json:
                write_json({"file": str(Path(model)), "tensors": rows})
            else:
                render_tensors(stdout_console(), rows, limit=None if show_all else LISTING_LIMIT)
        return
    with inspect_json(model, base=base) as data:
        if as_json:
            write_json(data)
        else:
            render_overview(stdout_console(), data)
