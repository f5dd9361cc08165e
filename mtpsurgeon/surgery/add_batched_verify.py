"""A batched `verify` for a base exported without MTP: `decode` lifted to T = G + 1 tokens in one pass.

`decode`'s graph is lifted op by op (:mod:`~mtpsurgeon.surgery.token_blocks`): every per-token value
becomes T contiguous blocks, each computed by the same op as for one token, so one matmul reads each
weight once for all T tokens (a verify call then costs about one decode call, not T). The KV caches are
written with all T rows at the first token's position (the runtime's verify positions are consecutive)
before attention reads them; each token's causal mask hides the rows of the tokens after it, as in an
exporter's own verify. The gate (verify == T decode calls) decides on the written file.

Where a rule cannot prove its op, :class:`~mtpsurgeon.surgery.token_blocks.NotLiftable` names it and
the caller falls back to the unbatched construction of :mod:`~mtpsurgeon.surgery.add_verify`.
"""
from __future__ import annotations

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.surgery.add_verify import DECODE, VERIFY, VerifyPlan, classify_decode
from mtpsurgeon.surgery.ir import Model
from mtpsurgeon.surgery.token_block_rules import RULES
from mtpsurgeon.surgery.token_blocks import Lifted, NotLiftable, TokenLifter


def add_batched_verify(model: Model, draft_steps: int, plan: VerifyPlan) -> None:
    """Add `verify` over ``draft_steps`` + 1 tokens as decode lifted to that many tokens; raises
    :class:`NotLiftable` (the model is then half-built: re-read it) where that cannot be proven."""
    if model.signature(VERIFY) is not None:
        raise SurgeryError(f"the model already has a '{VERIFY}' signature")
    dec = model.signature(DECODE)
    tokens, state, per_token = classify_decode(model)
    T = draft_steps + 1
    g = model.add_graph(VERIFY)
    lf = TokenLifter(model, dec.graph, g, T, position=dec.inputs["input_pos"])
    ins = {}
    for name, t in dec.inputs.items():
        shape = list(t.shape)
        if name in tokens:  # T tokens on the token dim: exactly the layout of a lifted value (token_blocks)
            shape[tokens[name]] = T
        ins[name] = g.add_tensor(f"{VERIFY}_{name}", shape, t.dtype, quantization=t.quantization)
        if name in tokens:
            lf.lifted[id(t)] = Lifted(ins[name], list(t.shape), tokens[name])
        else:
            lf.shared[id(t)] = ins[name]
    lf.run(RULES)
    outputs = {}
    for t in dec.graph.outputs:
        name = next(n for n, x in dec.outputs.items() if x is t)
        v = lf.result(t)
        if name in per_token:
            if not isinstance(v, Lifted):
                raise NotLiftable(f"'{DECODE}' output '{name}' does not depend on the token")
            out = lf.as_blocks(v, list(t.shape), 1)
        elif isinstance(v, Lifted):
            raise NotLiftable(f"'{DECODE}' cache output '{name}' came out per token")
        else:
            out = v
        if out in g.inputs or out in outputs.values():
            raise NotLiftable(f"'{DECODE}' output '{name}' is an input or another output")
        out.name = f"{VERIFY}_{name}_output"
        outputs[name] = out
    g.inputs, g.outputs = [ins[n] for n in dec.inputs], list(outputs.values())
    g.cleanup()
    model.add_signature(VERIFY, g, ins, outputs)
    plan.token_inputs, plan.state, plan.per_token_outputs = sorted(tokens), sorted(state), per_token
    plan.batched = True
    plan.notes.append(f"'{VERIFY}' = one batched pass over {T} tokens: '{DECODE}' lifted to {T} token blocks "
                      f"({len(g.nodes)} ops, '{DECODE}' has {len(dec.graph.nodes)}); each weight is read once "
                      "per verify call")
