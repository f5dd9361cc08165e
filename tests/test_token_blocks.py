"""The batched `verify` construction (surgery/token_blocks.py, token_block_rules.py, add_batched_verify.py) on
small one-token graphs that use what the fixture exports do not: a token-id input looked up with GATHER, a
TRANSPOSE that puts the token inside a block (heads first), a cache write whose rows must be transposed into
place, attention over two KV heads. Oracle: the LiteRT interpreter, verify over T tokens vs T decode calls.
Both fixture families are covered end to end in test_enable_mtp.py."""
from __future__ import annotations

import numpy as np
import pytest

import mtpsurgeon
from mtpsurgeon.formats.tflite.schema import fb
from mtpsurgeon.formats.tflite.writer import write_tflite
from mtpsurgeon.surgery.add_batched_verify import add_batched_verify
from mtpsurgeon.surgery.add_verify import VerifyPlan
from mtpsurgeon.surgery.ir import Model, Node, OpCode
from mtpsurgeon.surgery.token_blocks import NotLiftable
from mtpsurgeon.surgery.verify_vs_decode import check_verify_matches_decode

V, D, C, HEADS = 32, 8, 16, 2


def _opts(cls, **kw):
    o = cls()
    for k, v in kw.items():
        setattr(o, k, v)
    return o


def one_token_model(ring_buffer: bool = False) -> Model:
    """decode(tokens [1,1], input_pos [1], mask [1,1,1,C], kv_cache_k_0 [1,2,C,D], kv_cache_v_0 [1,2,D,C]):
    emb = GATHER(table, tokens) [1,1,2D] -> heads [1,1,2,D] -> TRANSPOSE [1,2,1,D] (k = q = v row per head);
    K row written at [0,0,pos,0]; V row (TRANSPOSE [1,2,D,1]) at [0,0,0,pos]; scores = q K^T + mask,
    SOFTMAX, times V^T -> [1,2,1,D] -> [1,1,2D] -> FULLY_CONNECTED -> logits [1,1,V]."""
    rng = np.random.default_rng(0)
    m = Model()
    g = m.add_graph("decode")
    tok = g.add_tensor("tokens", [1, 1], "INT32")
    pos = g.add_tensor("input_pos", [1], "INT32")
    mask = g.add_tensor("mask", [1, 1, 1, C])
    k_in, v_in = g.add_tensor("k", [1, HEADS, C, D]), g.add_tensor("v", [1, HEADS, D, C])

    def t(name, shape, dtype="FLOAT32"):
        return g.add_tensor(name, shape, dtype)

    def i32(name, v):
        return g.add_constant(name, np.asarray(v, np.int32))

    emb = t("emb", [1, 1, HEADS * D])
    g.add_node("GATHER", [g.add_constant("table", rng.standard_normal((V, HEADS * D)).astype(np.float32)), tok], [emb],
               _opts(fb.GatherOptionsT, axis=0))
    heads = t("heads", [1, 1, HEADS, D])
    g.add_node("RESHAPE", [emb, i32("s1", [1, 1, HEADS, D])], [heads], fb.ReshapeOptionsT())
    q = t("q", [1, HEADS, 1, D])
    g.add_node("TRANSPOSE", [heads, i32("p1", [0, 2, 1, 3])], [q], fb.TransposeOptionsT())
    vrow = t("vrow", [1, HEADS, D, 1])
    g.add_node("TRANSPOSE", [q, i32("p2", [0, 1, 3, 2])], [vrow], fb.TransposeOptionsT())
    p = t("p", [], "INT32")
    g.nodes.append(Node(OpCode.make("RESHAPE"), [pos, g.add_constant("scalar", np.zeros((0,), np.int32))], [p],
                        fb.ReshapeOptionsT(), 17))
    if ring_buffer:  # a sliding cache as a ring: row at pos mod C (not consecutive across a wrap)
        wrapped = t("wrapped", [], "INT32")
        g.add_node("FLOOR_MOD", [p, i32("c", C)], [wrapped])
        p = wrapped
    zero = i32("zero", 0)
    k_at, v_at = t("k_at", [4], "INT32"), t("v_at", [4], "INT32")
    g.add_node("PACK", [zero, zero, p, zero], [k_at], _opts(fb.PackOptionsT, valuesCount=4, axis=0))
    g.add_node("PACK", [zero, zero, zero, p], [v_at], _opts(fb.PackOptionsT, valuesCount=4, axis=0))
    k_out, v_out = t("k_out", [1, HEADS, C, D]), t("v_out", [1, HEADS, D, C])
    g.add_node("DYNAMIC_UPDATE_SLICE", [k_in, q, k_at], [k_out])
    g.add_node("DYNAMIC_UPDATE_SLICE", [v_in, vrow, v_at], [v_out])
    scores, masked, probs = t("scores", [1, HEADS, 1, C]), t("masked", [1, HEADS, 1, C]), t("probs", [1, HEADS, 1, C])
    g.add_node("BATCH_MATMUL", [q, k_out], [scores], _opts(fb.BatchMatMulOptionsT, adjY=True))
    g.add_node("ADD", [scores, mask], [masked], fb.AddOptionsT())
    g.add_node("SOFTMAX", [masked], [probs], _opts(fb.SoftmaxOptionsT, beta=1.0))
    att = t("att", [1, HEADS, 1, D])
    g.add_node("BATCH_MATMUL", [probs, v_out], [att], _opts(fb.BatchMatMulOptionsT, adjY=True))
    back, flat = t("back", [1, 1, HEADS, D]), t("flat", [1, 1, HEADS * D])
    g.add_node("TRANSPOSE", [att, i32("p3", [0, 2, 1, 3])], [back], fb.TransposeOptionsT())
    g.add_node("RESHAPE", [back, i32("s2", [1, 1, HEADS * D])], [flat], fb.ReshapeOptionsT())
    logits = t("logits", [1, 1, V])
    g.add_node("FULLY_CONNECTED", [flat, g.add_constant("head", rng.standard_normal((V, HEADS * D)).astype(np.float32)),
                                   None], [logits], _opts(fb.FullyConnectedOptionsT, keepNumDims=True))
    g.inputs, g.outputs = [tok, pos, mask, k_in, v_in], [logits, k_out, v_out]
    m.add_signature("decode", g, {"tokens": tok, "input_pos": pos, "mask": mask, "kv_cache_k_0": k_in,
                                  "kv_cache_v_0": v_in},
                    {"logits": logits, "kv_cache_k_0": k_out, "kv_cache_v_0": v_out})
    return m


