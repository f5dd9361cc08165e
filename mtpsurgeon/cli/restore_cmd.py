"""`mtpsurgeon restore MODEL -o OUT`: re-link hidden MTP weights, write a patched model."""
from __future__ import annotations

from pathlib import Path

import click

from mtpsurgeon.analysis import analyze
from mtpsurgeon.cli.render.console import print_json, stderr_console, stdout_console
from mtpsurgeon.surgery.plan import NothingToRestore, plan_restore
from mtpsurgeon.surgery.restore import execute


def _default_out(model: str) -> Path:
    p = Path(model)
    return p.with_name(f"{p.stem}-restored{p.suffix}")


@click.command("restore")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Patched model (default: MODEL-restored.EXT).")
@click.option("--drafter", type=click.Path(dir_okay=False), help="Drafter to graft (.tflite, or a .litertlm holding one).")
@click.option("--base", type=click.Path(dir_okay=False), help="Base model supplying dimensions for a standalone drafter.")
@click.option("--signature-name", help="Signature key for a re-exposed subgraph that is not a recognised drafter.")
@click.option("--recipe", help="Recipe for rebuilding pruned operators: a built-in name or a JSON file.")
@click.option("--dump", type=click.Path(dir_okay=False), help="safetensors dump of re-linked weights (default: OUT.safetensors).")
@click.option("--no-dump", is_flag=True, help="Do not write the safetensors dump.")
@click.option("--dtype", type=click.Choice(["raw", "f32", "f16", "bf16"]), default="raw", show_default=True, help="Dump dtype.")
@click.option("--verify/--no-verify", default=True, show_default=True, help="Run changed signatures in the LiteRT interpreter.")
@click.option("--dry-run", is_flag=True, help="Print the plan only.")
@click.option("--force", is_flag=True, help="Overwrite outputs; write even if link checks fail (with a warning).")
@click.option("--hash-input", is_flag=True, help="Also hash the whole input file (recorded in the dumps and the JSON).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan and result as JSON.")
def command(model, output, drafter, base, signature_name, recipe, dump, no_dump, dtype, verify, dry_run, force, hash_input,
            as_json):
    """Re-link the hidden MTP drafter or heads of MODEL into the execution graph."""
    report = analyze(model, base=base)
    err = stderr_console()
    try:
        plan = plan_restore(report, drafter=drafter, signature_name=signature_name, recipe=recipe, force=force)
    except NothingToRestore as exc:
        if as_json:
            print_json({"file": model, "plan": [], "status": "nothing-to-do", "message": str(exc)})
        else:
            (stdout_console() if exc.exit_code == 0 else err).print(str(exc))
        raise SystemExit(exc.exit_code)
    out = Path(output) if output else _default_out(model)
    dump_path = None if no_dump else Path(dump) if dump else out.with_suffix(".safetensors")
    lines = plan.lines()
    if not as_json:
        console = stdout_console()
        console.print(f"[bold]Plan for {model}[/] → {out}" + (f" (+ {dump_path})" if dump_path else ""))
        for line in lines:
            console.print("  " + line, markup=False)
    if dry_run:
        if as_json:
            print_json({"file": model, "output": str(out), "dump": str(dump_path) if dump_path else None, "plan": lines, "dry_run": True})
        return
    from mtpsurgeon.cli.render.console import byte_progress

    with byte_progress("dumping re-linked weights", total=0, enabled=not as_json) as advance:
        result = execute(plan, out, force=force, dump=dump_path, dump_dtype=dtype, verify=verify, progress=advance,
                         hash_input=hash_input)
    if as_json:
        print_json({"file": model, "output": str(result.output), "dump": str(result.dump) if result.dump else None,
                    "dumps": [str(p) for p in result.dumps], "input_sha256": result.input_sha256,
                    "plan": lines, "relinked_tensors": result.relinked, "binding": result.notes,
                    "verify": [vars(r) for r in result.runs]})
        return
    console = stdout_console()
    for note in result.notes:
        console.print(f"  {note}", markup=False)
    for r in result.runs:
        console.print(f"  verify {r.label} '{r.signature}': {'ok' if r.ok else 'FAILED'} — {r.detail}", markup=False)
    dumps = " and " + ", ".join(map(str, result.dumps)) + f" ({result.relinked} re-linked tensors)" if result.dumps else ""
    from rich.markup import escape

    console.print(f"[green]wrote[/] {escape(str(result.output) + dumps)}")
    if result.input_sha256:
        console.print(f"  input sha256 {result.input_sha256}", markup=False)
