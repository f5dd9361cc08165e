"""Shape rules one by one, with the LiteRT interpreter as the oracle: a toy `verify`
built from many operator types is re-specialized to other T and must load, run and
give exactly the shapes the inference predicts."""
from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from mtpsurgeon.formats.tflite.schema import fb
from mtpsurgeon.formats.tflite.writer import tflite_bytes
from mtpsurgeon.surgery.ir import Model
from mtpsurgeon.surgery.ir.symbolic import infer_shapes
from mtpsurgeon.surgery.respecialize_verify import respecialize


def _opts(cls, **kw):
    o = cls()
    for k, v in kw.items():
        setattr(o, k, v)
    return o


def toy_verify() -> Model:
    m = Model()
    g = m.add_graph("verify")
    i32 = lambda name, v: g.add_constant(name, np.asarray(v, np.int32))  # noqa: E731
    f = lambda name, shape: g.add_tensor(name, shape)  # noqa: E731
    x = f("embeddings", [1, 4, 8])
    pos = g.add_tensor("input_pos", [4], "INT32")
    mask = g.add_tensor("mask", [1, 1, 4, 16], "BOOL")
    cat = f("cat", [1, 8, 8])
    g.add_node("CONCATENATION", [x, x], [cat], _opts(fb.ConcatenationOptionsT, axis=1))
    ss = f("ss", [1, 8, 8])
    g.add_node("STRIDED_SLICE", [cat, i32("b", [0, 0, 0]), i32("e", [1, 8, 8]), i32("s", [1, 1, 1])], [ss],
               _opts(fb.StridedSliceOptionsT))
    halves = [f("h0", [1, 4, 8]), f("h1", [1, 4, 8])]
    g.add_node("SPLIT", [i32("split_axis", 1), ss], halves, _opts(fb.SplitOptionsT, numSplits=2))
    table = g.add_constant("table", np.arange(16 * 8, dtype=np.float32).reshape(16, 8) / 100)
    gat = f("gat", [4, 8])
    g.add_node("GATHER", [table, pos], [gat], _opts(fb.GatherOptionsT, axis=0))
    exp = f("exp", [1, 4, 8])
    g.add_node("EXPAND_DIMS", [gat, i32("zero", 0)], [exp], _opts(fb.ExpandDimsOptionsT))
    add = f("add", [1, 4, 8])
    g.add_node("ADD", [halves[0], exp], [add], _opts(fb.AddOptionsT))
    pad = f("pad", [1, 4, 10])
    g.add_node("PAD", [add, i32("pads", [[0, 0], [0, 0], [1, 1]])], [pad], _opts(fb.PadOptionsT))
    mean = f("mean", [1, 4, 1])
    g.add_node("MEAN", [pad, i32("axes", [2])], [mean], _opts(fb.ReducerOptionsT, keepDims=True))
    sq = f("sq", [1, 4])
    g.add_node("SQUEEZE", [mean], [sq], _opts(fb.SqueezeOptionsT, squeezeDims=[2]))
    flat = f("flat", [4])
    g.add_node("RESHAPE", [sq, i32("flat_shape", [4])], [flat], _opts(fb.ReshapeOptionsT, newShape=[4]))
    posf = f("posf", [4])
    g.add_node("CAST", [pos], [posf], _opts(fb.CastOptionsT, inDataType=2, outDataType=0))
    mul = f("mul", [4])
    g.add_node("MUL", [flat, posf], [mul], _opts(fb.MulOptionsT))
    tr = f("tr", [1, 8, 4])
    g.add_node("TRANSPOSE", [add, i32("perm", [0, 2, 1])], [tr], _opts(fb.TransposeOptionsT))
    bmm = f("bmm", [1, 4, 4])
    g.add_node("BATCH_MATMUL", [add, tr], [bmm], _opts(fb.BatchMatMulOptionsT))
    fc = f("fc", [1, 4, 6])
    w = g.add_constant("w", np.ones((6, 8), np.float32))
    g.add_node("FULLY_CONNECTED", [add, w, None], [fc], _opts(fb.FullyConnectedOptionsT, keepNumDims=True))
    sm = f("sm", [1, 4, 6])
    g.add_node("SOFTMAX", [fc], [sm], _opts(fb.SoftmaxOptionsT, beta=1.0))
    sel = f("sel", [1, 1, 4, 16])
    g.add_node("SELECT_V2", [mask, g.add_constant("zero_f", np.zeros((), np.float32)),
                             g.add_constant("neg", np.full((), -1e9, np.float32))], [sel], _opts(fb.SelectV2OptionsT))
    pk = g.add_tensor("pk", [2, 4], "FLOAT32")
    g.add_node("PACK", [mul, mul], [pk], _opts(fb.PackOptionsT, valuesCount=2, axis=0))
    rows = [f("u0", [4]), f("u1", [4])]
    g.add_node("UNPACK", [pk], rows, _opts(fb.UnpackOptionsT, num=2, axis=0))
    sl = f("sl", [1, 4, 3])
    g.add_node("SLICE", [sm, i32("sb", [0, 0, 1]), i32("sz", [1, 4, 3])], [sl], _opts(fb.SliceOptionsT))
    g.inputs = [x, pos, mask]
    outs = {"bmm": bmm, "sl": sl, "sel": sel, "u1": rows[1], "h1": halves[1]}
    g.outputs = list(outs.values())
    m.add_signature("verify", g, {"embeddings": x, "input_pos": pos, "mask": mask}, outs)
    return m


