"""Write JSON as it is produced: long listings are never held as one string or list.

Dicts and lists are written with two-space indentation like ``json.dump``;
a :class:`~mtpsurgeon.analysis.report_json.LazyRows` listing is written one
compact row per line, each row made just before it is written.
"""
from __future__ import annotations

import json
import sys
from typing import IO, Any

from mtpsurgeon.analysis.report_json import LazyRows

_dumps = json.JSONEncoder(ensure_ascii=True, separators=(", ", ": ")).encode


def write_json(data: Any, out: IO[str] | None = None, indent: int = 2) -> None:
    """Stream ``data`` as JSON to ``out`` (stdout by default), newline-terminated."""
    out = out or sys.stdout
    _write(data, out.write, indent, 0)
    out.write("\n")
    out.flush()


def _write(v: Any, write, indent: int, level: int) -> None:
    inner = "\n" + " " * (indent * (level + 1))
    close = "\n" + " " * (indent * level)
    if isinstance(v, dict):
        if not v:
            write("{}")
            return
        sep = "{"
        for k, x in v.items():
            write(sep + inner + _dumps(str(k)) + ": ")
            _write(x, write, indent, level + 1)
            sep = ","
        write(close + "}")
    elif isinstance(v, LazyRows):
        sep = "["
        for row in v:
            write(sep + inner + _dumps(row))
            sep = ","
        write("[]" if sep == "[" else close + "]")
    elif isinstance(v, (list, tuple)):
        if not v:
            write("[]")
            return
        sep = "["
        for x in v:
            write(sep + inner)
            _write(x, write, indent, level + 1)
            sep = ","
        write(close + "]")
    else:
        write(_dumps(v))
