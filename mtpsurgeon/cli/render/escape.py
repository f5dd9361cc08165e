"""The one escape helper for strings that came from a model file (or any input).

Names, ``model_type`` values and metadata are untrusted: they may carry rich
markup (``[/]``, ``[link=...]``) or terminal control sequences (ANSI ``ESC[``,
carriage returns, bidi overrides). Every such string goes through
:func:`plain` before it reaches a terminal. Views never interpolate such a
string into rich markup (rich's own ``escape`` is not lossless and ``:name:``
would still become an emoji): they build :class:`rich.text.Text` with
:func:`text` instead.
"""
from __future__ import annotations

import unicodedata
from typing import Any

from rich.text import Text


def _visible(ch: str) -> str:
    if ch in "\t":
        return " "
    cat = unicodedata.category(ch)
    if cat in ("Cc", "Cf", "Cs", "Co", "Cn") or cat in ("Zl", "Zp"):
        code = ord(ch)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return ch


def plain(value: Any) -> str:
    """``value`` as text with every control/format character shown as ``\\xNN`` (never emitted raw)."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(_visible(ch) for ch in text)


def text(value: Any, style: str = "") -> Text:
    """``value`` as a rich Text: shown literally (no markup, no emoji codes), controls made visible."""
    return Text(plain(value), style=style)


def plain_tree(data: Any) -> Any:
    """A copy of a JSON-like tree with every string passed through :func:`plain` (keys too)."""
    if isinstance(data, str):
        return plain(data)
    if isinstance(data, dict):
        return {plain_tree(k): plain_tree(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [plain_tree(v) for v in data]
    return data
