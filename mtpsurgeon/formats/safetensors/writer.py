"""A streaming safetensors writer: declare tensors first, then stream their bytes.

File layout (https://github.com/huggingface/safetensors): an 8-byte little-endian
header length N, N bytes of JSON ``{name: {dtype, shape, data_offsets}, "__metadata__":
{str: str}}`` padded with spaces to a multiple of 8, then every tensor's raw
little-endian bytes, back to back, in header order.

Because every size is declared up front, the header is written first and each
tensor's bytes are then pulled from its source one chunk at a time: peak memory
is one chunk, never the model.

    w = SafetensorsWriter(path)
    w.add("a", "F32", [2, 3], 24, lambda: iter([array_chunk_1, array_chunk_2]))
    w.add_array("b", np.arange(4, dtype=np.int32))
    w.write({"format": "np"})
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Union

import numpy as np

from mtpsurgeon.errors import MtpSurgeonError

#: Bytes per element of every safetensors dtype this writer emits.
DTYPE_SIZES: dict[str, int] = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8, "C64": 8,
}

#: numpy dtype → safetensors dtype string (bfloat16/float8 have no numpy type).
NUMPY_DTYPES: dict[str, str] = {
    "bool": "BOOL", "uint8": "U8", "int8": "I8", "int16": "I16", "uint16": "U16",
    "float16": "F16", "int32": "I32", "uint32": "U32", "float32": "F32",
    "int64": "I64", "uint64": "U64", "float64": "F64", "complex64": "C64",
}

Chunk = Union[bytes, bytearray, memoryview, np.ndarray]
#: A tensor's bytes: one bytes-like/array, or a callable returning an iterable of them.
Source = Union[Chunk, Callable[[], Iterable[Chunk]]]


class SafetensorsWriteError(MtpSurgeonError):
    """A tensor was declared inconsistently or its source misbehaved."""


@dataclass(frozen=True)
class _Entry:
    name: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    source: Source


def _as_bytes(chunk: Chunk) -> memoryview:
    """A flat byte view of a chunk (arrays are made contiguous little-endian)."""
    if isinstance(chunk, np.ndarray):
        if chunk.dtype.byteorder == ">":
            chunk = chunk.astype(chunk.dtype.newbyteorder("<"))
        chunk = np.ascontiguousarray(chunk)
        return memoryview(chunk.reshape(-1).view(np.uint8))
    view = memoryview(chunk)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


class SafetensorsWriter:
    """Collects tensor declarations, then streams them to ``path`` in one pass."""

    def __init__(self, path: str | os.PathLike, chunk_bytes: int = 1 << 24) -> None:
        self.path = Path(path)
        self.chunk_bytes = chunk_bytes
        self._entries: list[_Entry] = []
        self._names: set[str] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._names

    def add(self, name: str, dtype: str, shape: Iterable[int], nbytes: int | None, source: Source) -> None:
        """Declare a tensor; its bytes are read from ``source`` only by :meth:`write`."""
        shape = tuple(int(d) for d in shape)
        if not isinstance(name, str) or name == "__metadata__":
            raise SafetensorsWriteError(f"invalid tensor name {name!r}")
        if name in self._names:
            raise SafetensorsWriteError(f"duplicate tensor name '{name}'")
        if dtype not in DTYPE_SIZES:
            raise SafetensorsWriteError(f"tensor '{name}': unsupported safetensors dtype {dtype!r}")
        if any(d < 0 for d in shape):
            raise SafetensorsWriteError(f"tensor '{name}': negative dimension in shape {list(shape)}")
        expected = DTYPE_SIZES[dtype] * int(np.prod(shape, dtype=np.int64))
        if nbytes is None:
            nbytes = expected
        if nbytes != expected:
            raise SafetensorsWriteError(
                f"tensor '{name}': {dtype}{list(shape)} needs {expected} bytes, {nbytes} declared")
        self._names.add(name)
        self._entries.append(_Entry(name, dtype, shape, nbytes, source))

    def add_array(self, name: str, array: np.ndarray) -> None:
        """Declare an in-memory numpy array (dtype mapped by :data:`NUMPY_DTYPES`)."""
        dtype = NUMPY_DTYPES.get(np.dtype(array.dtype).name)
        if dtype is None:
            raise SafetensorsWriteError(f"tensor '{name}': numpy dtype {array.dtype} has no safetensors equivalent")
        self.add(name, dtype, array.shape, array.nbytes, array)

    def header(self, metadata: dict[str, str] | None = None) -> bytes:
        """The length prefix plus the padded JSON header for the declared tensors."""
        head: dict[str, Any] = {}
        if metadata:
            bad = [k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str)]
            if bad:
                raise SafetensorsWriteError(f"__metadata__ keys and values must be strings: {bad}")
            head["__metadata__"] = dict(metadata)
        offset = 0
        for e in self._entries:
            head[e.name] = {"dtype": e.dtype, "shape": list(e.shape), "data_offsets": [offset, offset + e.nbytes]}
            offset += e.nbytes
        text = json.dumps(head, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        text += b" " * (-(8 + len(text)) % 8)
        return len(text).to_bytes(8, "little") + text

    def write(self, metadata: dict[str, str] | None = None,
              progress: Callable[[str, int], None] | None = None) -> int:
        """Write the file; returns its size. ``progress(name, nbytes)`` after each chunk."""
        head = self.header(metadata)
        total = len(head)
        with open(self.path, "wb") as fh:
            fh.write(head)
            for e in self._entries:
                total += self._stream(fh, e, progress)
        return total

    def _stream(self, fh, e: _Entry, progress: Callable[[str, int], None] | None) -> int:
        src = e.source
        chunks = src() if callable(src) else (src,)
        written = 0
        for chunk in chunks:
            view = _as_bytes(chunk)
            for start in range(0, len(view), self.chunk_bytes):
                part = view[start : start + self.chunk_bytes]
                if written + len(part) > e.nbytes:
                    raise SafetensorsWriteError(f"tensor '{e.name}': source produced more than {e.nbytes} bytes")
                fh.write(part)
                written += len(part)
                if progress is not None:
                    progress(e.name, len(part))
        if written != e.nbytes:
            raise SafetensorsWriteError(f"tensor '{e.name}': source produced {written} bytes, {e.nbytes} declared")
        return written
