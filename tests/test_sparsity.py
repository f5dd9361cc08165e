"""Sparse constants (TFLite sparsity) densified exactly, with the LiteRT interpreter's
DENSIFY operator as the oracle, in the reader, the library and ``extract`` (raw and f32)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file

import modelkit
import sparsekit as K
from mtpsurgeon import open_file
from mtpsurgeon.formats.tflite.sparsity import SparsityError, densify_tensor

T = modelkit.T
TYPES = {"f32": (np.float32, T.FLOAT32), "f16": (np.float16, T.FLOAT16), "i8": (np.int8, T.INT8)}

#: name → (dense shape, encode() keywords): CSR, CSC, doubly sparse, block-sparse, one blocked dim, conv-like,
#: all-dense, permuted traversals of blocked dims, rank 3 with two sparse levels.
LAYOUTS = {
    "csr": ((6, 10), dict(formats=["D", "S"])),
    "csc_traversal": ((6, 10), dict(formats=["D", "S"], traversal=[1, 0], index_types=("u16", "u16"))),
    "both_sparse": ((6, 10), dict(formats=["S", "S"], index_types=("u16", "u8"))),
    "block_2x4": ((8, 12), dict(formats=["D", "S", "D", "D"], block_map=[0, 1], block_sizes=[2, 4])),
    "block_inner": ((4, 8), dict(formats=["D", "S", "D"], block_map=[1], block_sizes=[4], index_types=("u8", "u8"))),
    "conv_ohwi": ((8, 3, 3, 16), dict(formats=["D", "D", "D", "S"], index_types=("i32", "u8"))),
    "all_dense": ((3, 5), dict(formats=["D", "D"])),
    "blocks_col_major": ((8, 12), dict(formats=["D", "S", "D", "D"], traversal=[1, 0, 2, 3], block_map=[0, 1],
                                       block_sizes=[2, 4])),
    "blocks_swapped": ((8, 12), dict(formats=["D", "S", "D", "D"], traversal=[0, 1, 3, 2], block_map=[0, 1],
                                     block_sizes=[2, 4])),
    "rank3_mixed": ((4, 6, 8), dict(formats=["S", "D", "S", "D"], traversal=[2, 0, 1, 3], block_map=[2],
                                    block_sizes=[2], index_types=("u8", "u16"))),
}


def _build(tmp_path, layout, ttype, seed=0, **kw):
    shape, enc_kw = LAYOUTS[layout]
    dt, code = TYPES[ttype]
    dense = K.sparse_array(np.random.default_rng(seed), shape, dt)
    enc = K.encode(dense, **enc_kw)
    path = K.densify_model(tmp_path / f"{layout}_{ttype}.tflite", dense, enc, code, **kw)
    return path, dense, enc


@pytest.mark.parametrize("ttype", sorted(TYPES))
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_densify_matches_interpreter(tmp_path, layout, ttype):
    path, dense, enc = _build(tmp_path, layout, ttype)
    oracle = K.run_interpreter(path)
    model = open_file(path)
    t = model.subgraphs[0].tensors[0]
    assert t.sparsity is not None and len(model.tensor_bytes(t)) == enc.values.nbytes
    ours = densify_tensor(model, t)
    assert ours.dtype == oracle.dtype and ours.shape == oracle.shape
    np.testing.assert_array_equal(ours, oracle)
    np.testing.assert_array_equal(oracle, dense)  # the encoding is meaningful, not just self-consistent
    if layout != "all_dense":
        assert enc.values.size < dense.size  # something was actually left out


def _extract(path, out, *args):
    p = subprocess.run([sys.executable, "-m", "mtpsurgeon", "extract", str(path), "-o", str(out), "--all", "--json", *args],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.mark.parametrize("layout", ["block_2x4", "csc_traversal", "conv_ohwi"])
def test_extract_all_writes_sparse_tensors_dense(tmp_path, layout):
    path, dense, _ = _build(tmp_path, layout, "f16", seed=3)
    oracle = K.run_interpreter(path)
    raw = _extract(path, tmp_path / "raw")
    f32 = _extract(path, tmp_path / "f32", "--dtype", "f32")
    w_raw = load_file(raw["dumps"][0]["path"])["w_sparse"]
    w_f32 = load_file(f32["dumps"][0]["path"])["w_sparse"]
    assert w_raw.dtype == np.float16 and w_raw.shape == dense.shape
    np.testing.assert_array_equal(w_raw, oracle)
    np.testing.assert_array_equal(w_f32, oracle.astype(np.float32))
    with safe_open(raw["dumps"][0]["path"], "np") as f:
        info = json.loads(f.metadata()["mtpsurgeon.tensors"])["w_sparse"]
    assert info["sparsity"]["traversal_order"] == LAYOUTS[layout][1].get("traversal", list(range(len(info["sparsity"]["traversal_order"]))))
    assert not raw["dumps"][0].get("skipped")


def test_sparse_int8_dequantized_matches_interpreter(tmp_path):
    """Sparse INT8 → DENSIFY → DEQUANTIZE: the f32 dump equals the interpreter's float output."""
    path, dense, _ = _build(tmp_path, "block_2x4", "i8", seed=5, dequantize_scale=0.0625)
    oracle = K.run_interpreter(path)
    assert oracle.dtype == np.float32 and np.count_nonzero(oracle != -3 * 0.0625) < dense.size
    out = _extract(path, tmp_path / "f32", "--dtype", "f32")
    np.testing.assert_array_equal(load_file(out["dumps"][0]["path"])["w_sparse"], oracle)
    raw = _extract(path, tmp_path / "raw")
    got = load_file(raw["dumps"][0]["path"])
    np.testing.assert_array_equal(got["w_sparse"], dense)
    assert got["w_sparse.scale"].tolist() == [0.0625]


