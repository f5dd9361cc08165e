"""The measurement options shared by `bench` and every verb with `--bench` (restore, later build-drafter)."""
from __future__ import annotations

from typing import Any, Callable

import click

from mtpsurgeon.api import bench
from mtpsurgeon.api.bench import BACKENDS, read_prompts
from mtpsurgeon.api.results import BenchResult
from mtpsurgeon.cli.render.progress import status_lines

def bench_options(help_prefix: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add --prompts/--max-tokens/--repeats/--backend/--chat-template to a click command.

    ``help_prefix`` (e.g. "With --bench: ") marks them as belonging to a flag.
    """
    def h(text: str) -> str:
        return help_prefix + text if help_prefix else text[0].upper() + text[1:]

    options = (
        click.option("--prompts", "prompts_file", type=click.Path(dir_okay=False),
                     help=h("prompts, one per line ('#' comments); default: four built-in everyday prompts.")),
        click.option("--max-tokens", type=click.IntRange(min=1), default=64, show_default=True,
                     help=h("tokens to decode per prompt.")),
        click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True,
                     help=h("engine runs per mode (MTP off, on).")),
        click.option("--backend", type=click.Choice(BACKENDS), default="cpu", show_default=True,
                     help=h("LiteRT-LM backend.")),
        click.option("--chat-template", is_flag=True, help=h("wrap each prompt in the model's prompt template.")),
    )

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def run_bench(model: str, *, prompts_file: str | None, max_tokens: int, repeats: int, backend: str,
              chat_template: bool, quiet: bool, **more: Any) -> BenchResult:
    """Measure ``model`` with the shared options (``more``: bench's own, e.g. ``per_prompt``), showing progress.

    Verbs that bench what they wrote (restore, build-drafter ``--bench``) skip the cost model.
    """
    prompts = read_prompts(prompts_file) if prompts_file else None
    more.setdefault("cost", False)
    with status_lines(enabled=not quiet) as say:
        return bench(model, prompts=prompts, max_tokens=max_tokens, repeats=repeats, backend=backend,
                     chat_template=chat_template, progress=say, **more)
