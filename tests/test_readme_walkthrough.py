"""The README's four tasks run as written, on the bundled fixtures, and print what the README shows.

Each task's bash blocks are read from the README itself (tests/mdkit.py) and run in order in a
fresh folder whose fixtures/ is the repository's; the python block of the transformers task runs
too. Task (c)'s first block also runs in tests/test_build_drafter_assistant.py, next to the
engine check of the same build.
"""
from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys

import pytest

import mdkit
from conftest import REPO

README = REPO / "README.md"
HAVE = "Does my package have a drafter, and will MTP work on CPU?"
TRANSFORMERS = "Get the drafter into transformers or vLLM"
ADD = "Add a drafter to a package that has none"
FASTER = "Does MTP make decoding faster here, and at what draft length?"


def run_section(heading: str, cwd) -> list[tuple[list[str], str]]:
    """Run every mtpsurgeon command of the section's bash blocks; return (args, stdout) per command."""
    (cwd / "fixtures").symlink_to(REPO / "fixtures")
    outputs = []
    for block in mdkit.blocks(mdkit.section(README, heading), "bash"):
        for args in mdkit.commands(block):
            p = subprocess.run([sys.executable, "-m", "mtpsurgeon", *args[1:]], cwd=cwd, capture_output=True,
                               text=True, timeout=900, env={**__import__("os").environ, "COLUMNS": "200"})
            assert p.returncode == 0, (" ".join(args), p.stderr[-2000:])
            outputs.append((args, p.stdout))
    return outputs


def shown_output(heading: str) -> list[str]:
    """The sample output the README prints under the commands (its '#   ' comment lines), with their indent."""
    lines = []
    for block in mdkit.blocks(mdkit.section(README, heading), "bash"):
        lines += [line[1:].rstrip() for line in block.splitlines() if line.startswith("#  ")]
    return lines


def flat(text: str) -> str:
    """Text without rich's box drawing and with all whitespace runs made one space (wrapping differs)."""
    return " ".join(re.sub(r"[│╭╮╰╯─┃┏┓┗┛━┡┩╇┳┻└┘┴┬┼]", " ", text).split())


def assert_shown(heading: str, outputs, measured: bool = False) -> None:
    """Every sample line (up to an elision '...') is in what the commands printed.

    ``measured``: the figures are timings, so any number matches a number, and the verdict sentences
    (lines starting 'MTP ' and their deeper-indented continuations), which depend on the machine, are
    not compared.
    """
    printed = flat("\n".join(out for _, out in outputs))
    skipping_indent = None
    for line in shown_output(heading):
        indent = len(line) - len(line.lstrip())
        if skipping_indent is not None and indent > skipping_indent:
            continue
        skipping_indent = None
        if measured and line.lstrip().startswith("MTP "):
            skipping_indent = indent
            continue
        fragment = line.split("...")[0].strip().rstrip(",:;")
        for part in re.split(r"\s+—\s+", fragment):
            pattern = re.escape(flat(part))
            if measured:
                pattern = re.sub(r"\d[\d,]*(?:\\\.\d+)?", r"[\\d.,]+", pattern)
            assert re.search(pattern, printed), (heading, part)


def test_task_does_my_package_have_a_drafter(tmp_path):
    outputs = run_section(HAVE, tmp_path)
    assert [a[1] for a, _ in outputs] == ["inspect", "inspect", "restore"]
    assert "MTP: READY" in outputs[0][1] and "MTP: HIDDEN" in outputs[1][1]
    assert (tmp_path / "gemma4-mini-mtp.litertlm").exists()
    assert_shown(HAVE, outputs)


def test_task_get_the_drafter_into_transformers(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    outputs = run_section(TRANSFORMERS, tmp_path)
    assert [a[1] for a, _ in outputs] == ["extract"]
    assert {p.name for p in (tmp_path / "assistant").iterdir()} >= {"model.safetensors", "config.json", "README.md"}
    assert_shown(TRANSFORMERS, outputs)
    (block,) = mdkit.blocks(mdkit.section(README, TRANSFORMERS), "python")
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {})  # noqa: S102 - our own README
    expected = [m.group(1).strip() for m in re.finditer(r"print\(.*\)\s+# (.*)", block)]
    assert out.getvalue().splitlines() == expected


def test_task_add_a_drafter(tmp_path):
    outputs = run_section(ADD, tmp_path)
    assert [a[1] for a, _ in outputs] == ["inspect", "build-drafter", "inspect", "inspect", "build-drafter"]
    assert "MTP: READY" in outputs[2][1]
    assert (tmp_path / "gemma4-mini-nomtp-mtp.litertlm").exists()
    assert_shown(ADD, outputs)


def test_task_does_mtp_make_decoding_faster(tmp_path):
    pytest.importorskip("litert_lm")
    outputs = run_section(FASTER, tmp_path)
    assert [a[1] for a, _ in outputs] == ["bench", "tune"]
    assert "greedy text with MTP on vs off: identical" in outputs[0][1]
    assert "break-even success rate" in outputs[0][1]
    assert_shown(FASTER, outputs, measured=True)
