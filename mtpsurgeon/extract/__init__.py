"""Extraction: exact dequantization, tensor naming, and safetensors dumps.

Each name is imported on first use, so copying a section out
(:mod:`.section_out`) never loads numpy or the dequantizer.
"""
from __future__ import annotations

from mtpsurgeon._lazy import lazy_attributes

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


__getattr__, __dir__ = lazy_attributes(__name__, {k: f"{__name__}.{v}" for k, v in _HOME.items()}, __all__)
