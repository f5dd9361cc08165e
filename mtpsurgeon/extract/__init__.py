"""Extraction: exact dequantization, tensor naming, and safetensors dumps."""
from mtpsurgeon.extract.dequantize import DequantResult, dequantize, iter_dequantized, raw_companions
from mtpsurgeon.extract.dump import DumpReport, dump_safetensors, total_input_bytes
from mtpsurgeon.extract.hf_names import HfMapping, map_hf_names
from mtpsurgeon.extract.naming import original_names, sanitize

__all__ = [
    "DequantResult", "dequantize", "iter_dequantized", "raw_companions",
    "DumpReport", "dump_safetensors", "total_input_bytes",
    "HfMapping", "map_hf_names", "original_names", "sanitize",
]
