"""Extraction: exact dequantization, tensor naming, and safetensors dumps.

Each name is imported on first use, so copying a section out
(:mod:`.section_out`) never loads numpy or the dequantizer.
"""
from __future__ import annotations

import importlib

__all__ = [
    "DequantResult", "dequantize", "iter_dequantized", "raw_companions",
    "DumpReport", "dump_safetensors", "total_input_bytes",
    "HfMapping", "map_hf_names", "original_names", "sanitize",
]

#: public name -> the submodule defining it
_HOME = {
    **dict.fromkeys(("DequantResult", "dequantize", "iter_dequantized", "raw_companions"), "dequantize"),
    **dict.fromkeys(("DumpReport", "dump_safetensors", "total_input_bytes"), "dump"),
    **dict.fromkeys(("HfMapping", "map_hf_names"), "hf_names"),
    **dict.fromkeys(("original_names", "sanitize"), "naming"),
}


def __getattr__(name: str):
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
