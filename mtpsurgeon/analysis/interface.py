"""Recover the runtime's I/O names of an unsigned drafter subgraph from shapes.

Converters name a stripped subgraph's tensors ``serving_default_args_0:0`` or
``StatefulPartitionedCall:1``; the names say nothing. The drafter interface
is recognisable by shape alone: outputs ``logits`` [1, 1, V] and
``projected_activations`` [1, 1, H]; inputs ``activations`` [1, 1, 2H],
``input_pos`` int32 [1], ``mask`` [1, 1, 1, C], ``param_tensor`` int32
[1, 1, 1, 7] and KV caches (K [1, heads, C, d], V [1, heads, d, C]). KV
inputs take the base model's names when a base is known (the drafter reads
the base's last cache of each shape), else ``kv_cache_k_<n>``/``kv_cache_v_<n>``
numbered in input order.
"""
from __future__ import annotations

from mtpsurgeon.formats.tflite.records import TensorRecord


def _float3(t: TensorRecord) -> bool:
    return t.dtype.is_float and len(t.shape) == 3 and t.shape[:2] == (1, 1)


def drafter_outputs(outputs: list[TensorRecord]) -> dict[str, TensorRecord] | None:
    """``logits`` (widest [1, 1, X]) and ``projected_activations`` (the other), or None."""
    cands = sorted((t for t in outputs if _float3(t)), key=lambda t: t.shape[-1], reverse=True)
    if len(cands) != 2 or cands[0].shape[-1] == cands[1].shape[-1]:
        return None
    return {"logits": cands[0], "projected_activations": cands[1]}


def drafter_inputs(inputs: list[TensorRecord], hidden: int,
                   base_kv: dict[str, TensorRecord] | None = None) -> dict[str, TensorRecord] | None:
    """Runtime names for a drafter's inputs given its projected width ``hidden``, or None."""
    out: dict[str, TensorRecord] = {}
    acts = [t for t in inputs if _float3(t) and t.shape[-1] == 2 * hidden]
    if len(acts) != 1:
        return None
    out["activations"] = acts[0]
    rest = [t for t in inputs if t is not acts[0]]
    for t in rest:
        if t.dtype.name == "INT32" and t.shape == (1,) and "input_pos" not in out:
            out["input_pos"] = t
        elif t.dtype.name == "INT32" and len(t.shape) == 4 and t.shape[:3] == (1, 1, 1) and "param_tensor" not in out:
            out["param_tensor"] = t
    rest = [t for t in rest if t not in out.values()]
    caches = [t for t in rest if len(t.shape) == 4 and t.shape[1] > 0 and (t.dtype.is_float or t.dtype.name == "INT8")
              and not (t.shape[1] == 1 and t.shape[2] == 1)]
    masks = [t for t in rest if len(t.shape) == 4 and t not in caches]
    if len(masks) >= 1:
        out["mask"] = masks[0]
    cache_len = masks[0].shape[-1] if masks else None
    out.update(_kv_names(caches, cache_len, base_kv or {}))
    return out


def _kv_names(caches: list[TensorRecord], cache_len: int | None, base_kv: dict[str, TensorRecord]) -> dict[str, TensorRecord]:
    named: dict[str, TensorRecord] = {}
    counter = {"k": 0, "v": 0}
    for t in caches:
        kind = "k" if cache_len is None or t.shape[2] == cache_len else "v"
        matches = [n for n, b in base_kv.items() if f"_{kind}_" in n and b.shape == t.shape and b.dtype == t.dtype
                   and n not in named]
        if matches:
            name = max(matches, key=_layer_number)
        else:
            name = f"kv_cache_{kind}_{counter[kind]}"
            counter[kind] += 1
        named[name] = t
    return named


def _layer_number(name: str) -> int:
    tail = name.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else -1
