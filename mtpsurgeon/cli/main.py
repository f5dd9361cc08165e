"""The `mtpsurgeon` click group and its error handling.

Expected failures (MtpSurgeonError) print one line naming the file and the
problem and exit non-zero (2 for bad input); a traceback only with --debug.
"""
from __future__ import annotations

import errno
import importlib
import os
import signal
import sys

import click

from mtpsurgeon import __version__
from mtpsurgeon.cli.examples import epilog
from mtpsurgeon.errors import MtpSurgeonError


#: verb -> (module defining it, attribute, one-line help). Modules load only when their verb runs,
#: so `mtpsurgeon --version` / `--help` start without numpy, flatbuffers, rich or the LiteRT schema.
VERBS: dict[str, tuple[str, str, str]] = {
    "inspect": ("mtpsurgeon.cli.inspect_cmd", "inspect", "Show what is in MODEL, what is orphaned and where MTP is."),
    "extract": ("mtpsurgeon.cli.extract_cmd", "command", "Write MODEL's MTP weights (or a selection) as safetensors and standalone models."),
    "restore": ("mtpsurgeon.cli.restore_cmd", "command", "Re-link the hidden MTP drafter or heads of MODEL into the execution graph."),
    "bench": ("mtpsurgeon.cli.bench_cmd", "command", "Run the LiteRT-LM engine with speculative decoding off and on; compare."),
    "tune": ("mtpsurgeon.cli.tune_cmd", "command", "Change how many tokens the MTP drafter proposes per cycle."),
    "build-drafter": ("mtpsurgeon.cli.build_drafter_cmd", "command",
                      "Build a LiteRT-LM drafter from a HF gemma4_assistant CHECKPOINT and graft it into --base."),
    "enable-mtp": ("mtpsurgeon.cli.enable_mtp_cmd", "command",
                   "Add decode's activations and a verify signature to a BASE exported without MTP."),
}


class SurgeonGroup(click.Group):
    """Runs a verb and turns exceptions into one-line errors; verbs are imported lazily."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(VERBS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in VERBS:
            return None
        module, attr, _ = VERBS[name]
        command = getattr(importlib.import_module(module), attr)
        command.epilog = epilog(name)  # `--help` ends with examples (cli/examples.py)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, short) for name, (_, _, short) in VERBS.items()])

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
        from mtpsurgeon.cli.render.escape import plain

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


@click.group(cls=SurgeonGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=epilog("mtpsurgeon"))
@click.version_option(__version__, prog_name="mtpsurgeon")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Find, extract, restore, build and measure the MTP drafter of Gemma 4 LiteRT models.

    MODEL is a .tflite or a .litertlm (LiteRT-LM container). Every command's --help ends with
    examples; the reference is docs/cli.md.
    """
    ctx.ensure_object(dict)["debug"] = debug


def _terminate(signum, frame) -> None:
    """SIGTERM unwinds like Ctrl-C, so temporary outputs are removed on the way out."""
    raise KeyboardInterrupt


def main() -> None:
    """Console-script entry point."""
    signal.signal(signal.SIGTERM, _terminate)
    cli(prog_name="mtpsurgeon")


if __name__ == "__main__":
    sys.exit(main())
