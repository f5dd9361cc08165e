"""Constants and the official header schema of the .litertlm container.

The header flatbuffer schema comes from ``litert_lm_builder`` (the official
builder), so section data types follow whatever the installed release knows.
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


hs = _header_schema()

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
