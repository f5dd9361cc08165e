"""The reader on every fixture against ai-edge-litert's own tools: flatbuffer_utils.read_model
(tensor names, shapes, types, quantization, weight bytes) and the interpreter's tensor details."""
from __future__ import annotations

import json

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from ai_edge_litert.tools import flatbuffer_utils

from conftest import FIXTURES
from mtpsurgeon import open_file

TFLITES = sorted(n for n, v in json.loads((FIXTURES / "expected.json").read_text())["files"].items() if v["format"] == "tflite")


def _name(x) -> str:
    return x.decode() if isinstance(x, bytes) else (x or "")


@pytest.mark.parametrize("name", TFLITES)
def test_tensors_match_flatbuffer_utils(name):
    ours = open_file(FIXTURES / name)
    theirs = flatbuffer_utils.read_model(str(FIXTURES / name))
    assert len(ours.subgraphs) == len(theirs.subgraphs)
    for sg, tsg in zip(ours.subgraphs, theirs.subgraphs):
        assert len(sg.tensors) == len(tsg.tensors)
        assert len(sg.operators) == len(tsg.operators or [])
        for t, tt in zip(sg.tensors, tsg.tensors):
            assert t.name == _name(tt.name)
            assert list(t.shape) == list(tt.shape if tt.shape is not None else [])
            assert t.dtype.code == tt.type
            q = tt.quantization
            if q is not None and q.scale is not None and len(q.scale):
                np.testing.assert_array_equal(t.quantization.scale, np.asarray(q.scale, np.float32))
                np.testing.assert_array_equal(t.quantization.zero_point, np.asarray(q.zeroPoint, np.int64))
                assert t.quantization.quantized_dimension == q.quantizedDimension
            # read_model renumbers buffers, so compare bytes, not indices
            data = theirs.buffers[tt.buffer].data
            if data is not None and len(data):
                assert bytes(ours.tensor_bytes(t)) == np.asarray(data, np.uint8).tobytes()


@pytest.mark.parametrize("name", [n for n in TFLITES if "pruned" not in n])
def test_subgraph0_matches_interpreter_tensor_details(name):
    ours = open_file(FIXTURES / name).subgraphs[0].tensors
    details = Interpreter(model_path=str(FIXTURES / name)).get_tensor_details()
    by_index = {d["index"]: d for d in details}
    compared = 0
    for t in ours:
        d = by_index.get(t.index)
        if d is None:  # the interpreter hides some internal tensors
            continue
        assert d["name"] == t.name
        assert tuple(d["shape"]) == t.shape
        compared += 1
    assert compared >= len(ours) // 2
