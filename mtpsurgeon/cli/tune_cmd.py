"""`mtpsurgeon tune MODEL --draft-steps G | --search A-B`: change how many tokens MTP drafts."""
from __future__ import annotations

from pathlib import Path

import click

from mtpsurgeon.cli.render.console import print_json, stderr_console, stdout_console
from mtpsurgeon.cli.input_options import weights_dir_option
from mtpsurgeon.errors import UsageError


def _default_out(model: str, tag: str) -> Path:
    p = Path(model)
    return p.with_name(f"{p.stem}-{tag}{p.suffix}")


def _prompts(path: str | None) -> list[str]:
    from mtpsurgeon.api.tune import DEFAULT_PROMPTS

    if path is None:
        return list(DEFAULT_PROMPTS)
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read prompts: {exc}") from None
    prompts = [l.strip() for l in lines if l.strip() and not l.startswith("#")]
    if not prompts:
        raise UsageError(f"{path}: no prompts (one per line; '#' starts a comment)")
    return prompts


@click.command("tune")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--draft-steps", "-g", type=int, help="Re-specialize verify so the engine drafts G tokens per cycle (G >= 1).")
@click.option("--search", "search", help="Build and measure every G in a range (1-4) or list (1,2,4); write the fastest.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Output (default: MODEL-gG.EXT / MODEL-tuned.EXT).")
@click.option("--prompts", type=click.Path(dir_okay=False), help="--search: prompts file, one per line.")
@click.option("--max-tokens", type=int, default=32, show_default=True, help="--search: tokens decoded per prompt.")
@click.option("--repeats", type=int, default=3, show_default=True, help="--search: passes over the prompts per measurement.")
@click.option("--force", is_flag=True, help="Overwrite the output.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@weights_dir_option
def command(model, draft_steps, search, output, prompts, max_tokens, repeats, force, as_json):
    """Change how many tokens the MTP drafter proposes per cycle (the length of `verify`)."""
    if (draft_steps is None) == (search is None):
        raise UsageError("tune: give exactly one of --draft-steps G or --search A-B")
    if draft_steps is not None:
        from mtpsurgeon.cli.render.tune_view import render_tune
        from mtpsurgeon.api.tune import tune as tune_draft_steps

        out = Path(output) if output else _default_out(model, f"g{draft_steps}")
        result = tune_draft_steps(model, draft_steps, out, force=force)
        if as_json:
            print_json({"file": model, **result.to_json()})
        else:
            render_tune(stdout_console(), model, result)
        return
    from mtpsurgeon.cli.render.tune_view import render_search
    from mtpsurgeon.api.tune import parse_steps
    from mtpsurgeon.api.tune import tune_search as search_draft_steps

    steps = parse_steps(search)
    out = Path(output) if output else _default_out(model, "tuned")
    err = stderr_console()
    with err.status("tuning", spinner="dots") if (err.is_terminal and not as_json) else _nullcontext() as status:
        def progress(msg: str) -> None:
            if status is not None:
                status.update(msg)
        result = search_draft_steps(model, steps, out, _prompts(prompts), force=force, max_tokens=max_tokens,
                                    repeats=repeats, progress=progress)
    if as_json:
        print_json({"file": model, **result.to_json()})
    else:
        render_search(stdout_console(), model, result)


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
