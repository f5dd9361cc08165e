"""IR edits: add ops and signature outputs, cleanup, toposort, control flow."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as fb
from ai_edge_litert.interpreter import Interpreter

import modelkit
from modelkit import OP, T, Kit, f32
from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.formats.open import open_file
from mtpsurgeon.formats.tflite.writer import write_tflite
from mtpsurgeon.surgery.ir import Model
from test_tflite_writer import run_all, schema_view


def if_model(path: Path) -> Path:
    """main: y = IF(cond, x) with then: x + x, else: x * x. An unrelated graph sits
    between main and the branches so extraction has to re-index the IF."""
    k = Kit()
    main = k.subgraph("main")
    cond = k.tensor(main, "cond", [1], T.BOOL)
    x = k.tensor(main, "x", [1, 4])
    y = k.tensor(main, "y", [1, 4])
    opts = fb.IfOptionsT()
    opts.thenSubgraphIndex, opts.elseSubgraphIndex = 2, 3
    k.op(main, OP.IF, [cond, x], [y], fb.BuiltinOptions.IfOptions, opts)
    main.inputs, main.outputs = [cond, x], [y]
    k.signature("main", 0, {"cond": cond, "x": x}, {"y": y})
    other = k.subgraph("other")
    a = k.tensor(other, "a", [2])
    bconst = k.tensor(other, "big", [256], T.FLOAT32, f32(np.arange(256)))
    o = k.tensor(other, "o", [2])
    k.op(other, OP.ADD, [a, a], [o], *modelkit.add_options())
    other.inputs, other.outputs = [a], [o]
    for name, op, opt in (("then", OP.ADD, modelkit.add_options()), ("else", OP.MUL, (fb.BuiltinOptions.MulOptions, fb.MulOptionsT()))):
        g = k.subgraph(name)
        i = k.tensor(g, f"{name}.in", [1, 4])
        r = k.tensor(g, f"{name}.out", [1, 4])
        k.op(g, op, [i, i], [r], *opt)
        g.inputs, g.outputs = [i], [r]
    del bconst
    return k.save(path)


def test_add_op_and_signature_output(tiny_tflite, tmp_path):
    ir = Model.from_tflite(open_file(tiny_tflite))
    g = ir.graphs[0]
    y = g.tensor("y")
    c = g.add_constant("shift", np.array([[1.0, 2.0, 3.0]], np.float32))
    z = g.add_tensor("z", [1, 3], "FLOAT32")
    g.add_node("ADD", [y, c], [z], fb.AddOptionsT())
    ir.signature("serving_default").outputs["z"] = z
    g.outputs.append(z)
    out = tmp_path / "out.tflite"
    write_tflite(ir.toposort(), out)
    runner = Interpreter(model_path=str(out)).get_signature_runner("serving_default")
    x = np.array([[0.5, -1.0, 2.0, 3.0]], np.float32)
    res = runner(x=x)
    ref = Interpreter(model_path=str(tiny_tflite)).get_signature_runner("serving_default")(x=x)["y"]
    np.testing.assert_array_equal(res["y"], ref)
    np.testing.assert_array_equal(res["z"], ref + np.array([[1.0, 2.0, 3.0]], np.float32))


def test_add_signature_names_graph_io(tiny_tflite, tmp_path):
    ir = Model.from_tflite(open_file(tiny_tflite))
    ir.remove(ir.signatures[0])
    sig = ir.add_signature("fresh", ir.graphs[0])
    assert list(sig.inputs) == ["x"] and list(sig.outputs) == ["y"]
    with pytest.raises(SurgeryError):
        ir.add_signature("fresh", ir.graphs[0])
    out = tmp_path / "out.tflite"
    write_tflite(ir, out)
    assert list(Interpreter(model_path=str(out)).get_signature_list()) == ["fresh"]


def test_nothing_removed_unless_cleanup(tiny_tflite, tmp_path):
    ir = Model.from_tflite(open_file(tiny_tflite))
    g = ir.graphs[0]
    dead_out = g.add_tensor("dead", [1, 3])
    g.add_node("RELU", [g.tensor("y")], [dead_out])
    n_buffers = len(ir.buffers)
    write_tflite(ir, tmp_path / "kept.tflite")
    view = schema_view(tmp_path / "kept.tflite")
    assert {"mtp.head.weight", "dead"} <= set(view["graphs"][0][1])

    ir.cleanup(keep_constants=True)
    assert g.find_tensor("dead") is None and g.find_tensor("mtp.head.weight") is not None
    assert [n.op for n in g.nodes] == ["FULLY_CONNECTED"]
    assert len(ir.buffers) == n_buffers
    ir.cleanup()
    assert g.find_tensor("mtp.head.weight") is None
    assert len(ir.buffers) == n_buffers - 1
    assert [o.name for o in ir.opcodes] == ["FULLY_CONNECTED"]
    write_tflite(ir, tmp_path / "clean.tflite")
    view = schema_view(tmp_path / "clean.tflite")
    assert set(view["graphs"][0][1]) == {"x", "fc.weight", "y"}
    np.testing.assert_array_equal(run_all(tmp_path / "clean.tflite")["serving_default"]["y"],
                                  run_all(tiny_tflite)["serving_default"]["y"])


def test_cleanup_keeps_blockwise_scales_of_kept_tensors(tmp_path):
    from test_tflite_writer import two_signature_model

    ir = Model.from_tflite(open_file(two_signature_model(tmp_path / "two.tflite")))
    ir.cleanup(keep_constants=True)
    g = ir.graphs[0]
    q = g.tensor("orphan.int4")
    assert q.block_scales is g.tensor("orphan.scales")
    g.remove(g.tensor("orphan.int4")).cleanup()
    assert g.find_tensor("orphan.scales") is None


def test_toposort_orders_and_detects_cycles(tiny_tflite):
    ir = Model.from_tflite(open_file(tiny_tflite))
    g = ir.graphs[0]
    y = g.tensor("y")
    a, b = g.add_tensor("a", [1, 3]), g.add_tensor("b", [1, 3])
    nb = g.add_node("RELU", [a], [b])
    na = g.add_node("TANH", [y], [a])  # appended after its consumer
    g.outputs.append(b)
    assert g.nodes.index(nb) < g.nodes.index(na)
    g.toposort()
    assert [n.op for n in g.nodes] == ["FULLY_CONNECTED", "TANH", "RELU"]
    assert g.producers(a) == [na] and g.consumers(a) == [nb]

    c = g.add_tensor("c", [1, 3])
    g.add_node("ADD", [b, c], [c])  # reads its own output
    with pytest.raises(SurgeryError, match="cycle"):
        g.toposort()


def test_toposort_detects_longer_cycle_and_unproduced_tensor(tiny_tflite):
    ir = Model.from_tflite(open_file(tiny_tflite))
    g = ir.graphs[0]
    p, q = g.add_tensor("p", [1, 3]), g.add_tensor("q", [1, 3])
    g.add_node("RELU", [p], [q])
    g.add_node("TANH", [q], [p])
    with pytest.raises(SurgeryError, match="cycle"):
        g.toposort()
    g.nodes = g.nodes[:1]
    ghost, r = g.add_tensor("ghost", [1, 3]), g.add_tensor("r", [1, 3])
    g.add_node("RELU", [ghost], [r])
    with pytest.raises(SurgeryError, match="never produced"):
        g.toposort()
    g.toposort(strict=False)


def test_remove_refuses_tensor_in_use(tiny_tflite):
    ir = Model.from_tflite(open_file(tiny_tflite))
    g = ir.graphs[0]
    with pytest.raises(SurgeryError, match="still used"):
        g.remove(g.tensor("fc.weight"))
    with pytest.raises(SurgeryError, match="not part of graph"):
        other = ir.add_graph("other").add_tensor("t", [1])
        g.add_node("RELU", [other], [g.tensor("y")])


def test_control_flow_round_trip(tmp_path):
    src = if_model(tmp_path / "if.tflite")
    ir = Model.from_tflite(open_file(src))
    node = ir.graphs[0].nodes[0]
    assert node.called == {"thenSubgraphIndex": ir.graphs[2], "elseSubgraphIndex": ir.graphs[3]}
    ir.remove(ir.graphs[1])  # drop the unrelated graph: the IF must be re-indexed
    out = tmp_path / "out.tflite"
    write_tflite(ir, out)
    it = Interpreter(model_path=str(out)).get_signature_runner("main")
    x = np.array([[1.0, -2.0, 3.0, 0.5]], np.float32)
    np.testing.assert_array_equal(it(cond=np.array([True]), x=x)["y"], x + x)
    np.testing.assert_array_equal(it(cond=np.array([False]), x=x)["y"], x * x)
    with pytest.raises(SurgeryError):
        ir.remove(ir.graphs[1])  # still called by the IF
