"""What a file is, from its first eight bytes (imports nothing heavy)."""
from __future__ import annotations

from mtpsurgeon.formats.litertlm.schema import MAGIC

#: The TFLite schema's file_identifier, at bytes 4..8 of a model.
TFLITE_IDENTIFIER = b"TFL3"


def file_kind(head: bytes) -> str | None:
    """'litertlm', 'tflite', or None for the first bytes ``head`` of a file."""
    if head[:8] == MAGIC:
        return "litertlm"
    if len(head) >= 8 and head[4:8] == TFLITE_IDENTIFIER:
        return "tflite"
    return None
