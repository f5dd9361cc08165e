"""`mtpsurgeon extract MODEL -o DIR`: MTP weights to safetensors, drafters to .tflite."""
from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from mtpsurgeon.analysis import analyze
from mtpsurgeon.cli.render.console import byte_progress, print_json, stderr_console, stdout_console
from mtpsurgeon.cli.render.escape import text
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
@click.option("--allow-partial", is_flag=True,
              help="With --names hf: write the tensors that map even when some do not (default: refuse, exit 1).")
@click.option("--check-parity", is_flag=True,
              help="With --names hf: run the checkpoint in transformers and the drafter in LiteRT on the same random "
                   "inputs and compare (needs torch and transformers).")
@click.option("--no-models", is_flag=True, help="Only the safetensors dump, no standalone .tflite files.")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def command(model, out_dir, orphans, everything, section, subgraph, signature, pattern, dtype, names, allow_partial,
            check_parity, no_models, force, as_json):
    """Write MODEL's MTP weights (or a selection) as safetensors and standalone models."""
    report = analyze(model)
    selections = select(report, orphans=orphans, everything=everything, section=section, subgraph=subgraph,
                        signature=signature, pattern=pattern)
    out = Path(out_dir) if out_dir else Path(model).with_name(Path(model).stem + "-extracted")
    total = sum(total_input_bytes(s.model, s.tensors) for s in selections)
    with byte_progress("extracting", total, enabled=not as_json) as advance:
        result = run_extract(report, selections, out, dtype=dtype, names=names, models=not no_models, force=force,
                             allow_partial=allow_partial, check_parity=check_parity, progress=advance)
    for stale in result.cleaned:
        stderr_console().print(text(f"removed {stale}, a temporary file left by an earlier run that was killed"))
    if as_json:
        print_json({
            "file": model, "output": str(out), "models": result.models,
            "dumps": [{"path": str(d.path), "dtype": d.dtype, "names": d.names, "tensors": d.tensors,
                       "companions": d.companions, "parameters": d.parameters, "bytes_in": d.bytes_in,
                       "bytes_out": d.bytes_out, "notes": d.notes,
                       "skipped": [{"name": t.name, "reason": why} for t, why in d.skipped],
                       "config": str(d.config_path) if d.config_path else None,
                       "parity": d.parity.to_json() if d.parity is not None else None} for d in result.dumps],
            "removed_stale": [str(p) for p in result.cleaned], "notes": result.notes,
        })
        _parity_exit(result)
        return
    console = stdout_console()
    for m in result.models:
        console.print(text("model ", "green") + text(f"{m['path']}  ({m['source']}, sha256 {m['sha256'][:16]}…)"))
    table = Table(title="safetensors written", title_justify="left")
    for col in ("file", "tensors", "params", "bytes in", "bytes out"):
        table.add_column(col, justify="left" if col == "file" else "right")
    for d in result.dumps:
        table.add_row(text(d.path), f"{d.tensors} (+{d.companions})", human_count(d.parameters), human_bytes(d.bytes_in),
                      human_bytes(d.bytes_out))
    if result.dumps:
        console.print(table)
    for d in result.dumps:
        for note in d.notes:
            console.print(text(f"  note: {note}"))
        for t, why in d.skipped:
            console.print(text(f"  skipped {t.name}: {why}"))
        if d.parity is not None:
            p = d.parity
            console.print(text(f"  parity with transformers ({p.samples} random inputs): logits max |diff| "
                               f"{p.logits_max_abs:.2e}, projected {p.projected_max_abs:.2e}, top-1 agreement "
                               f"{p.top1_agree:.0%}: {'ok' if p.passed() else 'FAILED'}", "green" if p.passed() else "red"))
            for note in p.notes:
                console.print(text(f"    {note}"))
    for note in result.notes:
        console.print(text(f"  note: {note}"))
    _parity_exit(result)


def _parity_exit(result) -> None:
    """A checkpoint that does not compute what the drafter computes is a failure (exit 1); the files stay."""
    if any(d.parity is not None and not d.parity.passed() for d in result.dumps):
        raise SystemExit(1)
