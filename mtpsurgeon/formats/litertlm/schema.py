"""Constants and the official header schema of the .litertlm container.

The header is read with the stored codes below (``header.py``, no generated
code); the writer packs it with the official builder's generated schema
(``hs``, from ``litert_lm_builder``), loaded on first use. A section data type
newer than the table is named by whatever the installed builder knows.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


def _header_schema():
    """``litert_lm_builder.litertlm_header_schema_py_generated``, without running the package's ``__init__``.

    That ``__init__`` imports the whole builder (protobufs, absl, tokenizers
    support): about 0.15 s that reading a header does not need. The module is
    registered under its own name, so a later ``import litert_lm_builder``
    reuses it.
    """
    name = "litert_lm_builder.litertlm_header_schema_py_generated"
    if name in sys.modules:
        return sys.modules[name]
    package = importlib.util.find_spec("litert_lm_builder")  # locates the package without importing it
    if package is None or not package.submodule_search_locations:
        from litert_lm_builder import litertlm_header_schema_py_generated as module  # let the import error speak

        return module
    path = Path(next(iter(package.submodule_search_locations))) / "litertlm_header_schema_py_generated.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


MAGIC = b"LITERTLM"
SUPPORTED_MAJOR = 1
HEADER_BEGIN = 32  #: the header flatbuffer starts here
HEADER_END_FIELD = 24  #: uint64 offset where the header flatbuffer ends
SECTION_ALIGNMENT = 16 * 1024  #: sections start on 16 KiB boundaries

#: ``AnySectionDataType`` codes as stored in files (a wire format: the reader decodes the header without
#: the generated schema; the tests hold these tables to the installed builder's enums).
SECTION_TYPE_NAMES: dict[int, str] = {
    0: "NONE", 1: "GenericBinaryData", 2: "Deprecated", 3: "TFLiteModel", 4: "SP_Tokenizer", 5: "LlmMetadataProto",
    6: "HF_Tokenizer_Zlib", 7: "TFLiteWeights", 8: "EmbeddingMetadataProto", 9: "ExecutorMetadataProto",
    10: "TtsMetadataProto", 11: "AsrMetadataProto",
}
SECTION_TYPE_CODES: dict[str, int] = {v: k for k, v in SECTION_TYPE_NAMES.items()}
#: ``VData`` union member codes (each member is a table with one ``value`` field)
VDATA_NAMES: dict[int, str] = {
    0: "NONE", 1: "UInt8", 2: "Int8", 3: "UInt16", 4: "Int16", 5: "UInt32", 6: "Int32", 7: "Float32", 8: "Bool",
    9: "StringValue", 10: "UInt64", 11: "Int64", 12: "Double",
}


def section_type_name(code: int) -> str | None:
    """The name of a section data type: the table above, else whatever a newer installed builder knows."""
    name = SECTION_TYPE_NAMES.get(code)
    if name is not None:
        return name
    try:
        known = vars(_header_schema().AnySectionDataType)
    except ImportError:
        return None
    name = next((k for k, v in known.items() if not k.startswith("_") and v == code), None)
    if name is not None:
        SECTION_TYPE_NAMES[code] = name
        SECTION_TYPE_CODES[name] = code
    return name


def __getattr__(name: str):
    """``hs``, the official generated header schema, is loaded on first use (it imports flatbuffers and numpy)."""
    if name == "hs":
        module = _header_schema()
        globals()["hs"] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


MODEL_TYPE_KEY = "model_type"
MTP_DRAFTER = "tf_lite_mtp_drafter"
MTP_AUX = "tf_lite_mtp_aux"
PREFILL_DECODE = "tf_lite_prefill_decode"
EMBEDDER = "tf_lite_embedder"
PER_LAYER_EMBEDDER = "tf_lite_per_layer_embedder"
