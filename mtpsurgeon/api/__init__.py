"""The public Python API: one function per CLI verb, typed results with ``.to_json()``.

Layer: between the CLI (which calls these and renders) and extract / surgery /
engine. :mod:`.inspect`, :mod:`.extract`, :mod:`.restore` and :mod:`.bench`
hold one verb each; :mod:`.results` the result types.
"""
from mtpsurgeon.api.bench import bench
from mtpsurgeon.api.build_drafter import build_drafter
from mtpsurgeon.api.extract import extract
from mtpsurgeon.api.inspect import inspect, inspect_json, list_tensors, tensor_rows
from mtpsurgeon.api.restore import restore
from mtpsurgeon.api.results import BenchResult, ExtractResult, Report, RestoreResult, TensorInfo

__all__ = ["bench", "build_drafter", "extract", "inspect", "inspect_json", "list_tensors", "tensor_rows", "restore",
           "BenchResult", "ExtractResult", "Report", "RestoreResult", "TensorInfo"]
