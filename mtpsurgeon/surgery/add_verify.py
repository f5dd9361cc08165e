"""Give a base exported without MTP what the runtime's MTP path reads: `activations` and `verify`.

`activations` is the hidden state the LM head reads (the input of the final
logits matmul, after the final norm), found by dataflow from `decode`'s
`logits` output back through the soft-cap ops; it becomes an f32 output of
`decode`.

The batched `verify` (one pass over the tokens) is built by
:mod:`~mtpsurgeon.surgery.add_batched_verify`; :func:`add_verify` here is the
fallback where that cannot be proven: `verify` over T = G + 1 tokens as T consecutive calls of a copy of
`decode`'s graph (IF operators with a constant-true condition, both branches
the copy; its constants share decode's buffers, so no weight is stored
twice; a graph that is both a signature's entry and an IF branch corrupts the
reference interpreter's state, hence the copy): each call gets row k of the token inputs (``embeddings`` /
``tokens`` [1,T,...], ``input_pos`` [T], ``mask`` [1,1,T,C]) and the KV
caches the previous call wrote; ``logits`` [1,T,V] and ``activations``
[1,T,H] concatenate the rows. It computes exactly what G + 1 decode calls
compute (the gate checks it bit for bit) and stores no second copy of any
weight; decode's graph itself is unchanged. It does not batch the tokens: one
verify call costs what G + 1 decode calls cost.

A `decode` input that is neither a token input (seeds.TOKEN_AXES) nor state
(an input with a same-named output of the same shape) and has a unit dim could
carry the token axis: it is refused, named, never guessed.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.formats.tflite.schema import fb
from mtpsurgeon.surgery.ir import Graph, Model, Node, Tensor
from mtpsurgeon.surgery.ir.symbolic.seeds import TOKEN_AXES

VERIFY = "verify"
DECODE = "decode"
ACTIVATIONS = "activations"
LOGITS = "logits"
#: ops between the LM-head matmul and `logits` (the soft-cap x -> c*tanh(x/c), and layout no-ops)
_HEAD_TAIL = frozenset({"TANH", "MUL", "DIV", "RESHAPE", "LOGISTIC", "SQUEEZE", "EXPAND_DIMS"})
_MATMUL = frozenset({"FULLY_CONNECTED", "BATCH_MATMUL"})
FLOAT32 = 0


@dataclass
class VerifyPlan:
    """What :func:`add_activations` and :func:`add_verify` added."""

    tokens: int
    activations: str = ""  #: decode tensor exposed as `activations` ("" if decode had one)
    hidden: int = 0
    lm_head: str = ""  #: the matmul `activations` feeds
    token_inputs: list[str] = field(default_factory=list)
    state: list[str] = field(default_factory=list)
    per_token_outputs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    batched: bool = False  #: one batched pass (add_batched_verify) rather than T decode calls
    unbatched_reason: str = ""  #: why the batched construction was not used ("" when it was, or not tried)


def _single_producer(g: Graph, t: Tensor) -> Node:
    prods = g.producers(t)
    if len(prods) != 1:
        raise SurgeryError(f"tensor '{t.name}' has {len(prods)} producers in graph '{g.name}'")
    return prods[0]


def find_activations(g: Graph, logits: Tensor) -> tuple[Tensor, Node]:
    """The tensor the LM head reads: walk from ``logits`` back to the matmul with a constant [V, H] weight."""
    vocab = logits.shape[-1]
    t = logits
    for _ in range(16):
        node = _single_producer(g, t)
        live = [x for x in node.inputs if x is not None and not x.is_constant]
        if node.op in _MATMUL:
            weights = [x for x in node.inputs if x is not None and x.is_constant]
            if len(live) != 1 or len(weights) < 1 or vocab not in weights[0].shape:
                raise SurgeryError(f"'{LOGITS}' comes from {node.op} '{node.outputs[0].name}', which is not a "
                                   f"matmul of one hidden state with a constant [{vocab}, H] LM head")
            act = live[0]
            if act.shape[-1] not in weights[0].shape or act.shape[-1] == vocab and weights[0].shape.count(vocab) < 2:
                raise SurgeryError(f"the LM head {node.op} weight {list(weights[0].shape)} does not fit its input "
                                   f"{list(act.shape)}")
            return act, node
        if node.op not in _HEAD_TAIL or len(live) != 1:
            raise SurgeryError(f"cannot follow '{LOGITS}' back to the LM head: {node.op} '{node.outputs[0].name}' "
                               "is neither a matmul nor a soft-cap/layout op with one non-constant input")
        t = live[0]
    raise SurgeryError(f"'{LOGITS}' is more than 16 operators after any matmul")


def add_activations(model: Model, plan: VerifyPlan) -> None:
    """Expose the LM head's input as decode's f32 `activations` output (no-op when decode has it)."""
    dec = model.signature(DECODE)
    if dec is None:
        raise SurgeryError(f"the model has no '{DECODE}' signature")
    if ACTIVATIONS in dec.outputs:
        plan.hidden = dec.outputs[ACTIVATIONS].shape[-1]
        plan.notes.append(f"'{DECODE}' already outputs '{ACTIVATIONS}'")
        return
    logits = dec.outputs.get(LOGITS)
    if logits is None:
        raise SurgeryError(f"'{DECODE}' has no '{LOGITS}' output to find the LM head from")
    act, head = find_activations(dec.graph, logits)
    if act.dtype != FLOAT32 or act.quantization is not None and getattr(act.quantization, "scale", None) is not None:
        raise SurgeryError(f"the LM head input '{act.name}' is {act.dtype_name}, the runtime needs f32 activations")
    if len(act.shape) != 3 or act.shape[:2] != [1, 1]:
        raise SurgeryError(f"the LM head input '{act.name}' has shape {act.shape}, expected [1, 1, H]")
    dec.graph.outputs.append(act)
    dec.outputs[ACTIVATIONS] = act
    plan.activations, plan.hidden, plan.lm_head = act.name, act.shape[-1], head.outputs[0].name


def classify_decode(model: Model) -> tuple[dict[str, int], list[str], list[str]]:
    """decode's token inputs (name -> token axis), state names, per-token output names; refuses ambiguity."""
    dec = model.signature(DECODE)
    tokens: dict[str, int] = {}
    state: list[str] = []
    for name, t in dec.inputs.items():
        spec = TOKEN_AXES.get(name)
        out = dec.outputs.get(name)
        if spec is not None:
            rank, axis = spec
            if len(t.shape) != rank or t.shape[axis] != 1:
                raise SurgeryError(f"'{DECODE}' input '{name}' has shape {t.shape}: expected rank {rank} with one "
                                   f"token on axis {axis}")
            tokens[name] = axis
        elif out is not None and list(out.shape) == list(t.shape) and out.dtype == t.dtype:
            state.append(name)
        elif 1 in t.shape:
            k = list(t.shape).index(1)
            raise SurgeryError(f"'{DECODE}' input '{name}' {list(t.shape)} is neither a token input nor a cache "
                               f"(no same-named output): T cannot be told apart from its unit dim {k}, so the "
                               "token count of a verify call is ambiguous for it")
    if "input_pos" not in tokens or not tokens.keys() & {"embeddings", "tokens", "input_ids"}:
        raise SurgeryError(f"'{DECODE}' lacks the token inputs that define T (input_pos and embeddings/tokens)")
    per_token = []
    for name, t in dec.outputs.items():
        if name in state:
            continue
        if len(t.shape) < 2 or t.shape[:2] != [1, 1]:
            raise SurgeryError(f"'{DECODE}' output '{name}' {list(t.shape)} is neither a cache nor [1, 1, ...]: "
                               "its token axis is ambiguous")
        per_token.append(name)
    return tokens, state, per_token


