"""Constants and the official header schema of the .litertlm container.

The header flatbuffer schema comes from ``litert_lm_builder`` (the official
builder), so section data types follow whatever the installed release knows.
"""
from __future__ import annotations

from litert_lm_builder import litertlm_header_schema_py_generated as hs

MAGIC = b"LITERTLM"
SUPPORTED_MAJOR = 1
HEADER_BEGIN = 32  #: the header flatbuffer starts here
HEADER_END_FIELD = 24  #: uint64 offset where the header flatbuffer ends
SECTION_ALIGNMENT = 16 * 1024  #: sections start on 16 KiB boundaries

SECTION_TYPE_NAMES: dict[int, str] = {
    v: k for k, v in vars(hs.AnySectionDataType).items() if not k.startswith("_") and isinstance(v, int)
}
SECTION_TYPE_CODES: dict[str, int] = {v: k for k, v in SECTION_TYPE_NAMES.items()}
VDATA_NAMES: dict[int, str] = {v: k for k, v in vars(hs.VData).items() if not k.startswith("_") and isinstance(v, int)}

MODEL_TYPE_KEY = "model_type"
MTP_DRAFTER = "tf_lite_mtp_drafter"
MTP_AUX = "tf_lite_mtp_aux"
PREFILL_DECODE = "tf_lite_prefill_decode"
EMBEDDER = "tf_lite_embedder"
