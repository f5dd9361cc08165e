"""The documentation holds together: relative links and #anchors resolve, every shown command parses and
names files that exist, every verb option is documented, the README stays short, and the docs'
command examples run on the fixtures."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

import mdkit
from conftest import REPO
from mtpsurgeon.cli.main import VERBS, cli

PAGES = mdkit.doc_pages()
#: verbs whose examples need the LiteRT-LM engine and minutes (also tune --search, --bench): parsed here; the
#: engine runs are tests/test_bench.py's, tests/test_tune.py's and the README walkthrough's
ENGINE = {"bench"}


def page_id(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_slugs_follow_github():
    assert mdkit.slug("The `--json` schema (version 1)") == "the---json-schema-version-1"
    assert mdkit.slug("Round trip: drafter → extract --names hf → build-drafter (2026-12-07)") == \
        "round-trip-drafter--extract---names-hf--build-drafter-2026-12-07"
    assert mdkit.slug("Does my package have a drafter, and will MTP work on CPU?") == \
        "does-my-package-have-a-drafter-and-will-mtp-work-on-cpu"
    assert mdkit.slug("bench: how MTP is measured") == "bench-how-mtp-is-measured"


def test_pages_exist():
    names = {p.name for p in PAGES}
    assert {"README.md", "cli.md", "python.md", "how-it-works.md", "benchmarks.md", "architecture.md", "fixtures.md",
            "limitations.md", "recipes.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_relative_links_and_anchors_resolve(page):
    links = mdkit.relative_links(page)
    broken = []
    for link in links:
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        if not path.exists():
            broken.append(f"{link}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in mdkit.anchors(path):
            broken.append(f"{link}: no heading with that anchor in {path.name}")
        elif path.is_relative_to(REPO / "docs" / "pending"):
            broken.append(f"{link}: points into docs/pending/ (drafts to be folded, then removed)")
    assert not broken, broken


def test_readme_links_into_every_page():
    linked = {link.partition("#")[0] for link in mdkit.relative_links(REPO / "README.md")}
    pages = {f"docs/{p.name}" for p in PAGES if p.parent.name == "docs"}
    assert pages <= linked, pages - linked


def test_readme_is_short():
    assert len((REPO / "README.md").read_text().splitlines()) <= 250


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_shown_commands_parse_and_name_existing_files(page):
    """Every command line of every bash block: a verb that exists, options it takes, fixtures that exist."""
    import shlex

    seen = 0
    for block in mdkit.blocks(page.read_text(), "bash") + mdkit.blocks(page.read_text(), "sh"):
        for line in mdkit.shell_lines(block):
            args = shlex.split(line, comments=True)
            seen += 1
            if args[0] == "mtpsurgeon":
                command = cli.get_command(click.Context(cli), args[1])
                assert command is not None, line
                with command.make_context(args[1], args[2:]):  # click.UsageError on an option it does not take
                    pass
            elif args[0] in ("python", "python3", "bash"):
                script = next((a for a in args[1:] if not a.startswith("-")), "")
                if args[1:3] == ["-m", "tests.fuzz"]:
                    script = "tests/fuzz.py"
                elif args[1] == "-m":
                    continue  # python -m venv / pytest: the set-up lines
                assert (REPO / script).is_file(), line
            inputs = [a for a in args if a.startswith("fixtures/")]
            assert all((REPO / a).exists() for a in inputs), line
    if page.name in ("README.md", "cli.md", "recipes.md"):
        assert seen >= 4


def test_every_option_is_documented_in_cli_md():
    cli_md = REPO / "docs" / "cli.md"
    missing = []
    for verb in VERBS:
        text = mdkit.section(cli_md, verb)
        command = cli.get_command(click.Context(cli), verb)
        for param in command.params:
            if isinstance(param, click.Option):
                for opt in param.opts + param.secondary_opts:
                    if f"`{opt}`" not in text:
                        missing.append(f"{verb} {opt}")
    assert not missing, missing


def needs_engine(args: list[str]) -> bool:
    return args[1] in ENGINE or "--search" in args or "--bench" in args


def _runnable_blocks():
    for page in PAGES:
        if page.name == "README.md":
            continue  # the README's tasks run in tests/test_readme_walkthrough.py
        for i, block in enumerate(mdkit.blocks(page.read_text(), "bash")):
            if any(not needs_engine(c) for c in mdkit.commands(block)):
                yield pytest.param(page, block, id=f"{page.name}-{i}")


@pytest.mark.parametrize("page,block", list(_runnable_blocks()))
def test_docs_command_examples_run(page, block, tmp_path):
    """Each bash block of the docs runs as shown, in order, in a folder where fixtures/ is the repository's
    (commands that need the engine are only parsed, above)."""
    (tmp_path / "fixtures").symlink_to(REPO / "fixtures")
    for args in mdkit.commands(block):
        if needs_engine(args):
            continue
        p = subprocess.run([sys.executable, "-m", "mtpsurgeon", *args[1:]], cwd=tmp_path, capture_output=True, text=True,
                           timeout=600)
        assert p.returncode == 0, (" ".join(args), p.stderr[-2000:])