def clone_graph(model: Model, src: Graph, name: str) -> Graph:
    """A copy of ``src`` (new tensors and nodes; constants keep their Buffer objects, so no data is copied)."""
    g = model.add_graph(name)
    g.debug_metadata_index = src.debug_metadata_index
    twin: dict[int, Tensor] = {}
    for t in src.tensors:
        c = copy.copy(t)
        twin[id(t)] = c
        g.tensors.append(c)

    def m(t: Tensor | None) -> Tensor | None:
        return None if t is None else twin[id(t)]

    for n in src.nodes:
        c = copy.copy(n)
        c.inputs, c.outputs = [m(t) for t in n.inputs], [m(t) for t in n.outputs]
        c.intermediates = [m(t) for t in n.intermediates]
        c.called = dict(n.called)
        g.nodes.append(c)
    g.inputs, g.outputs = [m(t) for t in src.inputs], [m(t) for t in src.outputs]
    for c in g.tensors:  # blockwise scales are held as tensor objects: point them at the copies
        for f in ("block_scales", "block_zero_points"):
            ref = getattr(c, f)
            if ref is not None:
                setattr(c, f, twin[id(ref)])
    return g


def _const(g: Graph, name: str, values) -> Tensor:
    return g.add_constant(name, np.asarray(values, dtype=np.int32))


