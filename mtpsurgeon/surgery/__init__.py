"""Graph surgery: a small mutable IR over TFLite models (see :mod:`.ir`)."""
from mtpsurgeon.surgery.ir import Buffer, Graph, Model, Node, OpCode, Signature, Tensor

__all__ = ["Buffer", "Graph", "Model", "Node", "OpCode", "Signature", "Tensor"]
