"""`mtpsurgeon restore MODEL -o OUT`: re-link hidden MTP weights, write a patched model."""
from __future__ import annotations

import dataclasses

import click

from mtpsurgeon.api import restore
from mtpsurgeon.api.results import RestoreResult
from mtpsurgeon.cli.bench_options import bench_options, run_bench
from mtpsurgeon.cli.render.bench_view import render_bench
from mtpsurgeon.cli.render.console import byte_progress, print_json, status_line, stdout_console
from mtpsurgeon.cli.render.escape import text
from mtpsurgeon.cli.input_options import weights_dir_option
from mtpsurgeon.errors import NothingToRestore, SurgeryError, UsageError


def _print_plan(planned: RestoreResult) -> None:
    console = stdout_console()
    console.print(text(f"Plan for {planned.file} → {planned.output}" + (f" (+ {planned.dump})" if planned.dump else ""),
                       "bold"))
    for line in planned.plan:
        console.print(text("  " + line))


@click.command("restore")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Patched model (default: MODEL-restored.EXT).")
@click.option("--drafter", type=click.Path(dir_okay=False), help="Drafter to graft (.tflite, or a .litertlm holding one).")
@click.option("--base", type=click.Path(dir_okay=False), help="Base model supplying dimensions for a standalone drafter.")
@click.option("--signature-name", help="Signature key for a re-exposed subgraph that is not a recognised drafter.")
@click.option("--recipe", help="Recipe for rebuilding pruned operators: a built-in name or a JSON file.")
@click.option("--config", "config", type=click.Path(dir_okay=False),
              help="The assistant's config.json: its epsilon, soft-cap, window and RoPE override the file's constants "
                   "when a pruned drafter is rebuilt.")
@click.option("--dump", type=click.Path(dir_okay=False), help="safetensors dump of re-linked weights (default: OUT.safetensors).")
@click.option("--no-dump", is_flag=True, help="Do not write the safetensors dump.")
@click.option("--dtype", type=click.Choice(["raw", "f32", "f16", "bf16"]), default="raw", show_default=True, help="Dump dtype.")
@click.option("--verify/--no-verify", default=True, show_default=True, help="Run changed signatures in the LiteRT interpreter.")
@click.option("--dry-run", is_flag=True, help="Print the plan (with any failing checks) and write nothing.")
@click.option("--force", is_flag=True, help="Overwrite existing outputs (never an input, never through a symlink).")
@click.option("--accept-link-failures", is_flag=True,
              help="Write a drafter that fails link checks (with a warning); never one whose KV inputs the base lacks.")
@click.option("--bench", "with_bench", is_flag=True, help="Then measure the written container with the LiteRT-LM engine (as `bench`).")
@bench_options("With --bench: ")
@click.option("--hash-input", is_flag=True, help="Also hash the whole input file (recorded in the dumps and the JSON).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan and result as JSON.")
@weights_dir_option
def command(model, output, drafter, base, signature_name, recipe, config, dump, no_dump, dtype, verify, dry_run, force,
            accept_link_failures, with_bench, prompts_file, max_tokens, repeats, backend, chat_template, hash_input,
            as_json):
    """Re-link the hidden MTP drafter or heads of MODEL into the execution graph."""
    if with_bench and dry_run:
        raise UsageError("--bench measures the file restore writes; it cannot be combined with --dry-run")
    if no_dump and dump:
        raise UsageError(f"--dump {dump} and --no-dump contradict each other; give one")
    planned: list[RestoreResult] = []

    def on_plan(p: RestoreResult) -> None:
        planned.append(p)
        if not as_json:
            _print_plan(p)

    try:
        with byte_progress("dumping re-linked weights", total=0, enabled=not as_json) as advance:
            result = restore(model, output, drafter=drafter, base=base, recipe=recipe, signature_name=signature_name,
                             dry_run=dry_run, verify=verify, dump=None if no_dump else dump or "auto", dtype=dtype,
                             force=force, accept_link_failures=accept_link_failures, progress=advance, on_plan=on_plan,
                             hash_input=hash_input, config=config)
    except NothingToRestore as exc:
        if not as_json:
            raise
        print_json({"file": model, "status": "nothing-hidden", "plan": [], "message": str(exc)})
        raise SystemExit(exc.exit_code) from None
    except SurgeryError:
        if dry_run and as_json and planned:  # a refused plan is still printed, then the error
            print_json(planned[0].to_json())
        raise
    for stale in result.removed_stale or []:
        status_line(f"removed {stale}, a temporary file left by an earlier run that was killed")
    if result.status == "nothing-to-do":
        if as_json:
            print_json(result.to_json())
        else:
            status_line(result.message, err=False)
        return
    if with_bench:
        result = dataclasses.replace(result, bench=run_bench(
            result.output, prompts_file=prompts_file, max_tokens=max_tokens, repeats=repeats, backend=backend,
            chat_template=chat_template, quiet=as_json))
    if as_json:
        print_json(result.to_json())
    elif result.status == "restored":
        console = stdout_console()
        for note in result.binding or []:
            console.print(text(f"  {note}"))
        for r in result.verify or []:
            console.print(text(f"  verify {r.label} '{r.signature}': {'ok' if r.ok else 'FAILED'} — {r.detail}"))
        dumps = ", ".join(result.dumps or [])
        console.print(text("wrote ", "green") + text(f"{result.output}" + (
            f" and {dumps} ({result.relinked_tensors} re-linked tensors)" if dumps else "")))
        if result.input_sha256:
            console.print(text(f"  input sha256 {result.input_sha256}"))
        if result.bench is not None:
            render_bench(console, result.bench)
    if result.bench is not None and not result.bench.greedy_identical:
        raise SystemExit(1)
