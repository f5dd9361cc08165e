"""Roles of anonymous norm scales in a pruned drafter, from the order of the tensor table.

With the operators gone, a drafter's RMS-norm scales are all [D] vectors (the q
norms [head_dim]), and exporters such as jax2tf leave them without a
meaningful name (``jax2tf_arg_17/ReadVariableOp``). What survives is the order
in which the converter wrote them: TFLite converters emit constants in the
order the graph first uses them, forwards or backwards. A drafter's norms are
used in a fixed sequence, per block

    input_layernorm, q_norm, post_attention_layernorm, pre_feedforward_layernorm, post_feedforward_layernorm

and then the final norm. The table's vectors are matched against that
sequence in both directions; a direction is accepted only if every position
fits (width D for block norms, a width dividing the block's q projection for
q norms) and every vector a name already placed sits where its role says.
Exactly one direction must fit, else nothing is assigned. Learned scalars
(``layer_scalar``, one per block) follow the same direction when their names
mark them as variables and there is exactly one per block.
"""
from __future__ import annotations

from mtpsurgeon.analysis.roles.model import Role, RoleMap
from mtpsurgeon.analysis.roles.patterns import is_vector_shape
from mtpsurgeon.formats.tflite.records import TensorRecord

#: The norms of one block, in the order the forward pass uses them.
BLOCK_NORMS = ("input_layernorm", "q_norm", "post_attention_layernorm", "pre_feedforward_layernorm",
               "post_feedforward_layernorm")
_VARIABLE_MARKS = ("readvariableop", "jax2tf_arg", "variable")


def _template(blocks: int) -> list[tuple[str, int | None]]:
    return [(kind, n) for n in range(blocks) for kind in BLOCK_NORMS] + [("final_norm", None)]


def _fits(seq: list[TensorRecord], template: list[tuple[str, int | None]], rm: RoleMap, D: int,
          q_out: dict[int, int]) -> str | None:
    """None if ``seq`` matches ``template`` position by position, else why not."""
    for t, (kind, n) in zip(seq, template):
        width = t.shape[-1]
        if kind == "q_norm":
            if n not in q_out or width < 2 or q_out[n] % width:
                return f"tensor {t.index} [{width}] cannot be block {n}'s q norm (q projection {q_out.get(n)} wide)"
        elif width != D:
            return f"tensor {t.index} [{width}] cannot be {kind} (width D={D})"
        placed = rm.roles.get(t.index)
        if placed is not None and (placed.kind, placed.layer) != (kind, n):
            return f"tensor {t.index} is {placed.label} by name, not {kind}"
    return None


def place_by_table_order(rm: RoleMap, tensors: list[TensorRecord], D: int) -> None:
    """Assign the norms (and layer scalars) shapes and names left open, if the table order decides them."""
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
    template = _template(len(blocks))
    if len(vectors) != len(template):
        rm.notes.append(f"table order: {len(vectors)} norm-like vectors for {len(blocks)} blocks "
                        f"(expected {len(template)}); not used")
        return
    fits = {}
    for direction, seq in (("forward", vectors), ("backward", vectors[::-1])):
        why = _fits(seq, template, rm, D, q_out)
        if why is None:
            fits[direction] = seq
        else:
            rm.notes.append(f"table order read {direction}: {why}")
    if len(fits) != 1:
        if len(fits) > 1:
            rm.notes.append("table order fits both directions: norms left unassigned")
        return
    direction, seq = next(iter(fits.items()))
    evidence = (f"{{label}}: position {{pos}} of the {len(seq)} norm vectors in the tensor table, read {direction} "
                f"(the only direction that fits the per-block norm sequence and the q-norm widths)")
    for pos, (t, (kind, n)) in enumerate(zip(seq, template)):
        if t.index not in rm.roles:
            label = kind if n is None else f"layers.{n}.{kind}"
            rm.roles[t.index] = Role(kind, n, evidence.format(label=label, pos=pos), "order")
    _place_scalars(rm, tensors, len(blocks), direction)
    placed = set(rm.roles)
    rm.unassigned = [(i, why) for i, why in rm.unassigned if i not in placed]


def _place_scalars(rm: RoleMap, tensors: list[TensorRecord], blocks: int, direction: str) -> None:
    scalars = [t for t in tensors if t.index not in rm.roles and t.dtype.is_float and t.num_elements == 1
               and any(m in t.name.lower() for m in _VARIABLE_MARKS)]
    if len(scalars) != blocks:
        if scalars:
            rm.notes.append(f"table order: {len(scalars)} learned scalars for {blocks} blocks; layer scalars not placed")
        return
    if direction == "backward":
        scalars = scalars[::-1]
    for n, t in enumerate(scalars):
        rm.roles[t.index] = Role("layer_scalar", n, f"learned scalar {n + 1} of {blocks} (a variable by its name), "
                                                    f"in table order read {direction} like the norms", "order")

