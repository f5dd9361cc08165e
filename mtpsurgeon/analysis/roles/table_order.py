"""Roles of a pruned drafter's weights that no name places, from the order of the tensor table.

With the operators gone, a drafter's RMS-norm scales are all [D] vectors (the q
norms [head_dim]), and exporters such as jax2tf leave them without a
meaningful name (``jax2tf_arg_17/ReadVariableOp``). What survives is the order
in which the converter wrote them: TFLite converters emit constants in the
order the graph first uses them, forwards or backwards. A drafter uses its
norms in a fixed sequence, per block

    input_layernorm, q_norm, post_attention_layernorm, pre_feedforward_layernorm, post_feedforward_layernorm

and then the final norm; its matrices as the pre-projection, then per block

    q_proj, o_proj, gate_proj, up_proj, down_proj

then the post-projection and LM head. The table is matched against those
sequences in both directions; a reading is accepted only if every position
fits (norms: width D, or for q norms a width dividing the block's q
projection; matrices: shapes that chain, [D, 2H], [h·hd, D], [D, h·hd],
[I, D], [I, D], [D, I] ...) and every tensor a name already placed sits where
its role says. Exactly one reading must fit, else nothing is assigned.
Learned scalars (``layer_scalar``, one per block) follow the norms' direction
when their names mark them as variables, or else their values lie near 1, and
there is exactly one per block.
"""
from __future__ import annotations

from typing import Callable

from mtpsurgeon.analysis.roles.model import Role, RoleMap
from mtpsurgeon.analysis.roles.patterns import is_vector_shape
from mtpsurgeon.formats.tflite.records import TensorRecord

#: The norms of one block, in the order the forward pass uses them.
BLOCK_NORMS = ("input_layernorm", "q_norm", "post_attention_layernorm", "pre_feedforward_layernorm",
               "post_feedforward_layernorm")