def run(data: bytes, tokens: int) -> dict[str, np.ndarray]:
    r = Interpreter(model_content=data).get_signature_runner("verify")
    rng = np.random.default_rng(0)
    return r(embeddings=rng.standard_normal((1, tokens, 8)).astype(np.float32),
             input_pos=np.arange(tokens, dtype=np.int32), mask=np.ones((1, 1, tokens, 16), bool))


def test_toy_runs_as_built():
    out = run(tflite_bytes(toy_verify()), 4)
    assert out["bmm"].shape == (1, 4, 4) and out["sl"].shape == (1, 4, 3)


def test_every_rule_used_is_exercised():
    s = infer_shapes(toy_verify(), "verify")
    assert {n.op for n in s.graphs[0].nodes} >= {"CONCATENATION", "STRIDED_SLICE", "SPLIT", "GATHER", "PAD", "MEAN",
                                                 "SQUEEZE", "RESHAPE", "TRANSPOSE", "BATCH_MATMUL", "PACK", "UNPACK"}
    by = {t.name: [str(d) for d in dims] for t, dims in s.dims.values()}
    assert by["cat"] == ["1", "2*T", "8"] and by["h0"] == ["1", "T", "8"] and by["gat"] == ["T", "8"]
    assert by["pad"] == ["1", "T", "10"] and by["bmm"] == ["1", "T", "T"] and by["pk"] == ["2", "T"]
    t_consts = {c.tensor.name: [str(e) for e in c.exprs] for c in s.t_constants}
    assert t_consts == {"e": ["1", "2*T", "8"], "flat_shape": ["T"], "sz": ["1", "T", "3"]}
    assert [(o.field, [str(e) for e in o.exprs]) for o in s.t_options] == [("newShape", ["T"])]


@pytest.mark.parametrize("tokens", [2, 3, 7])
def test_respecialized_toy_runs_in_the_interpreter(tokens):
    m = toy_verify()
    s = infer_shapes(m, "verify")
    respecialize(m, tokens, s)
    out = run(tflite_bytes(m), tokens)
    sig = m.signature("verify")
    for name, t in sig.outputs.items():
        assert list(out[name].shape) == s.shape_at(t, tokens), name
    assert out["bmm"].shape == (1, tokens, tokens)


