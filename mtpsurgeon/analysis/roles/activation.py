"""The non-linearity of a block's gated MLP, named as transformers' ``hidden_activation`` names it.

Read from the operators on the gate branch only (reached from the gate matmul, not from the up matmul):
one GELU (its ``approximate`` option tells tanh-GELU from exact GELU), TANH, RELU, or LOGISTIC (times its
own input: SiLU). Anything else (a lowered composite) is not named.
"""
from __future__ import annotations

from mtpsurgeon.analysis.roles.dataflow import Dataflow
from mtpsurgeon.analysis.roles.patterns import NONLINEAR
from mtpsurgeon.formats.tflite.records import OperatorRecord

_NAMES = {"TANH": "tanh", "RELU": "relu"}


def gate_activation(df: Dataflow, gate: OperatorRecord, up: OperatorRecord) -> str | None:
    """``gelu_pytorch_tanh``, ``gelu``, ``tanh``, ``relu``, ``silu`` or ``sigmoid``; None when not one operator."""
    stop = lambda o: df.is_weight_matmul(o) or df.is_data_matmul(o)  # noqa: E731
    from_up = {op.index for op in df.walk([up.outputs[0]], True, stop=stop)}
    branch = [op for op in df.walk([gate.outputs[0]], True, stop=stop) if op.index not in from_up]
    nonlinear = [op for op in branch if op.op_name in NONLINEAR]
    if len(nonlinear) != 1:
        return None
    op = nonlinear[0]
    if op.op_name == "GELU":
        approximate = getattr(df.model.operator_options(df.sg, op.index), "approximate", False)
        return "gelu_pytorch_tanh" if approximate else "gelu"
    if op.op_name == "LOGISTIC":
        times_input = any(c.op_name == "MUL" and op.inputs[0] in c.inputs for c in df.consumers.get(op.outputs[0], []))
        return "silu" if times_input else "sigmoid"
    return _NAMES.get(op.op_name)
