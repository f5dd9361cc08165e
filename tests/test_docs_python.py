"""docs/python.md's code blocks run verbatim, in order, and print what their comments say."""
from __future__ import annotations

import contextlib
import io
import re

import mdkit
from conftest import REPO


def test_python_examples_run_as_written(tmp_path, monkeypatch):
    (tmp_path / "fixtures").symlink_to(REPO / "fixtures")
    monkeypatch.chdir(tmp_path)
    blocks = mdkit.blocks((REPO / "docs" / "python.md").read_text(), "python")
    assert len(blocks) >= 4
    namespace: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for block in blocks:
            exec(compile(block, "docs/python.md", "exec"), namespace)  # noqa: S102 - our own docs
    printed = out.getvalue().splitlines()
    # Each commented print states its output; the comment's text must be what was printed.
    expected = [m.group(1).strip() for block in blocks for m in re.finditer(r"print\(.*\)\s+# (.*)", block)]
    checked = [(e, p) for e, p in zip(expected, printed) if not e.startswith(("e.g.", "the same"))]
    assert len(printed) == len(expected) and len(checked) >= 12
    for e, p in checked:
        assert p.startswith(e.split("  (")[0]), (e, p)
    assert (tmp_path / "fixed.litertlm").exists() and (tmp_path / "drafter" / "config.json").exists()
    assert (tmp_path / "with-mtp.litertlm").exists() and (tmp_path / "g1.litertlm").exists()