#: The matrices of one block, in the order the forward pass uses them.
BLOCK_MATRICES = ("q_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_VARIABLE_MARKS = ("readvariableop", "jax2tf_arg", "variable")
_Template = list[tuple[str, int | None]]


def _read_both_ways(rm: RoleMap, seq: list[TensorRecord], templates: dict[str, _Template],
                    fits: Callable[[list[TensorRecord], _Template], str | None],
                    what: str) -> tuple[str, list[TensorRecord], _Template] | None:
    """The one (direction, sequence, template) under which ``seq`` fits, or None (notes say why)."""
    found = []
    for direction, ordered in (("forward", seq), ("backward", seq[::-1])):
        for variant, template in templates.items():
            why = fits(ordered, template)
            if why is None:
                found.append((direction + variant, ordered, template))
            else:
                rm.notes.append(f"table order of the {what} read {direction + variant}: {why}")
    if len(found) != 1:
        if found:
            rm.notes.append(f"table order of the {what} fits {len(found)} readings: left unassigned")
        return None
    return found[0]


def _agrees(rm: RoleMap, t: TensorRecord, kind: str, n: int | None) -> str | None:
    placed = rm.roles.get(t.index)
    if placed is not None and (placed.kind, placed.layer) != (kind, n):
        return f"tensor {t.index} is {placed.label} by {placed.source}, not {kind}"
    return None


def _assign(rm: RoleMap, reading: tuple[str, list[TensorRecord], _Template], what: str) -> None:
    direction, seq, template = reading
    for pos, (t, (kind, n)) in enumerate(zip(seq, template)):
        if t.index not in rm.roles:
            label = kind if n is None else f"layers.{n}.{kind}"
            rm.roles[t.index] = Role(kind, n, f"{label}: position {pos} of the {len(seq)} {what} in the tensor table, "
                                              f"read {direction} (the only reading that fits their shapes)", "order")


def place_matrices_by_table_order(rm: RoleMap, matrices: list[TensorRecord], D: int, vocab: int | None) -> None:
    """Per-block matrices no name placed: pre-projection, then q, o, gate, up, down per block, then the
    post-projection and LM head (in either order), read forwards or backwards; shapes must chain."""
    if any(r.kind in BLOCK_MATRICES for r in rm.roles.values()) or (len(matrices) - 3) % 5 or len(matrices) < 8:
        return
    blocks = (len(matrices) - 3) // 5
    body = [(kind, n) for n in range(blocks) for kind in BLOCK_MATRICES]
    templates = {"": [("pre_projection", None), *body, ("post_projection", None), ("lm_head", None)],
                 ", head last but one": [("pre_projection", None), *body, ("lm_head", None), ("post_projection", None)]}

    def fits(seq: list[TensorRecord], template: _Template) -> str | None:
        shape = {(k, n): t.shape for t, (k, n) in zip(seq, template)}
        pre = shape[("pre_projection", None)]
        if pre[0] != D or pre[1] % 2:
            return f"the first matrix {list(pre)} is no [D, 2H] pre-projection"
        H = pre[1] // 2
        if shape[("post_projection", None)] != (H, D):
            return f"post-projection {list(shape[('post_projection', None)])} is not [H, D] = [{H}, {D}]"
        head = shape[("lm_head", None)]
        if head[1] != D or (vocab is not None and head[0] != vocab):
            return f"LM head {list(head)} is not [V, D]"
        I = shape[("gate_proj", 0)][0]
        for n in range(blocks):
            q, o = shape[("q_proj", n)], shape[("o_proj", n)]
            if q[1] != D or o != (D, q[0]):
                return f"block {n}: q {list(q)} and o {list(o)} are not [h·hd, D] and [D, h·hd]"
            if shape[("gate_proj", n)] != (I, D) or shape[("up_proj", n)] != (I, D) or shape[("down_proj", n)] != (D, I):
                return f"block {n}: gate/up/down are not [I, D], [I, D], [D, I]"
        for t, (k, n) in zip(seq, template):
            why = _agrees(rm, t, k, n)
            if why:
                return why
        return None

    reading = _read_both_ways(rm, matrices, templates, fits, "matrices")
    if reading is not None:
        _assign(rm, reading, "matrices")


def place_by_table_order(rm: RoleMap, tensors: list[TensorRecord], D: int,
                         value: Callable[[TensorRecord], float] | None = None) -> None:
    """Assign the norms (and layer scalars) shapes and names left open, if the table order decides them.

    ``value`` reads a scalar tensor's value (learned scalars of anonymous names are told by it)."""
    blocks = sorted({r.layer for r in rm.roles.values() if r.layer is not None})
    if not blocks or blocks != list(range(len(blocks))):
        return
    open_vectors = [t for t in tensors if t.index not in rm.roles and t.dtype.is_float and is_vector_shape(tuple(t.shape))]
    if not open_vectors:
        return
    by_index = {t.index: t for t in tensors}
    q_out = {r.layer: by_index[i].shape[0] for i, r in rm.roles.items() if r.kind == "q_proj" and i in by_index}
    vectors = [t for t in tensors if t.dtype.is_float and is_vector_shape(tuple(t.shape))
               and (t.index not in rm.roles or rm.roles[t.index].kind in (*BLOCK_NORMS, "final_norm"))]
    template = [(kind, n) for n in range(len(blocks)) for kind in BLOCK_NORMS] + [("final_norm", None)]
    if len(vectors) != len(template):
        rm.notes.append(f"table order: {len(vectors)} norm-like vectors for {len(blocks)} blocks "
                        f"(expected {len(template)}); not used")
        return

    def fits(seq: list[TensorRecord], template: _Template) -> str | None:
        for t, (kind, n) in zip(seq, template):
            width = t.shape[-1]
            if kind == "q_norm":
                if n not in q_out or width < 2 or q_out[n] % width:
                    return f"tensor {t.index} [{width}] cannot be block {n}'s q norm (q projection {q_out.get(n)} wide)"
            elif width != D:
                return f"tensor {t.index} [{width}] cannot be {kind} (width D={D})"
            why = _agrees(rm, t, kind, n)
            if why:
                return why
        return None

    reading = _read_both_ways(rm, vectors, {"": template}, fits, "norm vectors")
    if reading is None:
        return
    _assign(rm, reading, "norm vectors")
    _place_scalars(rm, tensors, len(blocks), reading[0], value)
    placed = set(rm.roles)
    rm.unassigned = [(i, why) for i, why in rm.unassigned if i not in placed]


def _place_scalars(rm: RoleMap, tensors: list[TensorRecord], blocks: int, direction: str,
                   value: Callable[[TensorRecord], float] | None) -> None:
    """One learned scalar per block, in the norms' direction: the float scalars named as variables, or else
    (anonymous names) those whose values lie near 1, where a learned multiplier starts; only if there are
    exactly as many as blocks."""
    floats = [t for t in tensors if t.index not in rm.roles and t.dtype.is_float and t.num_elements == 1]
    by_name = [t for t in floats if any(m in t.name.lower() for m in _VARIABLE_MARKS)]
    by_value = [] if value is None else [t for t in floats if 0.5 <= value(t) <= 2.0 and value(t) != 1.0]
    for scalars, why in ((by_name, "a variable by its name"), (by_value, "a value near 1, as learned multipliers are")):
        if len(scalars) == blocks:
            break
    else:
        if by_name or by_value:
            rm.notes.append(f"table order: {len(by_name)} scalars named as variables and {len(by_value)} near 1 for "
                            f"{blocks} blocks; layer scalars not placed")
        return
    if direction.startswith("backward"):
        scalars = scalars[::-1]
    for n, t in enumerate(scalars):
        rm.roles[t.index] = Role("layer_scalar", n, f"learned scalar {n + 1} of {blocks} ({why}), "
                                                    f"in table order read {direction} like the norms", "order")
