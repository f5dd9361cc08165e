"""Where T comes from: the token axis of a signature's inputs.

For an LLM step signature (``verify``, ``decode``, ``prefill_*``) T is dim 1
of ``embeddings`` [B, T, H] / ``tokens`` [B, T] / ``per_layer_embeddings``
[B, T, L, D], dim 0 of ``input_pos`` [T] and dim 2 of ``mask`` [B, 1, T, C].
Every other input is T-independent; one that has a dim equal to T's value is
refused as ambiguous.
"""
from __future__ import annotations

from dataclasses import dataclass

from mtpsurgeon.surgery.ir.elements import Tensor
from mtpsurgeon.surgery.ir.model_data import Signature
from mtpsurgeon.surgery.ir.symbolic.context import SymbolicShapeError, quote
from mtpsurgeon.surgery.ir.symbolic.expr import Dim

#: input name -> (rank, token axis)
TOKEN_AXES: dict[str, tuple[int, int]] = {
    "embeddings": (3, 1),
    "tokens": (2, 1),
    "input_ids": (2, 1),
    "per_layer_embeddings": (4, 1),
    "input_pos": (1, 0),
    "mask": (4, 2),
    "attn_mask": (4, 2),
}


@dataclass
class Seeds:
    t0: int
    dims: dict[int, list[Dim]]  #: id(tensor) -> dims
    seeded: list[str]  #: input names that carry T


def seed_tokens(sig: Signature) -> Seeds:
    """T's value and every input's symbolic dims; refuses unless position + token inputs agree."""
    t0: int | None = None
    found: list[tuple[str, Tensor, int]] = []
    for name, t in sig.inputs.items():
        spec = TOKEN_AXES.get(name)
        if spec is None:
            continue
        rank, axis = spec
        if len(t.shape) != rank:
            raise SymbolicShapeError(f"signature {quote(sig.key)} input {quote(name)} has shape {t.shape}, expected rank {rank}")
        v = t.shape[axis]
        if t0 is not None and v != t0:
            raise SymbolicShapeError(f"signature {quote(sig.key)}: input {quote(name)} has {v} tokens, other inputs {t0}")
        t0 = v
        found.append((name, t, axis))
    names = {n for n, _, _ in found}
    if "input_pos" not in names or not names & {"embeddings", "tokens", "input_ids"}:
        raise SymbolicShapeError(f"signature {quote(sig.key)} lacks the token inputs that define T "
                                 "(input_pos and embeddings/tokens)")
    assert t0 is not None
    if t0 < 2:
        raise SymbolicShapeError(f"signature {quote(sig.key)} takes {t0} token: T cannot be told apart from a unit dim")
    T = Dim.symbol()
    dims: dict[int, list[Dim]] = {}
    for name, t, axis in found:
        dims[id(t)] = [T if k == axis else Dim.const(v) for k, v in enumerate(t.shape)]
    for name, t in sig.inputs.items():
        if id(t) in dims:
            continue
        if t0 in t.shape:
            raise SymbolicShapeError(f"signature {quote(sig.key)} input {quote(name)} {t.shape} has a dim equal to T={t0}: "
                                     "it is not known to be T-independent (ambiguous)")
        dims[id(t)] = [Dim.const(v) for v in t.shape]
    return Seeds(t0, dims, [n for n, _, _ in found])
