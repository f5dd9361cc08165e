"""`mtpsurgeon build-drafter CHECKPOINT --base MODEL.litertlm -o OUT`: a drafter from a HF assistant checkpoint."""
from __future__ import annotations

import contextlib

import click

from mtpsurgeon.cli.render.console import print_json, stderr_console, stdout_console
from mtpsurgeon.cli.render.escape import text
from mtpsurgeon.errors import UsageError
from mtpsurgeon.api.build_drafter import MODES, BuildRefused, build_drafter
from mtpsurgeon.cli.bench_options import bench_options, run_bench
from mtpsurgeon.cli.render.bench_view import render_bench
from mtpsurgeon.cli.input_options import weights_dir_option

_KINDS = {"sliding": "sliding_attention", "full": "full_attention"}


def _kv_layers(value: str | None) -> dict[str, int] | None:
    if not value:
        return None
    out = {}
    for part in value.split(","):
        kind, _, layer = part.partition("=")
        if kind.strip() not in _KINDS or not layer.strip().isdigit():
            raise UsageError(f"--kv-layers {value}: expected e.g. 'sliding=22,full=23'")
        out[_KINDS[kind.strip()]] = int(layer)
    return out


@click.command("build-drafter")
@click.argument("checkpoint", type=click.Path())
@click.option("--base", required=True, type=click.Path(dir_okay=False),
              help="Base model (.litertlm, or a prefill/decode .tflite) whose KV caches the drafter reads.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="OUT.litertlm: the base with the drafter grafted in; OUT.tflite: the drafter alone.")
@click.option("--config", type=click.Path(dir_okay=False), help="config.json (required for a single .safetensors file).")
@click.option("--quant", type=click.Choice(MODES), default="f32", show_default=True,
              help="Weights: float32, INT8 per channel, INT4 per channel, INT4 blockwise-32 (FLOAT16 scales).")
@click.option("--kv-layers", help="Base KV layers to read, e.g. 'sliding=22,full=23' (default: the last of each head_dim).")
@click.option("--no-rope", is_flag=True, help="Do not rotate q (for drafters trained without RoPE, e.g. the test fixtures).")
@click.option("--draft-steps", "-g", type=int,
              help="A base exported without MTP gets a 'verify' over G+1 tokens (default 3 draft steps).")
@click.option("--replace", is_flag=True, help="Replace the base's existing drafter section.")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Run the drafter in the LiteRT interpreter with the base's KV shapes/dtypes before writing.")
@click.option("--force", is_flag=True, help="Overwrite an existing output (never an input).")
@click.option("--bench", "with_bench", is_flag=True,
              help="Then measure the written container with the LiteRT-LM engine (as `bench`).")
@bench_options("With --bench: ")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@weights_dir_option
def command(checkpoint, base, output, config, quant, kv_layers, no_rope, draft_steps, replace, verify, force, with_bench,
            prompts_file, max_tokens, repeats, backend, chat_template, as_json):
    """Build a LiteRT-LM drafter from a Hugging Face gemma4_assistant CHECKPOINT and graft it into --base."""
    if with_bench and not str(output).endswith(".litertlm"):
        raise UsageError("--bench runs the LiteRT-LM engine on a container: write -o OUT.litertlm")
    err = stderr_console()
    live = err.is_terminal and not as_json
    status = err.status("building the drafter") if live else contextlib.nullcontext()
    try:
        with status as s:
            result = build_drafter(checkpoint, base, output, config=config, quant=quant, kv_layers=_kv_layers(kv_layers),
                                   rope=not no_rope, replace=replace, verify=verify, force=force,
                                   draft_steps=draft_steps,
                                   on_stage=(lambda stage: s.update(f"{stage} the drafter")) if live else None)
    except BuildRefused as exc:
        if as_json:  # the failing checks, machine-readable, then the usual one-line error
            print_json({"checkpoint": checkpoint, "base": base, "output": output, "refused": True,
                        "failing_checks": [c.to_json() for c in exc.checks]})
        raise
    bench = None
    if with_bench:
        bench = run_bench(result.output, prompts_file=prompts_file, max_tokens=max_tokens, repeats=repeats,
                          backend=backend, chat_template=chat_template, quiet=as_json)
    if as_json:
        print_json({**result.to_json(), "bench": bench.to_json() if bench is not None else None})
        _bench_exit(bench)
        return
    console = stdout_console()
    if result.mtp_added is not None:
        from mtpsurgeon.cli.render.enable_view import render_enable

        render_enable(console, result.mtp_added)
    console.print(text(f"built a {result.blocks}-block drafter ({result.parameters:,} parameters, "
                       f"--quant {quant}, {result.drafter_bytes:,} bytes)", "bold"))
    console.print(text(f"  {sum(c['passed'] for c in result.checks)}/{len(result.checks)} link checks passed"))
    for note in result.notes:
        console.print(text(f"  note: {note}"))
    for r in result.verify:
        console.print(text(f"  verify '{r.signature}': {'ok' if r.ok else 'FAILED'} — {r.detail}"))
    where = f" (section {result.section}, tf_lite_mtp_drafter)" if result.section is not None else ""
    console.print(text("wrote ", "green") + text(f"{result.output}{where}"))
    if bench is not None:
        render_bench(console, bench)
    _bench_exit(bench)


def _bench_exit(bench) -> None:
    """Speculative decoding that changes greedy output is a failure (exit 1), as in `bench`."""
    if bench is not None and not bench.greedy_identical:
        raise SystemExit(1)
