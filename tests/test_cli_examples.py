"""Every verb's --help ends with examples, and every example is a command line that parses and names real fixtures."""
from __future__ import annotations

import shlex
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from conftest import REPO
from mtpsurgeon.cli.examples import EXAMPLES
from mtpsurgeon.cli.main import VERBS, cli

#: examples cheap enough to run on every test run (the others are parsed; their verbs have their own tests)
RUN = {"inspect", "extract", "restore", "enable-mtp"}


def example_lines(verb: str) -> list[list[str]]:
    return [shlex.split(command) for _, command in EXAMPLES[verb]]


def test_every_verb_has_examples():
    assert set(EXAMPLES) == {*VERBS, "mtpsurgeon"}
    assert all(1 <= len(examples) <= 2 for examples in EXAMPLES.values())


@pytest.mark.parametrize("verb", [*VERBS, "mtpsurgeon"])
def test_help_ends_with_its_examples(verb):
    args = ["--help"] if verb == "mtpsurgeon" else [verb, "--help"]
    result = CliRunner().invoke(cli, args, prog_name="mtpsurgeon")
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.output.splitlines() if line.strip()]
    commands = [f"$ {command}" for _, command in EXAMPLES[verb]]
    # the help's last lines are the examples, unwrapped (click's \b), after an "Examples:" heading
    assert lines[-1] == commands[-1]
    assert lines[-2 * len(commands) - 1] == "Examples:"
    assert [line for line in lines if line.startswith("$ ")] == commands


@pytest.mark.parametrize("verb", [*VERBS, "mtpsurgeon"])
def test_examples_parse_and_name_existing_fixtures(verb):
    for args in example_lines(verb):
        assert args[0] == "mtpsurgeon" and (verb == "mtpsurgeon" or args[1] == verb), args
        command = cli.get_command(click.Context(cli), args[1])
        with command.make_context(args[1], args[2:]) as ctx:  # raises click.UsageError on a bad option or value
            assert ctx.params
        inputs = [a for a in args if a.startswith("fixtures/")]
        assert inputs and all((REPO / a).exists() for a in inputs), args


@pytest.mark.parametrize("verb", sorted(RUN))
def test_cheap_examples_run_on_the_fixtures(verb, tmp_path):
    (tmp_path / "fixtures").symlink_to(REPO / "fixtures")
    for args in example_lines(verb):
        if "--check-parity" in args:  # needs torch: covered by tests/test_parity.py
            args = [a for a in args if a != "--check-parity"]
        p = subprocess.run([sys.executable, "-m", "mtpsurgeon", *args[1:]], cwd=tmp_path, capture_output=True,
                           text=True, timeout=300)
        assert p.returncode == 0, (args, p.stderr)
        assert p.stdout.strip(), args
