"""The `mtpsurgeon` click group and its error handling.

Expected failures (MtpSurgeonError) print one line naming the file and the
problem and exit non-zero (2 for bad input); a traceback only with --debug.
"""
from __future__ import annotations

import errno
import os
import signal
import sys

import click

from mtpsurgeon import __version__
from mtpsurgeon.cli.render.escape import plain
from mtpsurgeon.errors import MtpSurgeonError


class SurgeonGroup(click.Group):
    """Runs a verb and turns exceptions into one-line errors."""

    def invoke(self, ctx: click.Context):
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a closed or full stdout fails here, not at interpreter exit
            return result
        except MtpSurgeonError as exc:
            self._fail(ctx, str(exc), exc.exit_code)
        except KeyboardInterrupt:
            self._fail(ctx, "interrupted", 130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except OSError as exc:
            self._fail(ctx, _os_error_line(exc), 1)
        except Exception as exc:  # an unexpected bug: still one line unless --debug
            self._fail(ctx, f"internal error: {type(exc).__name__}: {exc} (run with --debug for a traceback)", 1)

    @staticmethod
    def _fail(ctx: click.Context, message: str, code: int) -> None:
        if (ctx.obj or {}).get("debug"):
            raise
        _silence_stdout()
        try:
            click.echo(f"mtpsurgeon: error: {plain(message)}", err=True)
        except OSError:
            pass  # stderr is gone too: the exit code still tells
        ctx.exit(code)


def _os_error_line(exc: OSError) -> str:
    """One line for an OS error that no writer mapped: stdout closed/full, or a file named by the OS."""
    if isinstance(exc, BrokenPipeError) or exc.errno == errno.EPIPE:
        return "standard output was closed before everything was written (broken pipe)"
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return f"cannot write to standard output: {reason}"
    return f"{os.fsdecode(exc.filename)}: {reason}"


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    try:
        if sys.stdout is sys.__stdout__:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, sys.stdout.fileno())
            os.close(null)
    except (OSError, ValueError, AttributeError):
        pass


@click.group(cls=SurgeonGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mtpsurgeon")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Find, extract and restore the hidden MTP drafter in LiteRT models.

    \b
      mtpsurgeon inspect MODEL     what is in the file, what is orphaned, what is MTP
      mtpsurgeon extract MODEL     write MTP weights / drafters out (safetensors, .tflite)
      mtpsurgeon restore MODEL     re-link hidden MTP weights; write a patched model
      mtpsurgeon bench MODEL       does MTP speculative decoding pay off here? (LiteRT-LM engine)
    """
    ctx.ensure_object(dict)["debug"] = debug


def _register() -> None:
    """Each verb lives in its own module (imported here, not at package import)."""
    from mtpsurgeon.cli import bench_cmd, build_drafter_cmd, extract_cmd, inspect_cmd, restore_cmd, tune_cmd

    cli.add_command(inspect_cmd.inspect)
    cli.add_command(extract_cmd.command)
    cli.add_command(restore_cmd.command)
    cli.add_command(bench_cmd.command)
    cli.add_command(tune_cmd.command)
    cli.add_command(build_drafter_cmd.command)


_register()


def _terminate(signum, frame) -> None:
    """SIGTERM unwinds like Ctrl-C, so temporary outputs are removed on the way out."""
    raise KeyboardInterrupt


def main() -> None:
    """Console-script entry point."""
    signal.signal(signal.SIGTERM, _terminate)
    cli(prog_name="mtpsurgeon")


if __name__ == "__main__":
    sys.exit(main())