def _corrupt(tmp_path, what):
    """A block-sparse model with one field of its sparsity made unreadable."""
    from ai_edge_litert import schema_py_generated as fb

    path, _, _ = _build(tmp_path, "block_2x4", "f32")
    data = fb.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    sp = data.subgraphs[0].tensors[0].sparsity
    if what == "block size":
        sp.dimMetadata[3].denseSize = 5  # does not divide 12
    elif what == "block_map order":
        sp.blockMap = [1, 0]
    elif what == "sparse block level":
        sp.dimMetadata[2] = sp.dimMetadata[1]
    elif what == "int4 values":
        data.subgraphs[0].tensors[0].type = T.INT4
    kit = modelkit.Kit()
    kit.model = data
    return kit.save(tmp_path / "bad.tflite")


@pytest.mark.parametrize("what,message", [("block size", "block size 5"), ("block_map order", "increasing order"),
                                          ("sparse block level", "block dimension 2 is SPARSE_CSR"),
                                          ("int4 values", "sparse INT4 values are not supported")])
def test_unsupported_layout_is_reported_by_name(tmp_path, what, message):
    path = _corrupt(tmp_path, what)
    model = open_file(path)
    with pytest.raises(SparsityError, match=f"w_sparse.*{message}"):
        densify_tensor(model, model.subgraphs[0].tensors[0])
    for dtype in ("raw", "f32"):
        out = _extract(path, tmp_path / dtype, "--dtype", dtype)
        (dump,) = out["dumps"]
        notes = " ".join(dump["notes"])
        assert "skipped 'w_sparse'" in notes and "sparse tensor that cannot be densified" in notes and message in notes
        assert "needs" not in notes  # not the misleading "buffer too small" message of a dense read


def _inspect(path, *args):
    p = subprocess.run([sys.executable, "-m", "mtpsurgeon", "inspect", str(path), "--json", *args],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_inspect_json_reports_sparsity(tmp_path):
    path, _, enc = _build(tmp_path, "block_2x4", "f32")
    doc = _inspect(path)
    assert doc["models"][0]["sparse_tensors"] == 1
    assert doc["models"][0]["subgraphs"][0]["reached_by"].startswith("entry")
    (row,) = [r for r in _inspect(path, "--tensors")["tensors"] if r["name"] == "w_sparse"]
    assert row["sparsity"]["block_map"] == [0, 1]
    assert [d["format"] for d in row["sparsity"]["dim_metadata"]] == ["DENSE", "SPARSE_CSR", "DENSE", "DENSE"]
    assert row["bytes"] == enc.values.nbytes
    text = subprocess.run([sys.executable, "-m", "mtpsurgeon", "inspect", str(path)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "200"}).stdout
    assert "1 tensors stored sparse" in text and "entry (subgraph 0" in text


def test_library_tensor_array_is_dense(tmp_path):
    """TFLiteModel.tensor_array, the library's value accessor, densifies too."""
    path, dense, _ = _build(tmp_path, "both_sparse", "f16", seed=7)
    model = open_file(path)
    arr = model.tensor_array(model.subgraphs[0].tensors[0])
    assert arr.shape == dense.shape
    np.testing.assert_array_equal(arr, K.run_interpreter(path))
