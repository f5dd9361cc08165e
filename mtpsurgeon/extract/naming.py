"""``--names original``: tensor names made tool-friendly and unique.

safetensors accepts any string, but TFLite names are often long, fused
(``a;b;c``) or full of ``:`` and spaces. Names keep ``[A-Za-z0-9._/-]``, every
other character becomes ``_``; an empty name becomes ``tensor_<sg>_<index>``;
names past :data:`MAX_LEN` are cut and suffixed with a short hash; a repeated
name gets ``.1``, ``.2``, ... in order of first use.
"""
from __future__ import annotations

import hashlib
import re
from typing import Iterable

from mtpsurgeon.formats.tflite.records import TensorRecord

MAX_LEN = 200
_UNSAFE = re.compile(r"[^A-Za-z0-9._/-]")


def sanitize(name: str, fallback: str = "tensor") -> str:
    """Replace unsafe characters with ``_``; shorten very long names with a hash."""
    clean = _UNSAFE.sub("_", name)
    if not clean:
        return fallback
    if len(clean) > MAX_LEN:
        digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:10]
        clean = f"{clean[: MAX_LEN - 11]}_{digest}"
    return clean


class NameAllocator:
    """Hands out unique names: the first user of a name keeps it, later ones get ``.N``."""

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._taken: set[str] = set(reserved)

    def __contains__(self, name: str) -> bool:
        return name in self._taken

    def take(self, name: str) -> str:
        """Reserve ``name`` (or the first free ``name.N``) and return it."""
        candidate, n = name, 0
        while candidate in self._taken:
            n += 1
            candidate = f"{name}.{n}"
        self._taken.add(candidate)
        return candidate


def fallback_name(t: TensorRecord) -> str:
    return f"tensor_{t.subgraph}_{t.index}"


def original_names(tensors: Iterable[TensorRecord], allocator: NameAllocator | None = None
                   ) -> dict[tuple[int, int], str]:
    """Map ``(subgraph, index)`` → sanitised unique name, in the given order."""
    alloc = allocator if allocator is not None else NameAllocator()
    out: dict[tuple[int, int], str] = {}
    for t in tensors:
        key = (t.subgraph, t.index)
        if key in out:
            continue
        out[key] = alloc.take(sanitize(t.name, fallback_name(t)))
    return out
