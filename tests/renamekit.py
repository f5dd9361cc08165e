"""Rewrite tensor names of a .tflite with LiteRT's own flatbuffer_utils (not mtpsurgeon's writer).

Used to show that recognisers do not depend on names: every tensor name is
replaced (anonymous, JAX-style, or converter-style) and the answer must not change.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ai_edge_litert.tools import flatbuffer_utils as fu


def rewrite_names(src: Path, dst: Path, rename: Callable[[int, int, str], str], drop_signatures: bool = False) -> Path:
    """Copy ``src`` to ``dst`` with tensor ``(subgraph, index, name)`` renamed by ``rename``."""
    model = fu.read_model(str(src))
    for s, sg in enumerate(model.subgraphs):
        for i, t in enumerate(sg.tensors):
            old = t.name.decode() if isinstance(t.name, bytes) else (t.name or "")
            t.name = rename(s, i, old)
    if drop_signatures:
        model.signatureDefs = []
    fu.write_model(model, str(dst))
    return dst


def anonymous(s: int, i: int, old: str) -> str:
    """Names that carry no information at all."""
    return f"jax2tf_arg_{(i * 7919 + s) % 1000}/ReadVariableOp"


def converter_io(inputs: list[int], outputs: list[int]) -> Callable[[int, int, str], str]:
    """Converter-style I/O names (``serving_default_args_N:0``, ``StatefulPartitionedCall:N``), the rest anonymous."""
    def rename(s: int, i: int, old: str) -> str:
        if i in inputs:
            return f"serving_default_args_{inputs.index(i)}:0"
        if i in outputs:
            return f"StatefulPartitionedCall:{outputs.index(i)}"
        return anonymous(s, i, old)
    return rename
