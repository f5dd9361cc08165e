"""Symbolic shape inference on the IR (mtpsurgeon.surgery.ir.symbolic).

The oracle for "which constants encode T" is litert-torch itself: the
reference exports at other verify lengths (fixtures/verify_variants/, made by
fixtures/build/verify_variants.py) show which constants change with T.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest

from mtpsurgeon.formats.open import open_file
from mtpsurgeon.surgery.ir import Model
from mtpsurgeon.surgery.ir.symbolic import Dim, SymbolicShapeError, infer_shapes
from mtpsurgeon.surgery.ir.symbolic.expr import product

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from fixtures.build.verify_variants import read_summary, summarize  # noqa: E402

BASE = REPO / "fixtures" / "base_prefill_decode.tflite"
VARIANTS = REPO / "fixtures" / "verify_variants"


@pytest.fixture(scope="module")
def base_ir() -> Model:
    return Model.from_tflite(open_file(BASE))


def test_dim_polynomials():
    T = Dim.symbol()
    assert str(2 * T * 32) == "64*T" and (2 * T * 32).at(5) == 320
    assert (T + 1) * (T + 1) == T * T + 2 * T + 1
    assert product([Dim.const(2), T, Dim.const(3)]) == 6 * T
    assert (6 * T).exact_div(4) is None and (8 * T).exact_div(4) == 2 * T
    assert (T - T).is_const and not (T + 0).is_const
    assert Dim.const(4) != T and Dim.const(4).at(4) == T.at(4)


def test_verify_seeds_and_counts(base_ir):
    s = infer_shapes(base_ir, "verify")
    assert s.t0 == 4 and set(s.seeded) == {"embeddings", "input_pos", "mask"}
    assert len(s.graphs) == 16  # verify + 15 rms_norm composite bodies
    T = Dim.symbol()
    assert [str(d) for d in s.shape(s.signature.outputs["logits"])] == ["1", "T", "512"]
    assert all(not any(d.depends_on_t for d in s.shape(t)) for k, t in s.signature.outputs.items() if "kv" in k)
    exprs = [c.exprs for c in s.t_constants]
    assert len(exprs) == 30
    assert sum(any(e == 2 * T for e in x) for x in exprs) == 2  # heads x T, found by factoring
    assert {c.role for c in s.t_constants} == {"RESHAPE shape", "SLICE size"}


def _int_values(summary: dict) -> dict[tuple[int, int], list[int]]:
    return {(g, i): t["values"] for g, gr in enumerate(summary["graphs"])
            for i, t in enumerate(gr["tensors"]) if t["values"] is not None and t["sha256"]}


def test_t_constants_are_exactly_those_litert_torch_changes(base_ir):
    """Constants that change between the T=4 and T=3 exports == the constants inference finds as functions of T."""
    s = infer_shapes(base_ir, "verify")
    at4 = _int_values(summarize(BASE.read_bytes()))
    at3 = _int_values(read_summary(VARIANTS / "verify_T3.json.gz"))
    assert at4.keys() == at3.keys()
    changed = {k for k in at4 if at4[k] != at3[k]}
    pos = {id(t): (gi, ti) for gi, g in enumerate(s.graphs) for ti, t in enumerate(g.tensors)}
    found = {pos[id(c.tensor)] for c in s.t_constants}
    assert found == changed
    # and the look-alikes stay: rank-4 vectors (TRANSPOSE perms, SLICE begins) are not functions of T
    lookalikes = [k for k, v in at4.items() if len(v) == 4 and k not in changed]
    assert len(lookalikes) >= 5
    packs = [n for g in s.graphs for n in g.nodes if n.op == "PACK"]
    assert len(packs) == 2 and all(str(d) == "4" for n in packs for d in s.shape(n.outputs[0]))
    # and the expressions give litert-torch's values at T=3
    for c in s.t_constants:
        assert [e.at(3) for e in c.exprs] == at3[pos[id(c.tensor)]]


def test_prefill_is_inferred_too_and_decode_refused(base_ir):
    s = infer_shapes(base_ir, "prefill_16")
    assert s.t0 == 16 and s.t_constants
    with pytest.raises(SymbolicShapeError, match="1 token"):
        infer_shapes(base_ir, "decode")


def _toy(hidden: int, op_after: str = "RESHAPE") -> Model:
    """verify(embeddings [1, 4, hidden], input_pos [4]) -> reshape to [1, 4*hidden] -> reshape back."""
    m = Model()
    g = m.add_graph("verify")
    x = g.add_tensor("embeddings", [1, 4, hidden])
    pos = g.add_tensor("input_pos", [4], "INT32")
    flat = g.add_tensor("flat", [1, 4 * hidden])
    g.add_node("RESHAPE", [x, g.add_constant("s1", np.array([1, 4 * hidden], np.int32))], [flat])
    y = g.add_tensor("y", [1, 4, hidden] if op_after == "RESHAPE" else [1, 4 * hidden])
    if op_after == "RESHAPE":
        g.add_node("RESHAPE", [flat, g.add_constant("s2", np.array([1, 4, hidden], np.int32))], [y])
    else:
        g.add_node(op_after, [flat], [y])
    g.inputs, g.outputs = [x, pos], [y]
    m.add_signature("verify", g, {"embeddings": x, "input_pos": pos}, {"y": y})
    return m


def test_merge_then_split_is_factored_or_refused():
    s = infer_shapes(_toy(6), "verify")  # [1, 24] = 6*T -> [1, 4, 6]: only the 4 can be T
    assert [str(d) for d in s.shape(s.signature.outputs["y"])] == ["1", "T", "6"]
    assert [str(e) for e in s.t_constants[0].exprs] == ["1", "6*T"]
    # [1, 64] = 16*T -> [1, 4, 16]: T, or 16 = 4*T? The split undoes the merge of [T, 16] just before.
    s = infer_shapes(_toy(16), "verify")
    assert [str(d) for d in s.shape(s.signature.outputs["y"])] == ["1", "T", "16"]
    # a transposed copy merged as [16, T] elsewhere does not matter: 'flat' itself was merged from [T, 16]
    m = _toy(16)
    g = m.signature("verify").graph
    tr, flat2 = g.add_tensor("tr", [1, 16, 4]), g.add_tensor("flat2", [1, 64])
    g.add_node("TRANSPOSE", [g.tensor("embeddings"), g.add_constant("perm", np.array([0, 2, 1], np.int32))], [tr])
    g.add_node("RESHAPE", [tr, g.add_constant("s3", np.array([1, 64], np.int32))], [flat2])
    g.nodes.insert(0, g.nodes.pop(-1))
    g.nodes.insert(0, g.nodes.pop(-1))
    s = infer_shapes(m, "verify")
    assert [str(d) for d in s.shape(s.signature.outputs["y"])] == ["1", "T", "16"]
    # ... but the element-wise sum of the two has no single layout: splitting it is ambiguous
    mix = g.add_tensor("mix", [1, 64])
    g.add_node("ADD", [g.tensor("flat"), flat2], [mix])
    reshape_y = next(n for n in g.nodes if n.outputs[0].name == "y")
    g.nodes.remove(reshape_y)
    g.nodes.append(reshape_y)
    reshape_y.inputs[0] = mix
    with pytest.raises(SymbolicShapeError, match=r"RESHAPE in graph 'verify' .*16\*T over dims \[4, 16\] is ambiguous"):
        infer_shapes(m, "verify")


def test_layout_decides_a_split_the_values_cannot():
    """heads = T = 4: [1, 4, T, 32] -> [1, 2, 2*T, 32] (GQA groups) -> [1, 4, 4, 32] is [1, 4, T, 32],
    because the merged dim is (2, 2, T) row-major; the same constant also shapes [1, T, 4, 32]."""
    m = Model()
    g = m.add_graph("verify")
    x = g.add_tensor("embeddings", [1, 4, 128])
    pos = g.add_tensor("input_pos", [4], "INT32")
    shape = g.add_constant("shape_1x4x4x32", np.array([1, 4, 4, 32], np.int32))
    q = g.add_tensor("q", [1, 4, 4, 32])
    g.add_node("RESHAPE", [x, shape], [q])
    qt = g.add_tensor("qt", [1, 4, 4, 32])
    g.add_node("TRANSPOSE", [q, g.add_constant("perm", np.array([0, 2, 1, 3], np.int32))], [qt])
    grouped = g.add_tensor("grouped", [1, 2, 8, 32])
    g.add_node("RESHAPE", [qt, g.add_constant("gqa", np.array([1, 2, 8, 32], np.int32))], [grouped])
    back = g.add_tensor("back", [1, 4, 4, 32])
    g.add_node("RESHAPE", [grouped, shape], [back])
    g.inputs, g.outputs = [x, pos], [back]
    m.add_signature("verify", g, {"embeddings": x, "input_pos": pos}, {"back": back})
    s = infer_shapes(m, "verify")
    assert [str(d) for d in s.shape(back)] == ["1", "4", "T", "32"]
    assert [str(d) for d in s.shape(grouped)] == ["1", "2", "2*T", "32"]
    readings = s.readings(shape)
    assert sorted([str(e) for e in r.exprs] for r in readings) == [["1", "4", "T", "32"], ["1", "T", "4", "32"]]
    assert all(len(r.uses) == 1 for r in readings)


def test_unknown_operator_is_refused_by_name():
    with pytest.raises(SymbolicShapeError, match="no shape rule for operator REVERSE_V2"):
        infer_shapes(_toy(64, "REVERSE_V2"), "verify")


def _ir_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
            and n.module.startswith("mtpsurgeon.surgery.ir")}


def test_ir_imports_are_one_directional():
    """model -> importer/exporter -> model_data -> graph -> elements; symbolic sits on top, nothing points back."""
    ir = REPO / "mtpsurgeon" / "surgery" / "ir"
    order = ["elements", "graph", "model_data", "importer", "exporter", "fingerprint", "model"]
    for i, name in enumerate(order):
        later = {f"mtpsurgeon.surgery.ir.{m}" for m in order[i + 1:] if not (name == "exporter" and m == "importer")}
        later.add("mtpsurgeon.surgery.ir.symbolic")
        assert not _ir_imports(ir / f"{name}.py") & later, name
    for f in (ir / "symbolic").glob("*.py"):
        assert "mtpsurgeon.surgery.ir.model" not in _ir_imports(f), f.name


def test_every_operator_in_the_fixtures_has_a_shape_rule():
    from mtpsurgeon.formats.litertlm import LiteRTLMContainer
    from mtpsurgeon.surgery.ir.symbolic import RULES

    fx = REPO / "fixtures"
    files = [*fx.glob("*.tflite"), *fx.glob("*.litertlm"), *fx.glob("hidden/*"), *fx.glob("heads/*")]
    seen = set()
    for p in files:
        f = open_file(p)
        models = [f.model(s.index) for s in f.tflite_sections()] if isinstance(f, LiteRTLMContainer) else [f]
        for m in models:
            seen |= {n.op for g in Model.from_tflite(m).graphs for n in g.nodes}
    assert len(seen) >= 25 and not seen - set(RULES)


def test_cut_layout_follows_the_factors_not_the_values():
    from mtpsurgeon.surgery.ir.symbolic.layout import cut_layout

    T, c = Dim.symbol(), Dim.const
    grouped = product([c(2), product([c(2), T])])  # [2, 2*T] merged: (4, T) after merging constants
    assert [str(d) for d in cut_layout(grouped, [4, 4], 4)] == ["4", "T"]
    assert [str(d) for d in cut_layout(product([T, c(4)]), [4, 4], 4)] == ["T", "4"]
    assert [str(d) for d in cut_layout(product([c(4), T]), [2, 8], 4)] == ["2", "2*T"]  # a constant factor splits
    assert cut_layout(product([T, c(4)]), [2, 8], 4) is None  # a cut inside T: not decided here
    assert cut_layout(4 * T, [4, 4], 4) is None  # 4*T from an int product: layout unknown
    assert (4 * T).layout is None and product([c(4), T]).layout == (c(4), T) and (T + 1).layout == (T + 1,)
