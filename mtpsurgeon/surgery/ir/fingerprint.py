"""A structural fingerprint of one signature: what must not change when another is edited.

Covers the signature's graphs (and every graph they call): operators with
their options, tensors with name, shape, type and the sha256 of constant
bytes, and the signature's named I/O. Indices are the graphs' own, so a model
written again with renumbered buffers keeps its fingerprint.
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from mtpsurgeon.surgery.ir.model_data import ModelData


def _plain(x: Any, graphs: list) -> Any:
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x).hex()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.integer, np.floating)):
        return x.item()
    if isinstance(x, (list, tuple)):
        return [_plain(v, graphs) for v in x]
    if hasattr(x, "__dict__"):
        return {k: _plain(v, graphs) for k, v in sorted(vars(x).items())}
    return str(x)


def signature_fingerprint(model: ModelData, key: str) -> str:
    """sha256 over the structure of signature ``key`` (see module docstring)."""
    sig = model.signature(key)
    if sig is None:
        raise KeyError(key)
    graphs = model.reachable_graphs([sig.graph])
    h = hashlib.sha256()
    for g in graphs:
        pos = {id(t): i for i, t in enumerate(g.tensors)}
        for t in g.tensors:
            data = hashlib.sha256(t.buffer.data).hexdigest() if t.buffer is not None and t.buffer.nbytes else ""
            h.update(repr((t.name, list(t.shape), t.dtype, t.shape_signature, t.is_variable, data,
                           _plain(t.quantization, graphs))).encode())
        for n in g.nodes:
            called = {f: [graphs.index(x) for x in (v if isinstance(v, list) else [v])] for f, v in n.called.items()}
            h.update(repr((n.op, n.opcode.version, [pos.get(id(t), -1) if t is not None else -1 for t in n.inputs],
                           [pos.get(id(t), -1) if t is not None else -1 for t in n.outputs],
                           _plain(n.options, graphs), _plain(n.options2, graphs), called,
                           None if n.custom_options is None else bytes(n.custom_options).hex())).encode())
        h.update(repr(([pos[id(t)] for t in g.inputs], [pos[id(t)] for t in g.outputs])).encode())
    h.update(repr(sorted((k, pos_t) for k, pos_t in ((n, t.name) for n, t in {**sig.inputs, **sig.outputs}.items()))).encode())
    return h.hexdigest()