def add_verify(model: Model, draft_steps: int, plan: VerifyPlan) -> None:
    """Add a `verify` signature over ``draft_steps`` + 1 tokens: that many calls of decode's graph."""
    if model.signature(VERIFY) is not None:
        raise SurgeryError(f"the model already has a '{VERIFY}' signature")
    dec = model.signature(DECODE)
    tokens, state, per_token = classify_decode(model)
    T = draft_steps + 1
    by_tensor = {id(t): n for n, t in dec.inputs.items()}
    missing = [t.name for t in dec.graph.inputs if id(t) not in by_tensor]
    if missing:
        raise SurgeryError(f"'{DECODE}' graph inputs {missing} are not signature inputs")
    step_graph = clone_graph(model, dec.graph, f"{VERIFY}_step")
    g = model.add_graph(VERIFY)
    ins: dict[str, Tensor] = {}
    for name, t in dec.inputs.items():
        shape = list(t.shape)
        if name in tokens:
            shape[tokens[name]] = T
        ins[name] = g.add_tensor(f"{VERIFY}_{name}", shape, t.dtype, quantization=t.quantization)
    cond = g.add_constant(f"{VERIFY}/call_decode", np.asarray(True))
    current = {n: ins[n] for n in state}
    rows: dict[str, list[Tensor]] = {n: [] for n in per_token}
    out_names = [next(n for n, x in dec.outputs.items() if x is t) for t in dec.graph.outputs]
    for k in range(T):
        step: dict[str, Tensor] = {}
        for name, axis in tokens.items():
            src, t = ins[name], dec.inputs[name]
            begin = [k if a == axis else 0 for a in range(len(t.shape))]
            row = g.add_tensor(f"{VERIFY}/row{k}/{name}", t.shape, t.dtype, quantization=t.quantization)
            g.add_node("SLICE", [src, _const(g, f"{VERIFY}/row{k}/{name}/begin", begin),
                                 _const(g, f"{VERIFY}/row{k}/{name}/size", list(t.shape))], [row],
                       fb.SliceOptionsT())
            step[name] = row
        args = [step.get(by_tensor[id(t)]) or current.get(by_tensor[id(t)]) or ins[by_tensor[id(t)]]
                for t in dec.graph.inputs]
        outs = [g.add_tensor(f"{VERIFY}/row{k}/{n}", t.shape, t.dtype, quantization=t.quantization)
                for n, t in zip(out_names, dec.graph.outputs)]
        opts = fb.IfOptionsT()
        node = g.add_node("IF", [cond, *args], outs, opts)
        node.called = {"thenSubgraphIndex": step_graph, "elseSubgraphIndex": step_graph}
        for n, t in zip(out_names, outs):
            if n in current:
                current[n] = t
            elif n in rows:
                rows[n].append(t)
    outputs: dict[str, Tensor] = {}
    for name in per_token:
        t = dec.outputs[name]
        out = g.add_tensor(f"{VERIFY}_{name}", [t.shape[0], T, *t.shape[2:]], t.dtype, quantization=t.quantization)
        opts = fb.ConcatenationOptionsT()
        opts.axis = 1
        g.add_node("CONCATENATION", rows[name], [out], opts)
        outputs[name] = out
    for name in state:  # an IF output cannot take the runtime's buffer (custom allocation): copy it out
        t = dec.outputs[name]
        out = g.add_tensor(f"{VERIFY}_{name}", t.shape, t.dtype, quantization=t.quantization)
        opts = fb.ConcatenationOptionsT()
        opts.axis = 0
        g.add_node("CONCATENATION", [current[name]], [out], opts)
        outputs[name] = out
    g.inputs = [ins[n] for n in dec.inputs]
    model.graphs.remove(g)  # the entry graph before its callee (graph order as converters write it)
    model.graphs.insert(model.graphs.index(step_graph), g)
    model.add_signature(VERIFY, g, ins, outputs)
    plan.token_inputs, plan.state, plan.per_token_outputs = sorted(tokens), sorted(state), per_token
    plan.notes.append(f"'{VERIFY}' = {T} calls of a copy of the '{DECODE}' graph (IF, condition constant true): "
                      f"exactly {T} decode steps, no second copy of any weight; not batched, so one verify "
                      f"call costs {T} decode calls")
