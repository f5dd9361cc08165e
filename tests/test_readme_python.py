"""The README's "Use it from Python" code blocks run verbatim, in order, and print what they say."""
from __future__ import annotations

import contextlib
import io
import re

from conftest import REPO


def python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Use it from Python", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_python_examples_run_as_written(tmp_path, monkeypatch):
    (tmp_path / "fixtures").symlink_to(REPO / "fixtures")
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks()
    assert len(blocks) == 3
    namespace: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in blocks:
            exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    printed = out.getvalue().splitlines()
    # Each commented print states its output; the comment's text must be what was printed.
    expected = [m.group(1).strip() for block in blocks for m in re.finditer(r"print\(.*\)\s+# (.*)", block)]
    checked = [(e, p) for e, p in zip(expected, printed) if not e.startswith(("e.g.", "the same"))]
    assert len(printed) == len(expected) and len(checked) >= 8
    for e, p in checked:
        assert p.startswith(e.split("  (")[0]), (e, p)
    assert (tmp_path / "fixed.litertlm").exists() and (tmp_path / "drafter" / "config.json").exists()
