"""Roles of a live drafter's weights, read from the dataflow between its inputs and outputs.

Anchors are the interface, not names: the pre-projection is the weight matmul
the ``activations`` input reaches first; the LM head and post-projection are
the weight matmuls behind ``logits`` and ``projected_activations``; each
attention block is found where a KV-cache input meets a query in a matmul of
two activations. Every other role follows from its position around those
anchors (the norm before a q projection is the block's input norm, the two
matmuls reading the pre-feed-forward norm are gate and up, the one whose
branch has the non-linearity being gate, ...). Names are never consulted.
"""
from __future__ import annotations

from mtpsurgeon.analysis.roles.activation import gate_activation
from mtpsurgeon.analysis.roles.dataflow import Dataflow
from mtpsurgeon.analysis.roles.head_groups import head_to_kv
from mtpsurgeon.analysis.roles.model import TABLE_ROLES, BlockArch, Role, RoleMap
from mtpsurgeon.analysis.roles.patterns import (
    NONLINEAR,
    is_vector_shape,
    mask_fill,
    masks_with,
    nearest_norm,
    norm_scale,
    rms_epsilon_sites,
    rope_params,
    scalar_value,
    sliding_window,
    softcap,
    weight_matmuls,
)
from mtpsurgeon.analysis.roles.score_scale import score_scale
from mtpsurgeon.analysis.signatures import NamedIO
from mtpsurgeon.analysis.weights import weight_tensors
from mtpsurgeon.formats.tflite import TFLiteModel
from mtpsurgeon.formats.tflite.records import OperatorRecord


class _Builder:
    def __init__(self, model: TFLiteModel, io: NamedIO) -> None:
        self.df = Dataflow(model, io.subgraph)
        self.io = io
        self.rm = RoleMap(io.subgraph, "dataflow")

    def assign(self, tensor: int | None, kind: str, layer: int | None, evidence: str) -> None:
        if tensor is None:
            return
        old = self.rm.roles.get(tensor)
        if old is not None and old.kind == kind and kind in TABLE_ROLES:
            return  # one RoPE table may serve several blocks
        if old is not None and (old.kind, old.layer) != (kind, layer):
            self.rm.notes.append(f"tensor {tensor} plays two roles: {old.label} and "
                                 f"{kind if layer is None else f'layers.{layer}.{kind}'}; kept the first")
            return
        self.rm.roles.setdefault(tensor, Role(kind, layer, evidence))

    def norm_from(self, start: int, forward: bool, kind: str, layer: int | None, where: str) -> OperatorRecord | None:
        hit = nearest_norm(self.df, start, forward)
        if hit is None:
            self.rm.notes.append(f"no RMS norm found {where}")
            return None
        self.assign(hit[1], kind, layer, f"RMS-norm scale {where} (operator {hit[0].index})")
        return hit[0]


def recognise(model: TFLiteModel, io: NamedIO) -> RoleMap:
    """Assign a role to every weight of the drafter entry point ``io`` from dataflow alone."""
    b = _Builder(model, io)
    df, rm = b.df, b.rm
    act = io.inputs.get("activations")
    logits = io.outputs.get("logits")
    proj = io.outputs.get("projected_activations")

    pre = weight_matmuls(df, act.index, True) if act is not None else []
    if pre:
        b.assign(df.weight_of(pre[0]), "pre_projection", None, f"first weight matmul on 'activations' (operator {pre[0].index})")
    head_ops = weight_matmuls(df, logits.index, False) if logits is not None else []
    post_ops = weight_matmuls(df, proj.index, False) if proj is not None else []
    if head_ops:
        b.assign(df.weight_of(head_ops[0]), "lm_head", None, f"weight matmul producing 'logits' (operator {head_ops[0].index})")
        cap, folded = softcap(df, head_ops[0].outputs[0], logits.index)
        rm.arch.update(softcap=cap, softcap_folded=folded)
        b.norm_from(df.data_inputs(head_ops[0])[0], False, "final_norm", None, "before the LM head")
    if post_ops:
        b.assign(df.weight_of(post_ops[0]), "post_projection", None,
                 f"weight matmul producing 'projected_activations' (operator {post_ops[0].index})")

    for n, block in enumerate(_attention_blocks(df, io)):
        _block_roles(b, n, block)
    _architecture(b, pre, head_ops, post_ops)

    for t in weight_tensors(model, io.subgraph):
        if t.index not in rm.roles:
            rm.unassigned.append((t.index, "no role follows from the dataflow"))
    return rm


