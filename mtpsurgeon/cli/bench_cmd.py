"""`mtpsurgeon bench MODEL.litertlm`: does MTP speculative decoding pay off on this machine?"""
from __future__ import annotations

import click

from mtpsurgeon.cli.bench_options import bench_options, run_bench
from mtpsurgeon.cli.render.bench_view import render_bench
from mtpsurgeon.cli.render.console import print_json, stdout_console
from mtpsurgeon.cli.input_options import weights_dir_option


@click.command("bench")
@click.argument("model", type=click.Path(dir_okay=False))
@bench_options()
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for the engine and the cost model (default: the engine's own default, 4).")
@click.option("--per-prompt", is_flag=True, help="Also run each prompt alone: its success rate and speed-up.")
@click.option("--no-cost", is_flag=True,
              help="Skip the cost model (timing decode, verify and a draft step in the LiteRT interpreter).")
@click.option("--json", "as_json", is_flag=True, help="Print every run and the totals as JSON.")
@weights_dir_option
def command(model: str, prompts_file: str | None, max_tokens: int, repeats: int, backend: str, chat_template: bool,
            threads: int | None, per_prompt: bool, no_cost: bool, as_json: bool) -> None:
    """Run the LiteRT-LM engine with speculative decoding off and on; compare speed and output.

    Beside MTP off/on, the cost model times the container's own model calls
    in the LiteRT interpreter and says at which success rate MTP pays off.
    Exit 1 when the engine (mtpsurgeon[engine]) is missing, the model has no
    drafter, or MTP changed the greedy text.
    """
    result = run_bench(model, prompts_file=prompts_file, max_tokens=max_tokens, repeats=repeats, backend=backend,
                       chat_template=chat_template, quiet=as_json, threads=threads, per_prompt=per_prompt,
                       cost=not no_cost)
    if as_json:
        print_json(result.to_json())
    else:
        render_bench(stdout_console(), result)
    if not result.greedy_identical:
        raise SystemExit(1)
