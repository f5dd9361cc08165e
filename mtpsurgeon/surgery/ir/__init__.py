"""A small mutable IR over a TFLite model, in the spirit of onnx-graphsurgeon.

    model = Model.from_tflite(read_tflite(mapped))
    g = model.graphs[0]
    h = g.find_tensor("hidden")
    w = g.add_constant("head.w", weights)
    y = g.add_tensor("head.logits", [1, 8], "FLOAT32")
    g.add_node("FULLY_CONNECTED", [h, w, None], [y], fb.FullyConnectedOptionsT())
    model.signature("serving_default").outputs["head"] = y
    model.cleanup().toposort()
    write_tflite(model, "out.tflite")

Objects refer to each other directly (a node's inputs are Tensor objects, a
tensor's buffer is a Buffer object, a signature names a Graph), so edits never
juggle indices; indices are assigned again only when the model is exported.
Weights imported from a file stay zero-copy memoryviews into its map until the
writer streams them out. Nothing is removed unless ``cleanup`` is called.
"""
from mtpsurgeon.surgery.ir.elements import (
           SIDE_EFFECT_OPS,
           Buffer,
           Node,
           OpCode,
           Tensor,
           dtype_code,
)
from mtpsurgeon.surgery.ir.graph import Graph
from mtpsurgeon.surgery.ir.model import Model, ModelData, Signature, names_from_tensors

__all__ = ["Buffer", "Graph", "Model", "ModelData", "Node", "OpCode", "Signature", "Tensor", "SIDE_EFFECT_OPS", "dtype_code",
           "names_from_tensors"]
