"""`mtpsurgeon extract MODEL -o DIR`: MTP weights to safetensors, drafters to .tflite."""
from __future__ import annotations

import contextlib
import os
import sys

import click

from mtpsurgeon.api import extract
from mtpsurgeon.cli.render.console import print_json, status_line
from mtpsurgeon.cli.render.escape import plain
from mtpsurgeon.cli.input_options import weights_dir_option


@click.command("extract")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), help="Output folder (default: MODEL-extracted/).")
@click.option("--orphans", is_flag=True, help="Every orphaned tensor instead of the MTP findings.")
@click.option("--all", "everything", is_flag=True, help="Every constant tensor.")
@click.option("--section", help="A container section: index or model_type (e.g. mtp_drafter). Alone: the section "
                                "copied out byte for byte, nothing else (add --all, --dtype or --names for its weights).")
@click.option("--subgraph", type=int, help="One subgraph (written as its own runnable .tflite too).")
@click.option("--signature", help="The subgraph of this signature.")
@click.option("--match", "pattern", metavar="GLOB", help="Only tensors whose name matches GLOB.")
@click.option("--dtype", type=click.Choice(["raw", "f32", "f16", "bf16"]), default="raw", show_default=True,
              help="raw: stored bytes + scales; f32/f16/bf16: exactly dequantized.")
@click.option("--names", type=click.Choice(["original", "hf"]), default="original", show_default=True,
              help="hf: a folder transformers loads (model.safetensors, config.json, README.md), gemma4_assistant names.")
@click.option("--allow-partial", is_flag=True,
              help="With --names hf: write the tensors that map even when some do not (default: refuse, exit 1).")
@click.option("--check-parity", is_flag=True,
              help="With --names hf: run the checkpoint in transformers and the drafter in LiteRT on the same random "
                   "inputs and compare (needs torch and transformers).")
@click.option("--no-models", is_flag=True, help="Only the safetensors dump, no standalone .tflite files.")
@click.option("--force", is_flag=True, help="Overwrite existing outputs (never an input, never through a symlink).")
@click.option("--hash-input", is_flag=True, help="Also hash the whole input file (recorded in the dumps and the JSON).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@weights_dir_option
def command(model, out_dir, orphans, everything, section, subgraph, signature, pattern, dtype, names, allow_partial,
            check_parity, no_models, force, hash_input, as_json):
    """Write MODEL's MTP weights (or a selection) as safetensors and standalone models."""
    with _progress(enabled=not as_json) as advance:
        result = extract(model, out_dir, select="all" if everything else "orphans" if orphans else "mtp",
                         section=section, subgraph=subgraph, signature=signature, match=pattern, dtype=dtype,
                         names=names, models=not no_models, force=force, progress=advance,
                         allow_partial=allow_partial, check_parity=check_parity, hash_input=hash_input)
    for stale in result.removed_stale or []:
        status_line(f"removed {stale}, a temporary file left by an earlier run that was killed")
    if as_json:
        print_json(result.to_json())
        _parity_exit(result)
        return
    for m in result.models:
        click.echo(click.style("model ", fg="green") + plain(f"{m.path}  ({m.source}, sha256 {m.sha256[:16]}…)"))
    if result.dumps:
        _print_dumps(result)
    for note in result.notes or []:
        click.echo(plain(f"  note: {note}"))
    if result.input_sha256:
        click.echo(plain(f"  input sha256 {result.input_sha256}"))
    _parity_exit(result)


def _progress(enabled: bool):
    """A byte bar on a terminal; when stderr is not one, a no-op that loads nothing (no rich)."""
    terminal = sys.stderr.isatty() or any(k in os.environ for k in ("FORCE_TERMINAL", "TTY_COMPATIBLE"))
    if not (enabled and terminal):
        return contextlib.nullcontext(lambda n, total: None)
    from mtpsurgeon.cli.render.progress import sized_progress

    return sized_progress("extracting", enabled=True)


def _print_dumps(result) -> None:
    """The dumps table and each dump's notes, skips and parity (rich)."""
    from rich.table import Table

    from mtpsurgeon.cli.render.console import stdout_console
    from mtpsurgeon.cli.render.escape import text
    from mtpsurgeon.cli.render.formatting import human_bytes, human_count

    console = stdout_console()
    table = Table(title="safetensors written", title_justify="left")
    for col in ("file", "tensors", "params", "bytes in", "bytes out"):
        table.add_column(col, justify="left" if col == "file" else "right")
    for d in result.dumps:
        table.add_row(text(d.path), f"{d.tensors} (+{d.companions})", human_count(d.parameters), human_bytes(d.bytes_in),
                      human_bytes(d.bytes_out))
    console.print(table)
    for d in result.dumps:
        for note in d.notes:
            console.print(text(f"  note: {note}"))
        for s in d.skipped:
            console.print(text(f"  skipped {s.name}: {s.reason}"))
        for u in d.unfaithful or []:
            console.print(text(f"  NOT REPRODUCED by config.json (--allow-partial): {u}", "red"))
        if d.parity is not None:
            _print_parity(console, d.parity)


def _print_parity(console, p: dict) -> None:
    """The worst figures, then one row per sampled position."""
    from rich.table import Table

    from mtpsurgeon.cli.render.escape import text

    window = f", sliding window {p['sliding_window']}" if p.get("sliding_window") else ""
    console.print(text(f"  parity with transformers ({p['samples']} positions over the cache of "
                       f"{p.get('cache_length')}{window}): logits max |diff| {p['logits_max_abs']:.2e}, projected "
                       f"{p['projected_max_abs']:.2e}, top-1 agreement {p['top1_agree']:.0%}: "
                       f"{'ok' if p['passed'] else 'FAILED'}", "green" if p["passed"] else "red"))
    table = Table(box=None, padding=(0, 2), show_edge=False)
    for col in ("position", "max |Δlogits|", "max |Δprojected|", "top-1"):
        table.add_column(col, justify="right")
    for row in p.get("per_position") or []:
        table.add_row(str(row["position"]), f"{row['logits_max_abs']:.2e}", f"{row['projected_max_abs']:.2e}",
                      "same" if row["top1"] else "differs")
    console.print(table)
    for note in p["notes"]:
        console.print(text(f"    {note}"))


def _parity_exit(result) -> None:
    """A checkpoint that does not compute what the drafter computes is a failure (exit 1); the files stay."""
    if any(d.parity is not None and not d.parity["passed"] for d in result.dumps):
        raise SystemExit(1)