@pytest.mark.parametrize("draft_steps", [1, 3])
def test_lifted_verify_equals_decode_calls_in_the_interpreter(tmp_path, draft_steps):
    m = one_token_model()
    plan = VerifyPlan(draft_steps + 1)
    add_batched_verify(m, draft_steps, plan)
    ops = [n.op for n in m.signature("verify").graph.nodes]
    assert plan.batched and ops.count("FULLY_CONNECTED") == 1 and ops.count("GATHER") == 1 and "IF" not in ops
    path = tmp_path / "lifted.tflite"
    write_tflite(m, path)
    for seed in range(3):
        eq = check_verify_matches_decode(path, seed=seed)
        assert eq.ok() and eq.bit_identical, eq.describe()
        assert set(eq.max_abs_diff) == {"logits", "kv_cache_k_0", "kv_cache_v_0"}


def test_a_ring_buffer_cache_write_is_not_lifted_and_names_why():
    with pytest.raises(NotLiftable, match=r"DYNAMIC_UPDATE_SLICE 'k_out'.*not the position input itself.*FLOOR_MOD"):
        add_batched_verify(one_token_model(ring_buffer=True), 3, VerifyPlan(4))


def test_enable_mtp_falls_back_on_the_ring_buffer_and_the_fallback_is_exact(tmp_path):
    base = tmp_path / "ring.tflite"
    write_tflite(one_token_model(ring_buffer=True), base)
    res = mtpsurgeon.enable_mtp(base, tmp_path / "out.tflite", draft_steps=2)
    assert not res.batched and "FLOOR_MOD" in res.unbatched_reason, res.unbatched_reason
    assert res.equivalence["bit_identical"] and res.verify_tokens == 3
