"""The measurement options shared by `bench` and every verb with `--bench` (restore, later build-drafter)."""
from __future__ import annotations

from typing import Any, Callable

import click

from mtpsurgeon.api import bench
from mtpsurgeon.api.bench import BACKENDS, read_prompts
from mtpsurgeon.api.results import BenchResult
from mtpsurgeon.cli.render.progress import status_lines

_OPTIONS = (
    click.option("--prompts", "prompts_file", type=click.Path(dir_okay=False),
                 help="Prompts, one per line ('#' comments); default: four built-in everyday prompts."),
    click.option("--max-tokens", type=click.IntRange(min=1), default=64, show_default=True, help="Tokens to decode per prompt."),
    click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True, help="Engine runs per mode (MTP off, on)."),
    click.option("--backend", type=click.Choice(BACKENDS), default="cpu", show_default=True, help="LiteRT-LM backend."),
    click.option("--chat-template", is_flag=True, help="Wrap each prompt in the model's prompt template."),
)


def bench_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add --prompts/--max-tokens/--repeats/--backend/--chat-template to a click command."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def run_bench(model: str, *, prompts_file: str | None, max_tokens: int, repeats: int, backend: str,
              chat_template: bool, quiet: bool) -> BenchResult:
    """Measure ``model`` with the shared options, showing which run is going on a terminal."""
    prompts = read_prompts(prompts_file) if prompts_file else None
    with status_lines(enabled=not quiet) as say:
        return bench(model, prompts=prompts, max_tokens=max_tokens, repeats=repeats, backend=backend,
                     chat_template=chat_template, progress=say)
