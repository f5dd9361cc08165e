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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.text import Text


def _visible(ch: str) -> str:
    if ch in "\t":
        return " "
    cat = unicodedata.category(ch)
    if cat in ("Cc", "Cf", "Cs", "Co", "Cn") or cat in ("Zl", "Zp"):
        code = ord(ch)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return ch


#: Longest file-derived string a view shows; a corrupt length can make a "name" megabytes long.
DISPLAY_LIMIT = 400


def plain(value: Any, limit: int | None = None) -> str:
    """``value`` as text with every control/format character shown as ``\\xNN`` (never emitted raw).

    With ``limit``, a longer string is cut and says how much was left out.
    """
    text = str(value)
    cut = ""
    if limit is not None and len(text) > limit:
        text, cut = text[:limit], f"… (+{len(text) - limit} characters)"
    if not text.isprintable():
        text = "".join(_visible(ch) for ch in text)
    return text + cut


def text(value: Any, style: str = "") -> Text:
    """``value`` as a rich Text: shown literally (no markup, no emoji codes), controls made visible."""
    from rich.text import Text  # rich loads only for views that draw with it

    return Text(plain(value), style=style)


def is_row_stream(data: Any) -> bool:
    """True for a sized, sliceable sequence of rows made on demand (the API's long listings), not a list."""
    return (hasattr(data, "__iter__") and hasattr(data, "__len__") and hasattr(data, "__getitem__")
            and not isinstance(data, (str, bytes, dict, list, tuple)))


class PlainRows:
    """A lazily made row sequence whose rows come out through :func:`plain_tree`, one at a time."""

    def __init__(self, rows: Any, limit: int | None = DISPLAY_LIMIT) -> None:
        self.rows = rows
        self.limit = limit

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return (plain_tree(r, self.limit) for r in self.rows)

    def __getitem__(self, index: Any) -> Any:
        return plain_tree(self.rows[index], self.limit)


def plain_tree(data: Any, limit: int | None = DISPLAY_LIMIT) -> Any:
    """A copy of a JSON-like tree with every string passed through :func:`plain` (keys too).

    A lazily made row sequence stays lazy: its rows are made safe as they are read.
    """
    if isinstance(data, str):
        return plain(data, limit)
    if isinstance(data, dict):
        return {plain_tree(k, limit): plain_tree(v, limit) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [plain_tree(v, limit) for v in data]
    if is_row_stream(data) and not isinstance(data, PlainRows):
        return PlainRows(data, limit)
    return data