class _Block:
    def __init__(self, q_proj: OperatorRecord, scores: list[OperatorRecord], values: list[OperatorRecord], kv: dict[str, int]):
        self.q_proj, self.scores, self.values, self.kv = q_proj, scores, values, kv


def _kv_inputs(io: NamedIO) -> dict[str, int]:
    """KV-cache inputs: named like one, or any rank-4 input besides the mask."""
    kv = {n: t.index for n, t in io.inputs.items() if "kv" in n}
    if kv:
        return kv
    return {n: t.index for n, t in io.inputs.items() if len(t.shape) == 4 and n not in ("mask", "param_tensor")}


def _attention_blocks(df: Dataflow, io: NamedIO) -> list[_Block]:
    """Blocks in execution order: where KV inputs meet queries in activation matmuls."""
    kv = _kv_inputs(io)
    site_kv: dict[int, set[str]] = {}
    ops: dict[int, OperatorRecord] = {}
    kv_tensors: set[int] = set()
    for name, t in kv.items():
        kv_tensors.add(t)
        for op in df.walk([t], True, stop=lambda o: df.is_weight_matmul(o) or df.is_data_matmul(o)):
            if df.is_data_matmul(op):
                site_kv.setdefault(op.index, set()).add(name)
                ops[op.index] = op
            else:
                kv_tensors.update(o for o in op.outputs if o >= 0)
    # A value matmul reads the output of a score matmul; a score matmul reads a query.
    value_sites = {i for i, op in ops.items()
                   if any(s != i and any(_derives(df, x, ops[s].outputs[0]) for x in df.data_inputs(op))
                          for s in ops)}
    blocks: dict[int, _Block] = {}
    for i in sorted(set(ops) - value_sites):
        op = ops[i]
        query = [x for x in df.data_inputs(op) if x not in kv_tensors]
        if not query:
            continue
        q = weight_matmuls(df, query[0], False)
        if not q:
            continue
        blk = blocks.setdefault(q[0].index, _Block(q[0], [], [], {}))
        blk.scores.append(op)
        for name in site_kv[i]:
            blk.kv[name] = kv[name]
        for v in sorted(value_sites):
            if any(_derives(df, x, op.outputs[0]) for x in df.data_inputs(ops[v])):
                blk.values.append(ops[v])
                for name in site_kv[v]:
                    blk.kv[name] = kv[name]
    return [blocks[k] for k in sorted(blocks)]


def _derives(df: Dataflow, t: int, source: int, limit: int = 12) -> bool:
    """Is ``t`` computed from ``source`` within ``limit`` non-matmul operators?"""
    frontier, seen = [t], set()
    for _ in range(limit):
        nxt = []
        for x in frontier:
            if x == source:
                return True
            op = df.producer.get(x)
            if op is None or op.index in seen or (df.is_data_matmul(op) or df.is_weight_matmul(op)):
                continue
            seen.add(op.index)
            nxt.extend(df.data_inputs(op))
        frontier = nxt
    return source in frontier


