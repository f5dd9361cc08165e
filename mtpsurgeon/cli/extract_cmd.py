"""`mtpsurgeon extract MODEL -o DIR`: MTP weights to safetensors, drafters to .tflite."""
from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from mtpsurgeon.analysis import analyze
from mtpsurgeon.cli.render.console import byte_progress, print_json, stdout_console
from mtpsurgeon.cli.render.formatting import human_bytes, human_count
from mtpsurgeon.extract.dump import total_input_bytes
from mtpsurgeon.extract.run import run_extract
from mtpsurgeon.extract.selection import select


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
@click.option("--hash-input", is_flag=True, help="Also hash the whole input file (recorded in the dumps and the JSON).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def command(model, out_dir, orphans, everything, section, subgraph, signature, pattern, dtype, names, no_models, force,
            hash_input, as_json):
    """Write MODEL's MTP weights (or a selection) as safetensors and standalone models."""
    report = analyze(model)
    selections = select(report, orphans=orphans, everything=everything, section=section, subgraph=subgraph,
                        signature=signature, pattern=pattern)
    out = Path(out_dir) if out_dir else Path(model).with_name(Path(model).stem + "-extracted")
    total = sum(total_input_bytes(s.model, s.tensors) for s in selections)
    with byte_progress("extracting", total, enabled=not as_json) as advance:
        result = run_extract(report, selections, out, dtype=dtype, names=names, models=not no_models, force=force,
                             progress=advance, hash_input=hash_input)
    if as_json:
        print_json({
            "file": model, "output": str(out), "input_sha256": result.source_sha256, "models": result.models,
            "dumps": [{"path": str(d.path), "dtype": d.dtype, "names": d.names, "tensors": d.tensors,
                       "companions": d.companions, "parameters": d.parameters, "bytes_in": d.bytes_in,
                       "bytes_out": d.bytes_out, "notes": d.notes,
                       "skipped": [{"name": t.name, "reason": why} for t, why in d.skipped],
                       "config": str(d.config_path) if d.config_path else None} for d in result.dumps],
        })
        return
    console = stdout_console()
    for m in result.models:
        console.print(f"[green]model[/] {m['path']}  ({m['source']}, sha256 {m['sha256'][:16]}…)")
    table = Table(title="safetensors written", title_justify="left")
    for col in ("file", "tensors", "params", "bytes in", "bytes out"):
        table.add_column(col, justify="left" if col == "file" else "right")
    for d in result.dumps:
        table.add_row(str(d.path), f"{d.tensors} (+{d.companions})", human_count(d.parameters), human_bytes(d.bytes_in),
                      human_bytes(d.bytes_out))
    if result.dumps:
        console.print(table)
    for d in result.dumps:
        for note in d.notes:
            console.print(f"  note: {note}", markup=False)
        for t, why in d.skipped:
            console.print(f"  skipped {t.name}: {why}", markup=False)
