"""`mtpsurgeon restore MODEL -o OUT`: re-link hidden MTP weights, write a patched model."""
from __future__ import annotations

from pathlib import Path

import click

from mtpsurgeon.analysis import analyze
from mtpsurgeon.cli.inputs import recipe_file, require_base
from mtpsurgeon.cli.render.console import print_json, status_line, stdout_console
from mtpsurgeon.cli.render.escape import plain, text
from mtpsurgeon.errors import SurgeryError
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
@click.option("--dry-run", is_flag=True, help="Print the plan (with any failing checks) and write nothing.")
@click.option("--force", is_flag=True, help="Overwrite existing outputs (never an input, never through a symlink).")
@click.option("--accept-link-failures", is_flag=True,
              help="Write a drafter that fails link checks (with a warning); never one whose KV inputs the base lacks.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan and result as JSON.")
def command(model, output, drafter, base, signature_name, recipe, dump, no_dump, dtype, verify, dry_run, force,
            accept_link_failures, as_json):
    """Re-link the hidden MTP drafter or heads of MODEL into the execution graph."""
    report = analyze(model, base=base)
    require_base(report, base)
    try:
        plan = plan_restore(report, drafter=drafter, signature_name=signature_name, recipe=recipe,
                            accept_link_failures=accept_link_failures)
    except NothingToRestore as exc:
        if as_json:
            print_json({"file": model, "plan": [], "status": "nothing-to-do", "verdict": report.verdict.status,
                        "message": str(exc)})
        else:
            status_line(str(exc), err=exc.exit_code != 0)
        raise SystemExit(exc.exit_code)
    out = Path(output) if output else _default_out(model)
    if no_dump and dump:
        raise SurgeryError(f"--dump {dump} and --no-dump contradict each other; give one")
    dump_path = None if no_dump else Path(dump) if dump else out.with_suffix(".safetensors")
    lines = plan.lines()
    if not as_json:
        console = stdout_console()
        console.print(text(f"Plan for {model} → {out}" + (f" (+ {dump_path})" if dump_path else ""), "bold"))
        for line in lines:
            console.print(text("  " + line))
    if dry_run:
        if as_json:
            print_json({"file": model, "output": str(out), "dump": str(dump_path) if dump_path else None, "plan": lines,
                        "checks": [c.to_json() for c in plan.checks], "refused": plan.refusal, "dry_run": True})
        plan.ensure_allowed()  # a refused plan still exits 1 after printing it
        return
    from mtpsurgeon.cli.render.console import byte_progress

    with byte_progress("dumping re-linked weights", total=0, enabled=not as_json) as advance:
        result = execute(plan, out, force=force, dump=dump_path, dump_dtype=dtype, verify=verify, progress=advance,
                         inputs=[base, recipe_file(recipe)])
    for stale in result.cleaned:
        status_line(f"removed {stale}, a temporary file left by an earlier run that was killed")
    if as_json:
        print_json({"file": model, "output": str(result.output), "dump": str(result.dump) if result.dump else None,
                    "dumps": [str(p) for p in result.dumps], "plan": lines, "relinked_tensors": result.relinked,
                    "binding": result.notes, "verify": [vars(r) for r in result.runs],
                    "removed_stale": [str(p) for p in result.cleaned]})
        return
    console = stdout_console()
    for note in result.notes:
        console.print(text(f"  {note}"))
    for r in result.runs:
        console.print(text(f"  verify {r.label} '{r.signature}': {'ok' if r.ok else 'FAILED'} — {r.detail}"))
    dumps = ", ".join(plain(p) for p in result.dumps)
    console.print(text("wrote ", "green") + text(f"{result.output}" + (f" and {dumps} ({result.relinked} re-linked tensors)"
                                                                       if result.dumps else "")))
