"""Reading the project's Markdown as the tests need it: sections, fenced blocks, commands, links, anchors.

The examples the tests run are taken from the Markdown itself (never copied into a test), so
what the reader sees is what runs.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

from conftest import REPO

FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```\s*$", re.S | re.M)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def doc_pages() -> list[Path]:
    """README.md and the docs/ pages (docs/pending/ holds other engineers' drafts, not pages)."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def section(path: Path, heading: str) -> str:
    """The text under the level-2 ``heading`` up to the next level-2 heading (KeyError if absent)."""
    text = path.read_text()
    marker = f"\n## {heading}\n"
    if marker not in "\n" + text:
        raise KeyError(f"{path.name} has no section '## {heading}'")
    return ("\n" + text).split(marker, 1)[1].split("\n## ", 1)[0]


def blocks(text: str, lang: str | None = None) -> list[str]:
    """The fenced code blocks of ``text`` (only those tagged ``lang`` when given)."""
    return [body for tag, body in FENCE.findall(text) if lang is None or tag == lang]


def shell_lines(block: str) -> list[str]:
    """The command lines of a bash block: comments dropped, backslash continuations joined."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def commands(block: str, program: str = "mtpsurgeon") -> list[list[str]]:
    """The ``program`` command lines of a bash block, split as the shell would (a trailing comment removed)."""
    out = []
    for line in shell_lines(block):
        args = shlex.split(line, comments=True)
        if args and args[0] == program:
            out.append(args)
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces to hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text stays, its target goes
    text = text.strip().lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def without_code(text: str) -> str:
    """``text`` with fenced blocks and inline code removed (links there are examples, not links)."""
    text = FENCE.sub("", text)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, with GitHub's -1, -2 suffixes for repeated headings."""
    seen: dict[str, int] = {}
    out = set()
    for line in FENCE.sub("", path.read_text()).splitlines():
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        out.add(base if n == 0 else f"{base}-{n}")
        seen[base] = n + 1
    return out


def relative_links(path: Path) -> list[str]:
    """Link targets in ``path`` that point inside the repository (no scheme, not mailto)."""
    targets = LINK.findall(without_code(path.read_text()))
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]
