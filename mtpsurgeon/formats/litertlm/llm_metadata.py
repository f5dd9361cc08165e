"""Summarise an LlmMetadataProto section with the official proto definitions."""
from __future__ import annotations

from typing import Any


def summarize(data: bytes) -> dict[str, Any]:
    """Top-level fields of the LlmMetadata proto (scalars as values, messages named)."""
    from google.protobuf.message import DecodeError
    from litert_lm_builder.runtime.proto import llm_metadata_pb2

    msg = llm_metadata_pb2.LlmMetadata()
    try:
        msg.ParseFromString(data)
    except DecodeError as exc:
        return {"error": f"unparseable LlmMetadata proto: {exc}"}
    out: dict[str, Any] = {}
    for field, value in msg.ListFields():
        repeated = _is_repeated(field)
        if field.message_type is None:
            out[field.name] = list(value) if repeated else value
        elif field.name == "llm_model_type":
            out[field.name] = value.WhichOneof("model_type") or "generic_model"
        elif repeated:
            out[field.name] = f"{len(value)} entries"
        else:
            out[field.name] = "set"
    return out


def _is_repeated(field: Any) -> bool:
    """protobuf >= 5 has ``is_repeated``; older releases only ``label``."""
    if hasattr(field, "is_repeated"):
        return bool(field.is_repeated)
    return field.label == field.LABEL_REPEATED