def _block_roles(b: _Builder, n: int, blk: _Block) -> None:
    df, rm = b.df, b.rm
    arch = BlockArch(n, kv_inputs=tuple(sorted(blk.kv)))
    rm.blocks.append(arch)
    q_w = df.weight_of(blk.q_proj)
    b.assign(q_w, "q_proj", n, f"weight matmul behind the query of attention operator {blk.scores[0].index}")
    b.norm_from(df.data_inputs(blk.q_proj)[0], False, "input_layernorm", n, f"before block {n}'s q projection")

    # Between the q projection and the scores: the q norm and any RoPE tables.
    query = [x for x in df.data_inputs(blk.scores[0]) if _derives(df, x, blk.q_proj.outputs[0], 40)]
    tables: list[int] = []
    q_norm = None
    query_start = blk.q_proj.outputs[0]  # where the query is normed (a scale before the norm is normed away)
    for op in df.walk(query[:1], False, stop=lambda o: df.is_weight_matmul(o) or df.is_data_matmul(o)):
        if op.index == blk.q_proj.index:
            continue
        w = norm_scale(df, op)
        if w is not None:
            q_norm, query_start = w, op.outputs[0]
            b.assign(w, "q_norm", n, f"RMS-norm scale between block {n}'s q projection and its attention")
            continue
        if op.op_name in ("SIN", "COS"):  # angles computed in the graph: position x frequency constants
            tables.extend(_trig_constants(df, op))
        for c in df.const_inputs(op):
            src = df.const_source(c)
            t = df.tensor(src)
            if t.dtype.is_float and t.num_elements > 1 and op.op_name != "MUL" or (
                    t.dtype.is_float and t.num_elements > 1 and op.op_name == "MUL" and not is_vector_shape(t.shape)):
                tables.append(src)
            elif t.dtype.is_float and t.num_elements > 1 and op.op_name == "MUL" and _position_dependent(df, op):
                tables.append(src)
    for t in sorted(set(tables)):
        b.assign(t, "rope_table", n, f"float constant on block {n}'s query path between q projection and attention (RoPE)")

    k_in = [t for name, t in blk.kv.items() if "_k_" in name or name.endswith("_k")] or list(blk.kv.values())[:1]
    k_shape = df.tensor(k_in[0]).shape if k_in else ()
    head_dim = df.tensor(q_norm).shape[-1] if q_norm is not None else (k_shape[-1] if len(k_shape) == 4 else None)
    q_out = df.tensor(q_w).shape[0] if q_w is not None else None
    arch.head_dim = head_dim
    arch.heads = q_out // head_dim if q_out and head_dim and q_out % head_dim == 0 else None
    arch.kv_heads = k_shape[1] if len(k_shape) == 4 else None
    if query and k_in and arch.heads and head_dim and arch.kv_heads and arch.kv_heads > 1:
        arch.head_kv = head_to_kv(df, query_start, k_in[0], blk.scores[0], query[0], arch.heads, head_dim)
    arch.sliding_window = sliding_window(df, blk.scores[0])
    arch.mask_fill = mask_fill(df, blk.scores[0])
    mask = b.io.inputs.get("mask") or b.io.inputs.get("attn_mask")  # the runtime's visible-positions input
    if mask is not None:
        arch.masked = masks_with(df, blk.scores[0], mask.index)
    if query:
        arch.score_scale = score_scale(df, query_start, blk.scores[0], query[0])
    if tables:
        arch.rope = {"tables": len(set(tables)), "theta": None,
                     **(rope_params(df, sorted(set(tables)), head_dim) or {})}

    after = blk.values or blk.scores
    o = weight_matmuls(df, after[-1].outputs[0], True)
    if not o:
        rm.notes.append(f"block {n}: no output projection after attention")
        return
    b.assign(df.weight_of(o[0]), "o_proj", n, f"first weight matmul after block {n}'s attention (operator {o[0].index})")
    post_attn = b.norm_from(o[0].outputs[0], True, "post_attention_layernorm", n, f"after block {n}'s o projection")
    if post_attn is None:
        return
    pre_ffn = nearest_norm(df, post_attn.outputs[0], True)
    if pre_ffn is None:
        return
    mlp_in = weight_matmuls(df, pre_ffn[0].outputs[0], True)
    pair = [op for op in mlp_in if op.index != blk.q_proj.index][:2]
    if len(pair) != 2:
        rm.notes.append(f"block {n}: expected gate and up matmuls after the pre-feed-forward norm, found {len(pair)}")
        return
    b.assign(pre_ffn[1], "pre_feedforward_layernorm", n, f"RMS-norm scale read by block {n}'s gate and up matmuls")
    gate, up = _gate_and_up(df, pair)
    if gate is None:
        rm.notes.append(f"block {n}: neither MLP branch has a non-linearity; gate/up undecided")
        return
    b.assign(df.weight_of(gate), "gate_proj", n, f"MLP matmul whose branch has the non-linearity (operator {gate.index})")
    b.assign(df.weight_of(up), "up_proj", n, f"MLP matmul multiplied with the gate (operator {up.index})")
    arch.intermediate = df.tensor(df.weight_of(gate)).shape[0]
    arch.activation = gate_activation(df, gate, up)
    down = [op for op in weight_matmuls(df, up.outputs[0], True)]
    if not down:
        return
    b.assign(df.weight_of(down[0]), "down_proj", n, f"matmul reading gate x up (operator {down[0].index})")
    post_ffn = b.norm_from(down[0].outputs[0], True, "post_feedforward_layernorm", n, f"after block {n}'s down projection")
    if post_ffn is not None:
        _layer_scalar(b, n, post_ffn)


