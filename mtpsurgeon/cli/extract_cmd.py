"""`mtpsurgeon extract MODEL -o DIR`: MTP weights to safetensors, drafters to .tflite."""
from __future__ import annotations

import click
from rich.table import Table

from mtpsurgeon.api import extract
from mtpsurgeon.cli.render.console import print_json, stdout_console
from mtpsurgeon.cli.render.formatting import human_bytes, human_count
from mtpsurgeon.cli.render.progress import sized_progress


@click.command("extract")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False), help="Output folder (default: MODEL-extracted/).")
@click.option("--orphans", is_flag=True, help="Every orphaned tensor instead of the MTP findings.")
@click.option("--all", "everything", is_flag=True, help="Every constant tensor.")
@click.option("--section", help="A container section: index or model_type (e.g. mtp_drafter).")
@click.option("--subgraph", type=int, help="One subgraph (written as its own runnable .tflite too).")
@click.option("--signature", help="The subgraph of this signature.")
@click.option("--match", "pattern", metavar="GLOB", help="Only tensors whose name matches GLOB.")
@click.option("--dtype", type=click.Choice(["raw", "f32", "f16", "bf16"]), default="raw", show_default=True,
              help="raw: stored bytes + scales; f32/f16/bf16: exactly dequantized.")
@click.option("--names", type=click.Choice(["original", "hf"]), default="original", show_default=True,
              help="hf: transformers gemma4_assistant parameter names + config.json.")
@click.option("--no-models", is_flag=True, help="Only the safetensors dump, no standalone .tflite files.")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def command(model, out_dir, orphans, everything, section, subgraph, signature, pattern, dtype, names, no_models, force, as_json):
    """Write MODEL's MTP weights (or a selection) as safetensors and standalone models."""
    with sized_progress("extracting", enabled=not as_json) as advance:
        result = extract(model, out_dir, select="all" if everything else "orphans" if orphans else "mtp",
                         section=section, subgraph=subgraph, signature=signature, match=pattern, dtype=dtype,
                         names=names, models=not no_models, force=force, progress=advance)
    if as_json:
        print_json(result.to_json())
        return
    console = stdout_console()
    for m in result.models:
        console.print(f"[green]model[/] {m.path}  ({m.source}, sha256 {m.sha256[:16]}…)")
    table = Table(title="safetensors written", title_justify="left")
    for col in ("file", "tensors", "params", "bytes in", "bytes out"):
        table.add_column(col, justify="left" if col == "file" else "right")
    for d in result.dumps:
        table.add_row(d.path, f"{d.tensors} (+{d.companions})", human_count(d.parameters), human_bytes(d.bytes_in),
                      human_bytes(d.bytes_out))
    if result.dumps:
        console.print(table)
    for d in result.dumps:
        for note in d.notes:
            console.print(f"  note: {note}", markup=False)
        for s in d.skipped:
            console.print(f"  skipped {s.name}: {s.reason}", markup=False)
