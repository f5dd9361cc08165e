"""`mtpsurgeon inspect MODEL`: structure, orphans and the MTP verdict."""
from __future__ import annotations

import fnmatch

import click

from mtpsurgeon.analysis import analyze
from mtpsurgeon.analysis.report_json import LazyRows, report_to_json, tensor_json
from mtpsurgeon.cli.render.console import stdout_console
from mtpsurgeon.cli.render.inspect_view import LISTING_LIMIT, render_overview, render_tensors
from mtpsurgeon.cli.render.json_stream import write_json


def tensor_rows(report, orphans_only: bool, mtp_only: bool, pattern: str | None) -> LazyRows:
    """Every tensor of every model, filtered, as JSON rows (made as they are read)."""
    picked = []
    for ma in report.models:
        mtp_keys = ma.mtp_tensor_keys()
        orphan_keys = {(t.subgraph, t.index) for t in ma.orphans.tensors}
        for t in ma.model.tensors():
            key = (t.subgraph, t.index)
            if orphans_only and key not in orphan_keys:
                continue
            if mtp_only and key not in mtp_keys:
                continue
            if pattern and not fnmatch.fnmatchcase(t.name, pattern):
                continue
            picked.append((ma, t, mtp_keys, orphan_keys))
    return LazyRows(picked, lambda x: tensor_json(*x))


@click.command("inspect")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (stable schema, see README).")
@click.option("--tensors", is_flag=True, help="List tensors instead of the overview.")
@click.option("--orphans", is_flag=True, help="With --tensors: only orphaned tensors.")
@click.option("--mtp", is_flag=True, help="With --tensors: only tensors tied to MTP.")
@click.option("--match", "pattern", metavar="GLOB", help="With --tensors: only names matching GLOB.")
@click.option("--base", type=click.Path(dir_okay=False), help="Base model (.litertlm/.tflite) for a standalone drafter's link checks.")
@click.option("--all", "show_all", is_flag=True, help=f"With --tensors: list every row (text output stops at {LISTING_LIMIT}).")
def inspect(model: str, as_json: bool, tensors: bool, orphans: bool, mtp: bool, pattern: str | None, base: str | None,
            show_all: bool) -> None:
    """Show sections, subgraphs, signatures, tensors, orphans and the MTP verdict of MODEL.

    --json is written as it is produced, so listings of any length stream.
    """
    report = analyze(model, base=base)
    if tensors or orphans or mtp or pattern:
        rows = tensor_rows(report, orphans, mtp, pattern)
        if as_json:
            write_json({"file": str(report.file.path), "tensors": rows})
        else:
            render_tensors(stdout_console(), rows, limit=None if show_all else LISTING_LIMIT)
        return
    data = report_to_json(report, lazy=True)
    if as_json:
        write_json(data)
    else:
        render_overview(stdout_console(), data)
