"""The float twin of a model whose signatures take quantized state (e.g. INT8 KV caches).

A base model with INT8 per-tensor KV caches reads each cache through a
DEQUANTIZE right after the signature input and returns it through a QUANTIZE
right before the output. `verify` keeps the rows it writes in float within one
call, while T `decode` calls re-quantize after every row, so the two differ by
that rounding at any T (the exported one included). Removing those boundary
operators gives a twin whose float computation is exactly the model's own:
there, `verify` over T tokens must equal T `decode` calls bit for bit, which is
what :mod:`mtpsurgeon.surgery.respecialize_verify` gates on.

Recognised by structure only: a quantized signature input whose only reader is
one DEQUANTIZE, a signature output written by a QUANTIZE of a float tensor.
"""
from __future__ import annotations

from mtpsurgeon.surgery.ir import Model
from mtpsurgeon.surgery.ir.graph import Graph

FLOAT_TYPES = ("FLOAT32", "FLOAT16", "BFLOAT16")


def _strip(model: Model, graph: Graph, names: dict, is_input: bool) -> int:
    """Replace quantized boundary tensors of ``graph`` (in ``names``: signature name -> tensor) by their float side."""
    done = 0
    for name, t in list(names.items()):
        if t.quantization is None or t.dtype_name in FLOAT_TYPES:
            continue
        if is_input:
            readers = graph.consumers(t)
            if len(readers) != 1 or readers[0].op != "DEQUANTIZE" or any(o is t for o in graph.outputs):
                continue
            node, new = readers[0], readers[0].outputs[0]
        else:
            writers = graph.producers(t)
            if len(writers) != 1 or writers[0].op != "QUANTIZE" or writers[0].inputs[0].dtype_name not in FLOAT_TYPES:
                continue
            node, new = writers[0], writers[0].inputs[0]
        graph.remove(node)
        side = graph.inputs if is_input else graph.outputs
        side[:] = [new if x is t else x for x in side]
        names[name] = new
        done += 1
    return done


def float_twin(model: Model, signatures: list[str]) -> int:
    """Strip quantized boundaries from ``signatures`` of ``model`` in place; returns how many were stripped."""
    done = 0
    for key in signatures:
        sig = model.signature(key)
        if sig is None:
            continue
        done += _strip(model, sig.graph, sig.inputs, True)
        done += _strip(model, sig.graph, sig.outputs, False)
        sig.graph.cleanup(keep_constants=True)
    return done
