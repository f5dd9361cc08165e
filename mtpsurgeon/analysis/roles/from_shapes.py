"""Roles of a pruned drafter's weights (no operators left): shapes first, names as evidence.

With the dataflow gone, shapes and their relations to the base decide what
they can: the pre-projection [D, 2H] and post-projection [H, D] pair (from
the tie), the LM head [V, D] with the base's vocab. Per-block roles need a
block index and a role that shapes cannot give (all block norms are [D];
gate and up are both [I, D]); those come from name tokens — torch paths
(``layers.2.mlp.gate_proj``) or JAX export paths (``layer_2.post_qkv/mlp/
gating_einsum1``) — and only when the name's role fits the shape. Norm
scales no name places are read off the tensor table's order
(:mod:`~mtpsurgeon.analysis.roles.table_order`). Anything left is reported
with the reason; nothing is guessed.
"""
from __future__ import annotations

import re
from collections import Counter

from mtpsurgeon.analysis.roles.model import BlockArch, Role, RoleMap
from mtpsurgeon.analysis.roles.names import name_role
from mtpsurgeon.analysis.roles.patterns import is_inverse_frequency_table, is_vector_shape
from mtpsurgeon.analysis.roles.table_order import place_by_table_order, place_matrices_by_table_order
from mtpsurgeon.formats.tflite import TFLiteModel
from mtpsurgeon.formats.tflite.records import TensorRecord

#: Roles that belong to the whole drafter, not to a block.
_TOP = {"pre_projection", "post_projection", "lm_head", "rope_table"}
_LAYER = re.compile(r"layers?[._/]?(\d+)", re.IGNORECASE)


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def recognise_pruned(tensors: list[TensorRecord], subgraph: int, D: int, H: int, vocab: int | None,
                     kv_heads: int | None = None, model: TFLiteModel | None = None) -> RoleMap:
    """Roles of orphaned drafter weights with hidden ``D``, backbone ``H`` and (base) ``vocab``, ``kv_heads``.

    ``model`` (the file holding them) lets values speak where shapes cannot: RoPE tables.
    """
    # blockwise scales are quantization parameters of a weight, not weights
    scales = {t.quantization.block_scales_tensor for t in tensors
              if t.quantization is not None and t.quantization.scheme == "blockwise"}
    every = sorted((t for t in tensors if t.index not in scales), key=lambda t: t.index)  # in table order
    rm = RoleMap(subgraph, "shapes")
    rm.arch.update(hidden=D, backbone_hidden=H, vocab=vocab)
    # Converter constants (shape vectors, axes, eps and fill scalars) are not weights; a learned scalar
    # (layer_scalar) is placed only when its name says so.
    tensors = [t for t in every if t.dtype.name not in ("INT32", "INT64")
               and (t.num_elements > 1 or name_role(t.name) == "layer_scalar")]
    taken: set[int] = set()

    def unique(shape: tuple[int, ...], kind: str, why: str) -> None:
        hits = [t for t in tensors if _squeezed(tuple(t.shape)) == shape and t.index not in taken]
        if len(hits) == 1:
            rm.roles[hits[0].index] = Role(kind, None, why, "shape")
            taken.add(hits[0].index)
        elif len(hits) > 1:
            named = [t for t in hits if name_role(t.name) is None and kind.split("_")[0] in t.name.lower()]
            if len(named) == 1:
                rm.roles[named[0].index] = Role(kind, None, why + f"; name '{named[0].name}' decides", "name")
                taken.add(named[0].index)

    unique((D, 2 * H), "pre_projection", f"the only [D, 2H] = [{D}, {2 * H}] matrix")
    unique((H, D), "post_projection", f"the only [H, D] = [{H}, {D}] matrix")
    if vocab:
        unique((vocab, D), "lm_head", f"the only [V, D] = [{vocab}, {D}] matrix (V = the base's vocab)")
    if model is not None:
        for t in tensors:
            if (t.index not in taken and t.dtype.is_float and is_vector_shape(tuple(t.shape)) and name_role(t.name) is None
                    and is_inverse_frequency_table(model.tensor_array(t))):
                rm.roles[t.index] = Role("rope_table", None, "values 1, r, r², ... (then zeros): RoPE inverse "
                                                             "frequencies", "values")
                taken.add(t.index)
    for t in tensors:
        if t.index in taken:
            continue
        role, layer = name_role(t.name), _LAYER.search(t.name)
        shape = _squeezed(tuple(t.shape))
        if role is None:
            rm.unassigned.append((t.index, _why_unassigned(t, tensors, D)))
            continue
        if not _fits(role, shape, D):
            rm.unassigned.append((t.index, f"its name says {role} but its shape {list(t.shape)} does not fit one (D={D})"))
            continue
        n = int(layer.group(1)) if layer and role not in _TOP else None
        if n is None and role not in _TOP:
            rm.unassigned.append((t.index, f"its name says {role} but names no block"))
            continue
        rm.roles[t.index] = Role(role, n, f"name '{t.name}' says {role}" + (f" of block {n}" if n is not None else "")
                                 + f"; shape {list(t.shape)} fits", "name")
    finals = [t for t in tensors if t.index not in rm.roles and is_vector_shape(tuple(t.shape)) and t.shape[-1] == D
              and re.search(r"(^|[^a-z_])(final_)?norm", t.name.lower()) and not _LAYER.search(t.name)]
    if len(finals) == 1:
        rm.roles[finals[0].index] = Role("final_norm", None, f"name '{finals[0].name}' is a norm outside any block", "name")
        rm.unassigned = [(i, w) for i, w in rm.unassigned if i != finals[0].index]
    place_matrices_by_table_order(rm, [t for t in tensors if len(_squeezed(tuple(t.shape))) == 2], D, vocab)
    place_by_table_order(rm, every, D, None if model is None else
                         (lambda t: float(model.tensor_array(t).reshape(-1)[0])))
    rm.unassigned = [(i, why) for i, why in rm.unassigned if i not in rm.roles]
    _blocks(rm, {t.index: t for t in every}, kv_heads)
    return rm