def test_constant_read_as_shape_and_as_data_is_refused():
    from mtpsurgeon.surgery.ir.symbolic import SymbolicShapeError

    m = toy_verify()
    g = m.signature("verify").graph
    shape = g.tensor("flat_shape")  # [4] = [T] for RESHAPE ...
    twice = g.add_tensor("twice", [1], "INT32")
    g.add_node("ADD", [shape, shape], [twice], _opts(fb.AddOptionsT))  # ... and plain data here
    with pytest.raises(SymbolicShapeError, match="'flat_shape' is read as RESHAPE shape \\[T\\] and also as data"):
        infer_shapes(m, "verify")


def test_same_constant_two_meanings_gets_one_copy_per_meaning():
    """A converter stores equal constants once: 'sz' = [1, 4, 3] is [1, T, 3] for one SLICE and the
    constant [1, 4, 3] for another. Each reading is certain, so each keeps its own copy at T' = 3."""
    m = toy_verify()
    g = m.signature("verify").graph
    x = g.tensor("embeddings")
    other = g.add_tensor("other", [1, 4, 3])
    g.add_node("SLICE", [x, g.tensor("sb"), g.tensor("sz")], [other], _opts(fb.SliceOptionsT))  # sz = [1,T,3]
    y = g.add_tensor("y", [1, 4, 3])
    g.add_node("SLICE", [g.add_constant("c", np.arange(20, dtype=np.float32).reshape(1, 4, 5)), g.tensor("sb"),
                         g.tensor("sz")], [y], _opts(fb.SliceOptionsT))  # sz on a constant [1, 4, 5]: 4 is not T
    g.outputs += [other, y]
    m.signature("verify").outputs.update({"other": other, "y": y})
    s = infer_shapes(m, "verify")
    assert sorted([str(e) for e in r.exprs] for r in s.readings(g.tensor("sz"))) == [["1", "4", "3"], ["1", "T", "3"]]
    respecialize(m, 3, s)
    out = run(tflite_bytes(m), 3)
    assert out["other"].shape == (1, 3, 3) and out["y"].shape == (1, 4, 3)
    np.testing.assert_array_equal(out["y"], np.arange(20, dtype=np.float32).reshape(1, 4, 5)[:, :, 1:4])


def test_if_bodies_are_respecialized():
    """verify = IF(cond, x): then-branch x + x, else-branch x * x, both inferred and rewritten."""
    m = Model()
    g = m.add_graph("verify")
    x = g.add_tensor("embeddings", [1, 4, 8])
    pos = g.add_tensor("input_pos", [4], "INT32")
    cond = g.add_tensor("cond", [], "BOOL")
    branches = []
    for name, op in (("then", "ADD"), ("else", "MUL")):
        b = m.add_graph(name)
        bx = b.add_tensor(f"{name}.x", [1, 4, 8])
        by = b.add_tensor(f"{name}.y", [1, 4, 8])
        b.add_node(op, [bx, bx], [by], _opts(fb.AddOptionsT) if op == "ADD" else _opts(fb.MulOptionsT))
        b.inputs, b.outputs = [bx], [by]
        branches.append(b)
    y = g.add_tensor("y", [1, 4, 8])
    node = g.add_node("IF", [cond, x], [y], _opts(fb.IfOptionsT))
    node.called = {"thenSubgraphIndex": branches[0], "elseSubgraphIndex": branches[1]}
    g.inputs, g.outputs = [x, pos, cond], [y]
    m.add_signature("verify", g, {"embeddings": x, "input_pos": pos, "cond": cond}, {"y": y})
    s = infer_shapes(m, "verify")
    assert len(s.graphs) == 3 and [str(d) for d in s.shape(branches[1].outputs[0])] == ["1", "T", "8"]
    respecialize(m, 3, s)
    r = Interpreter(model_content=tflite_bytes(m)).get_signature_runner("verify")
    xv = np.arange(24, dtype=np.float32).reshape(1, 3, 8)
    for c, want in ((True, xv + xv), (False, xv * xv)):
        out = r(embeddings=xv, input_pos=np.arange(3, dtype=np.int32), cond=np.array(c))
        np.testing.assert_array_equal(out["y"], want)
