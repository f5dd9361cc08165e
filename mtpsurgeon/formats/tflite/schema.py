"""The LiteRT schema this package reads and writes.

We use ``ai_edge_litert.schema_py_generated`` (the runtime's current schema)
rather than the PyPI ``tflite`` package, which is frozen at TF 2.18: it lacks
INT2/UINT4/FLOAT8 types, blockwise quantization, offset/external buffers and
the object API that writing needs.
"""
from __future__ import annotations

from ai_edge_litert import schema_py_generated as fb

from mtpsurgeon.formats.identify import TFLITE_IDENTIFIER as FILE_IDENTIFIER  # noqa: F401  (re-exported)


def _names(enum_cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


BUILTIN_OP_NAMES: dict[int, str] = _names(fb.BuiltinOperator)
BUILTIN_OP_CODES: dict[str, int] = {v: k for k, v in BUILTIN_OP_NAMES.items()}
TENSOR_TYPE_NAMES: dict[int, str] = _names(fb.TensorType)
QUANT_DETAILS_NAMES: dict[int, str] = _names(fb.QuantizationDetails)

#: Builtin operators that call other subgraphs, and the option fields naming them.
CONTROL_FLOW_SUBGRAPH_FIELDS: dict[str, tuple[str, ...]] = {
    "IF": ("thenSubgraphIndex", "elseSubgraphIndex"),
    "WHILE": ("condSubgraphIndex", "bodySubgraphIndex"),
    "CALL_ONCE": ("initSubgraphIndex",),
    "STABLEHLO_WHILE": ("condSubgraphIndex", "bodySubgraphIndex"),
    "STABLEHLO_CASE": ("branchSubgraphIndices",),
    "STABLEHLO_REDUCE": ("bodySubgraphIndex",),
    "STABLEHLO_REDUCE_WINDOW": ("bodySubgraphIndex",),
    "STABLEHLO_SORT": ("comparatorSubgraphIndex",),
    "STABLEHLO_SCATTER": ("updateComputationSubgraphIndex",),
    "STABLEHLO_COMPOSITE": ("decompositionSubgraphIndex",),
}
