"""Standalone models: sections byte for byte, subgraphs as runnable .tflite files."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from mtpsurgeon.errors import OutputExistsError, UsageError
from mtpsurgeon.extract.standalone import extract_subgraph, write_section
from mtpsurgeon.formats.open import open_file
from test_ir import if_model
from test_tflite_writer import run_all, schema_view, two_signature_model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_write_section_is_byte_identical(tiny_container, tmp_path):
    c = open_file(tiny_container)
    out = tmp_path / "s1.tflite"
    digest = write_section(c, 1, out)
    assert out.read_bytes() == bytes(c.section_bytes(1))
    assert digest == hashlib.sha256(out.read_bytes()).hexdigest() == c.section_sha256(1)
    with pytest.raises(OutputExistsError):
        write_section(c, 1, out)
    with pytest.raises(UsageError):
        write_section(c, 5, tmp_path / "nope.tflite")


def test_extract_signature_subgraph_runs_like_the_original(tmp_path):
    src = two_signature_model(tmp_path / "two.tflite")
    out = tmp_path / "second.tflite"
    res = extract_subgraph(open_file(src), 1, out)
    assert res.signatures == ("second",) and res.subgraphs == (1,)
    assert res.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    np.testing.assert_array_equal(run_all(out)["second"]["q"], run_all(src)["second"]["q"])
    view = schema_view(out)
    assert len(view["graphs"]) == 1 and set(view["graphs"][0][1]) == {"a", "c", "q"}
    assert view["metadata"] == schema_view(src)["metadata"]  # runtime metadata kept
    # only the buffers it needs: sentinel, c, and the metadata buffer
    from ai_edge_litert import schema_py_generated as fb

    assert fb.Model.GetRootAs(out.read_bytes(), 0).BuffersLength() == 3
    assert fb.Model.GetRootAs(out.read_bytes(), 0).OperatorCodesLength() == 1


def test_extract_main_drops_orphans_keeps_outputs(tmp_path):
    src = two_signature_model(tmp_path / "two.tflite")
    out = tmp_path / "main.tflite"
    extract_subgraph(open_file(src), 0, out, signature_key="main")
    np.testing.assert_array_equal(run_all(out)["main"]["y"], run_all(src)["main"]["y"])
    assert "orphan.int4" not in schema_view(out)["graphs"][0][1]


def test_extract_unsigned_subgraph_gets_a_signature(tmp_path):
    src = if_model(tmp_path / "if.tflite")
    out = tmp_path / "else.tflite"
    res = extract_subgraph(open_file(src), 3, out)
    assert res.signatures == ("else",)
    runner = Interpreter(model_path=str(out)).get_signature_runner("else")
    x = np.array([[1.0, 2.0, -3.0, 0.5]], np.float32)
    np.testing.assert_array_equal(runner(**{"else.in": x})["else.out"], x * x)
    with pytest.raises(UsageError):
        extract_subgraph(open_file(src), 3, tmp_path / "x.tflite", signature_key="main")


def test_extract_control_flow_reindexes_called_graphs(tmp_path):
    src = if_model(tmp_path / "if.tflite")
    out = tmp_path / "main.tflite"
    res = extract_subgraph(open_file(src), 0, out)
    assert res.subgraphs == (0, 2, 3)  # 'other' left out, branches re-indexed
    a = Interpreter(model_path=str(src)).get_signature_runner("main")
    b = Interpreter(model_path=str(out)).get_signature_runner("main")
    x = np.array([[1.0, -2.0, 3.0, 0.5]], np.float32)
    for cond in (True, False):
        np.testing.assert_array_equal(a(cond=np.array([cond]), x=x)["y"], b(cond=np.array([cond]), x=x)["y"])
    assert [g[0] for g in schema_view(out)["graphs"]] == ["main", "then", "else"]


@pytest.mark.skipif(not any(FIXTURES.glob("**/*.litertlm")), reason="fixtures not generated")
def test_fixture_sections_and_subgraphs(tmp_path):
    container = next(iter(sorted(FIXTURES.glob("**/*.litertlm"))))
    c = open_file(container)
    for s in c.tflite_sections():
        out = tmp_path / f"s{s.index}.tflite"
        assert write_section(c, s.index, out) == c.section_sha256(s.index)
        m = open_file(out)
        for i, sg in enumerate(m.subgraphs):
            sig = next((x for x in m.signatures if x.subgraph == i), None)
            if sig is None:
                continue
            sub = tmp_path / f"s{s.index}_{i}.tflite"
            extract_subgraph(m, i, sub, signature_key=sig.key)
            a, b = run_all(out), run_all(sub)
            for name, v in b[sig.key].items():
                np.testing.assert_array_equal(v, a[sig.key][name])
