"""Write JSON as it is produced: long listings are never held as one string or list.

Dicts and lists are written with two-space indentation like ``json.dump``;
a listing made on demand (the API's lazy rows, see
:func:`~mtpsurgeon.cli.render.escape.is_row_stream`) is written one compact
row per line, each row made just before it is written.
"""
from __future__ import annotations

import json
import sys
from typing import IO, Any

from mtpsurgeon.cli.render.escape import is_row_stream

_dumps = json.JSONEncoder(ensure_ascii=True, separators=(", ", ": ")).encode
_BATCH = 256  #: rows of a streamed listing written at once


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
    elif is_row_stream(v):
        sep, batch = "[", []
        for row in v:
            batch.append(sep + inner + _dumps(row))
            sep = ","
            if len(batch) == _BATCH:  # one write per batch of rows: the calls, not the bytes, cost
                write("".join(batch))
                batch.clear()
        write("".join(batch) + ("[]" if sep == "[" else close + "]"))
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
