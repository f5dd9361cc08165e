"""`mtpsurgeon inspect MODEL`: structure, orphans and the MTP verdict."""
from __future__ import annotations

from pathlib import Path

import click

from mtpsurgeon.api import inspect as inspect_file
from mtpsurgeon.api import list_tensors
from mtpsurgeon.cli.render.console import print_json, stdout_console
from mtpsurgeon.cli.render.inspect_view import render_overview, render_tensors


@click.command("inspect")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (stable schema, see README).")
@click.option("--tensors", is_flag=True, help="List tensors instead of the overview.")
@click.option("--orphans", is_flag=True, help="With --tensors: only orphaned tensors.")
@click.option("--mtp", is_flag=True, help="With --tensors: only tensors tied to MTP.")
@click.option("--match", "pattern", metavar="GLOB", help="With --tensors: only names matching GLOB.")
@click.option("--base", type=click.Path(dir_okay=False), help="Base model (.litertlm/.tflite) for a standalone drafter's link checks.")
def inspect(model: str, as_json: bool, tensors: bool, orphans: bool, mtp: bool, pattern: str | None, base: str | None) -> None:
    """Show sections, subgraphs, signatures, tensors, orphans and the MTP verdict of MODEL."""
    if tensors or orphans or mtp or pattern:
        rows = [t.to_json() for t in list_tensors(model, base=base, orphans=orphans, mtp=mtp, match=pattern)]
        if as_json:
            print_json({"file": str(Path(model)), "tensors": rows})
        else:
            render_tensors(stdout_console(), rows)
        return
    data = inspect_file(model, base=base).to_json()
    if as_json:
        print_json(data)
    else:
        render_overview(stdout_console(), data)