def _gate_and_up(df: Dataflow, pair: list[OperatorRecord]) -> tuple[OperatorRecord | None, OperatorRecord | None]:
    stop = lambda o: df.is_weight_matmul(o) or df.is_data_matmul(o)  # noqa: E731
    reach = [{op.index: op for op in df.walk([m.outputs[0]], True, stop=stop)} for m in pair]
    only = [set(reach[0]) - set(reach[1]), set(reach[1]) - set(reach[0])]
    nonlin = [any(reach[k][i].op_name in NONLINEAR for i in only[k]) for k in range(2)]
    if nonlin[0] == nonlin[1]:
        return None, None
    return (pair[0], pair[1]) if nonlin[0] else (pair[1], pair[0])


def _layer_scalar(b: _Builder, n: int, post_ffn: OperatorRecord) -> None:
    """``residual + post_ffn_norm(...)`` multiplied by a learned scalar, if the graph does that."""
    df = b.df
    for add in df.consumers.get(post_ffn.outputs[0], []):
        if add.op_name != "ADD":
            continue
        for op in df.consumers.get(add.outputs[0], []):
            value = scalar_value(df, op) if op.op_name == "MUL" else None
            if value is not None:
                b.assign(df.const_source(df.const_inputs(op)[0]), "layer_scalar", n,
                         f"scalar multiplying block {n}'s residual output (operator {op.index})")
                b.rm.arch.setdefault("layer_scalars", {})[n] = value  # exporters share equal scalars


def _trig_constants(df: Dataflow, trig: OperatorRecord) -> list[int]:
    """Float constants (frequencies, timescales) the angles of a SIN/COS are computed from."""
    found = []
    for op in df.walk([i for i in trig.inputs if i >= 0], False, stop=lambda o: df.is_weight_matmul(o) or df.is_data_matmul(o)):
        for c in df.const_inputs(op):
            src = df.const_source(c)
            t = df.tensor(src)
            if t.dtype.is_float and t.num_elements > 1:
                found.append(src)
    return found


def _position_dependent(df: Dataflow, op: OperatorRecord) -> bool:
    """Does the non-constant side of ``op`` depend on a position input (RoPE angles)?"""
    return any(df.ancestors_have(i, {"GATHER", "SIN", "COS", "GATHER_ND"}, 4) for i in df.data_inputs(op))


def _architecture(b: _Builder, pre: list, head_ops: list, post_ops: list) -> None:
    df, rm = b.df, b.rm
    shape = lambda ops: df.tensor(df.weight_of(ops[0])).shape if ops else None  # noqa: E731
    p, h, q = shape(pre), shape(head_ops), shape(post_ops)
    rm.arch.setdefault("softcap", None)
    rm.arch.setdefault("softcap_folded", None)
    rm.arch.update(
        hidden=p[0] if p else (h[1] if h else None),
        backbone_hidden=q[0] if q else (p[1] // 2 if p else None),
        vocab=h[0] if h else None,
        num_layers=len(rm.blocks),
        layer_scalar=any(r.kind == "layer_scalar" for r in rm.roles.values()),
    )
    sites = rms_epsilon_sites(df)
    eps = sorted({e for e, _ in sites})
    if len(eps) == 1:
        rm.arch["eps"] = eps[0]
    elif eps:
        rm.arch["eps_values"] = eps  # norms with different epsilons: which norm adds which
        label = lambda w: rm.roles[w].label if w in rm.roles else "an RMS norm without a role"  # noqa: E731
        rm.arch["eps_norms"] = [{"eps": e, "norms": sorted(label(w) for v, w in sites if v == e)} for e in eps]
    if any(blk.sliding_window for blk in rm.blocks):  # the graph masks a window: that decides the type
        for blk in rm.blocks:
            blk.layer_type = "sliding_attention" if blk.sliding_window else "full_attention"
        return
    dims = {blk.head_dim for blk in rm.blocks if blk.head_dim}
    for blk in rm.blocks:
        if len(dims) > 1:
            blk.layer_type = "full_attention" if blk.head_dim == max(dims) else "sliding_attention"
    if len(dims) <= 1 and rm.blocks:
        layers = [_kv_layer(blk.kv_inputs) for blk in rm.blocks]
        last = max((x for x in layers if x is not None), default=None)
        for blk, layer in zip(rm.blocks, layers):
            blk.layer_type = None if last is None else ("full_attention" if layer == last else "sliding_attention")
        if last is not None:
            rm.notes.append("all blocks share one head_dim: blocks reading the last KV layer taken as full attention")


def _kv_layer(names: tuple[str, ...]) -> int | None:
    nums = [int(n.rsplit("_", 1)[1]) for n in names if n.rsplit("_", 1)[-1].isdigit()]
    return max(nums) if nums else None