def _blocks(rm: RoleMap, by_index: dict[int, TensorRecord], kv_heads: int | None) -> None:
    """Per-block architecture implied by the shapes of the weights the names placed."""
    per: dict[int, dict[str, tuple[int, ...]]] = {}
    for i, r in rm.roles.items():
        if r.layer is not None:
            per.setdefault(r.layer, {})[r.kind] = _squeezed(tuple(by_index[i].shape))
    for n in sorted(per):
        w = per[n]
        hd = w["q_norm"][0] if "q_norm" in w else None
        q_out = w["q_proj"][0] if "q_proj" in w else None
        rm.blocks.append(BlockArch(n, heads=q_out // hd if q_out and hd and q_out % hd == 0 else None, head_dim=hd,
                                   kv_heads=kv_heads, intermediate=w["gate_proj"][0] if "gate_proj" in w else None))
    dims = {b.head_dim for b in rm.blocks if b.head_dim}
    for b in rm.blocks:
        b.layer_type = ("full_attention" if b.head_dim == max(dims) else "sliding_attention") if len(dims) > 1 else (
            "full_attention" if b is rm.blocks[-1] else "sliding_attention")
    if len(dims) <= 1 and rm.blocks:
        rm.notes.append("one head_dim in every block: the last block taken as full attention (Gemma 4's pattern)")
    rm.arch["num_layers"] = len(rm.blocks)


def _fits(role: str, shape: tuple[int, ...], D: int) -> bool:
    if role in ("q_proj", "gate_proj", "up_proj"):
        return len(shape) == 2 and shape[1] == D
    if role in ("o_proj", "down_proj"):
        return len(shape) == 2 and shape[0] == D
    if role in ("pre_projection", "lm_head"):
        return len(shape) == 2 and shape[0 if role == "pre_projection" else 1] == D
    if role == "post_projection":
        return len(shape) == 2 and shape[1] == D
    if role.endswith("layernorm"):
        return shape == (D,)
    if role == "q_norm":
        return len(shape) == 1
    if role == "layer_scalar":
        return len(shape) <= 1
    return True


def _why_unassigned(t: TensorRecord, tensors: list[TensorRecord], D: int) -> str:
    shape = _squeezed(tuple(t.shape))
    same = Counter(_squeezed(tuple(x.shape)) for x in tensors)[shape]
    if same > 1:
        return f"{same} orphan tensors share shape {list(shape)} and its name says no role: ambiguous without operators"
    return f"no role fits shape {list(t.shape)} and its name says none"
