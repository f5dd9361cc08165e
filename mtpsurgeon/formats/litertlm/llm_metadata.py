"""Summarise an LlmMetadataProto section with the official proto definitions."""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

_PROTO_PACKAGE = "litert_lm_builder.runtime.proto"


def _llm_metadata_pb2():
    """``litert_lm_builder.runtime.proto.llm_metadata_pb2``, without running ``litert_lm_builder/__init__``.

    That ``__init__`` imports the whole builder (absl's app and flags, the
    tokenizer support): more than the proto itself, paid by every ``inspect``
    of a container. ``runtime/proto`` is a plain folder of generated modules
    (no ``__init__``): it is registered as their package, and while they load
    (they import each other by absolute name, which also asks for the top
    package) a bare ``litert_lm_builder`` stands in for the real one and is
    removed again. The generated modules stay registered under their own
    names, so a later ``import litert_lm_builder`` runs its ``__init__`` and
    reuses them (protobuf refuses a second registration of the same file).
    """
    name = f"{_PROTO_PACKAGE}.llm_metadata_pb2"
    if name in sys.modules or "litert_lm_builder" in sys.modules:
        return importlib.import_module(name)
    spec = importlib.util.find_spec("litert_lm_builder")  # locates the package without importing it
    top = next(iter(spec.submodule_search_locations or []), None) if spec is not None else None
    folder = Path(top) / "runtime" / "proto" if top else None
    if folder is None or not (folder / "llm_metadata_pb2.py").is_file() or (folder / "__init__.py").exists():
        return importlib.import_module(name)  # an unexpected layout: the plain import
    stand_in = types.ModuleType("litert_lm_builder")
    stand_in.__path__ = [top]
    package = types.ModuleType(_PROTO_PACKAGE)
    package.__path__ = [str(folder)]
    package.__spec__ = importlib.util.spec_from_loader(_PROTO_PACKAGE, None, is_package=True)
    package.__spec__.submodule_search_locations = [str(folder)]
    added = [n for n in ("litert_lm_builder", _PROTO_PACKAGE) if n not in sys.modules]
    sys.modules.setdefault("litert_lm_builder", stand_in)
    sys.modules.setdefault(_PROTO_PACKAGE, package)
    try:
        return importlib.import_module(name)
    except BaseException:
        for n in [m for m in sys.modules if m.startswith(_PROTO_PACKAGE)]:
            del sys.modules[n]
        raise
    finally:
        if "litert_lm_builder" in added:
            del sys.modules["litert_lm_builder"]


def summarize(data: bytes) -> dict[str, Any]:
    """Top-level fields of the LlmMetadata proto (scalars as values, messages named)."""
    from google.protobuf.message import DecodeError

    msg = _llm_metadata_pb2().LlmMetadata()
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
