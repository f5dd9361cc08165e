"""`mtpsurgeon enable-mtp BASE -o OUT [--draft-steps G]`: add `verify` and `activations` to a base without MTP."""
from __future__ import annotations

import click

from mtpsurgeon.cli.render.console import print_json, stderr_console, stdout_console
from mtpsurgeon.cli.input_options import weights_dir_option
from mtpsurgeon.cli.render.escape import text


@click.command("enable-mtp")
@click.argument("base", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Where to write the result.")
@click.option("--draft-steps", "-g", type=int, default=3, show_default=True,
              help="Tokens the drafter proposes per cycle: 'verify' takes G+1.")
@click.option("--unbatched", is_flag=True,
              help="Write 'verify' as G+1 decode calls even where the batched one-pass construction is proven.")
@click.option("--force", is_flag=True, help="Overwrite an existing output (never an input).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@weights_dir_option
def command(base, output, draft_steps, unbatched, force, as_json):
    """Add decode's `activations` and a `verify` signature to a BASE exported without MTP (no drafter added)."""
    from mtpsurgeon.api.enable_mtp import enable_mtp
    from mtpsurgeon.cli.render.enable_view import render_enable

    err = stderr_console()
    with err.status("adding verify and activations") if (err.is_terminal and not as_json) else _Null():
        result = enable_mtp(base, output, draft_steps=draft_steps, force=force, batched=not unbatched)
    if as_json:
        print_json(result.to_json())
        return
    console = stdout_console()
    render_enable(console, result)
    console.print(text("wrote ", "green") + text(result.output))


class _Null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
