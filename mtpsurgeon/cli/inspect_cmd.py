"""`mtpsurgeon inspect MODEL`: structure, orphans and the MTP verdict."""
from __future__ import annotations

import fnmatch

import click

from mtpsurgeon.analysis import analyze
from mtpsurgeon.analysis.report_json import tensor_json
from mtpsurgeon.cli.inputs import require_base
from mtpsurgeon.cli.render.console import print_json, stdout_console
from mtpsurgeon.cli.render.inspect_view import render_overview, render_tensors


def tensor_rows(report, orphans_only: bool, mtp_only: bool, pattern: str | None) -> list[dict]:
    """Every tensor of every model, filtered, as JSON rows."""
    rows = []
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
            rows.append(tensor_json(ma, t, mtp_keys, orphan_keys))
    return rows


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
    report = analyze(model, base=base)
    require_base(report, base)
    if tensors or orphans or mtp or pattern:
        rows = tensor_rows(report, orphans, mtp, pattern)
        if as_json:
            print_json({"file": str(report.file.path), "tensors": rows})
        else:
            render_tensors(stdout_console(), rows)
        return
    data = report.to_json()
    if as_json:
        print_json(data)
    else:
        render_overview(stdout_console(), data)
