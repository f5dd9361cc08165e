"""Architecture constants a pruned drafter still carries: epsilon, soft-cap, sliding window.

Pruning the operators keeps every tensor with data, so the lowering's own
constants stay in the table beside the weights: the RMS-norm epsilon, the
soft-cap, the mask's position ramp and the window it was compared with. With
no operator left to say which constant feeds what, only values that are
unambiguous by kind are read:

* epsilon: the one distinct float scalar in (0, 1e-3];
* soft-cap: the one distinct float scalar in [2, 1000];
* sliding window: when a position ramp ``[0, 1, ..., C-1]`` is present (the
  graph computed a position mask), the one integer scalar in [2, C) of the
  ramp's rank (it was broadcast against the ramp; axes and counts are not).

Each finding carries its evidence; a kind with zero or several candidates is
reported as unknown, never guessed. A user's ``config.json`` overrides all of
them (``restore --config``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mtpsurgeon.analysis.roles.model import RoleMap
from mtpsurgeon.formats.tflite import TFLiteModel
from mtpsurgeon.formats.tflite.records import TensorRecord


@dataclass
class Leftovers:
    """What the leftover constants say; ``None`` where they do not decide."""

    eps: float | None = None
    softcap: float | None = None
    position_ramp: bool = False
    sliding_window: int | None = None
    evidence: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return dict(self.__dict__)


def _one(values: set[float]) -> float | None:
    return values.pop() if len(values) == 1 else None


def read_leftovers(model: TFLiteModel, tensors: list[TensorRecord], cache_len: int | None) -> Leftovers:
    """Read the architecture constants among ``tensors`` (the pruned graph's constants without a role)."""
    out = Leftovers()
    eps: set[float] = set()
    caps: set[float] = set()
    ints: dict[int, set[int]] = {}  # rank → integer scalar values
    ramp_rank = None
    for t in tensors:
        if not model.has_data(t) or t.num_elements > max(cache_len or 0, 1) or t.num_elements == 0:
            continue
        values = model.tensor_array(t).reshape(-1)
        if t.dtype.is_float and t.num_elements == 1:  # scalars only: scale tensors hold tiny values too
            if 0 < float(values[0]) <= 1e-3:
                eps.add(float(values[0]))
            elif 2 <= float(values[0]) <= 1000:  # a cap near 1 would squash the logits; layer scalars sit there
                caps.add(float(values[0]))
        elif t.dtype.name in ("INT32", "INT64"):
            if cache_len and t.num_elements == cache_len and np.array_equal(values, np.arange(cache_len)):
                out.position_ramp, ramp_rank = True, len(t.shape)
            elif t.num_elements == 1:
                ints.setdefault(len(t.shape), set()).add(int(values[0]))
    out.eps = _one(set(eps))
    out.evidence.append(f"epsilon {out.eps:g}: the only tiny float scalar left" if out.eps is not None
                        else f"epsilon unknown ({len(eps)} candidate values)")
    out.softcap = _one(set(caps))
    out.evidence.append(f"soft-cap {out.softcap:g}: the only float scalar in [2, 1000] left" if out.softcap is not None
                        else f"soft-cap unknown ({len(caps)} candidate values)")
    if out.position_ramp and cache_len:
        windows = {v for v in ints.get(ramp_rank, ()) if 2 <= v < cache_len}
        w = _one(set(windows))
        out.sliding_window = int(w) if w is not None else None
        out.evidence.append(f"sliding window {out.sliding_window}: the only integer scalar in [2, C) beside the "
                            f"position ramp [0..{cache_len - 1}] of the same rank" if w is not None else
                            f"a position ramp [0..{cache_len - 1}] is left (the graph masked a window) but "
                            f"{len(windows)} integer scalars could be its width")
    else:
        out.evidence.append("no position ramp left: the graph computed no window mask")
    return out


def apply_leftovers(model: TFLiteModel, rm: RoleMap, left: Leftovers) -> None:
    """Record what the leftovers say in a pruned drafter's role map, as the dataflow recogniser records it.

    Sliding blocks get the window; learned layer scalars their values. With no
    operator to show whether the soft-cap's 1/cap was folded into the LM head,
    it is taken as folded, as litert-torch and the jax2tf converter both do.
    """
    rm.arch.update(eps=left.eps, softcap=left.softcap, softcap_folded=True if left.softcap else None,
                   sliding_window=left.sliding_window, position_mask=left.position_ramp)
    rm.notes.extend(f"leftover constants: {e}" for e in left.evidence)
    if left.softcap:
        rm.notes.append("soft-cap taken as folded into the LM head (no operators left to show it; the converters "
                        "we know fold it)")
    for b in rm.blocks:
        if b.layer_type == "sliding_attention" and left.sliding_window is not None:
            b.sliding_window = left.sliding_window
    tensors = model.subgraphs[rm.subgraph].tensors
    scalars = {r.layer: float(model.tensor_array(tensors[i]).reshape(-1)[0])
               for i, r in rm.roles.items() if r.kind == "layer_scalar" and r.layer is not None}
    if scalars:
        rm.arch["layer_scalars"] = scalars
