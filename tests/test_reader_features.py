"""Reader coverage for the less common schema features: external buffers, custom ops,
metadata entries, every TensorType, and corrupt external references."""
from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as fb

import modelkit
from mtpsurgeon import MalformedFileError, open_file
from mtpsurgeon.formats.tflite.dtypes import DTYPES


def _external_model(tmp_path, weights_name="weights.bin"):
    vals = np.arange(12, dtype=np.float32).reshape(3, 4)
    k = modelkit.Kit()
    sg = k.subgraph()
    t = k.tensor(sg, "ext.w", [3, 4])
    group = fb.ExternalBufferGroupT()
    group.name = weights_name
    ext = fb.ExternalBufferT()
    ext.id, ext.group, ext.offset, ext.length = 1, 0, 64, vals.nbytes
    k.model.externalBufferGroups, k.model.externalBuffers = [group], [ext]
    sg.tensors[t].externalBuffer = 1
    (tmp_path / "weights.bin").write_bytes(b"\0" * 64 + vals.tobytes())
    return k.save(tmp_path / "ext.tflite"), vals


def test_external_buffer_is_read_from_its_weights_file(tmp_path):
    path, vals = _external_model(tmp_path)
    model = open_file(path)
    t = model.tensor(0, 0)
    assert model.has_data(t) and model.records.external_buffers[0].group == "weights.bin"
    np.testing.assert_array_equal(model.tensor_array(t), vals)


def test_missing_external_weights_file_is_a_clear_error(tmp_path):
    path, _ = _external_model(tmp_path, weights_name="elsewhere.bin")
    model = open_file(path)
    with pytest.raises(MalformedFileError, match="elsewhere.bin"):
        model.tensor_bytes(model.tensor(0, 0))


def test_custom_op_and_metadata(tmp_path):
    k = modelkit.Kit()
    sg = k.subgraph()
    a = k.tensor(sg, "a", [2])
    b = k.tensor(sg, "b", [2])
    oc = fb.OperatorCodeT()
    oc.builtinCode, oc.deprecatedBuiltinCode, oc.customCode, oc.version = fb.BuiltinOperator.CUSTOM, 32, "MyFancyOp", 1
    k.model.operatorCodes.append(oc)
    op = fb.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [a], [b]
    op.customOptions = [1, 2, 3]
    sg.operators.append(op)
    sg.inputs, sg.outputs = [a], [b]
    md = fb.MetadataT()
    md.name, md.buffer = "min_runtime_version", k.buffer(b"1.5.0\0\0\0")
    k.model.metadata = [md]
    model = open_file(k.save(tmp_path / "custom.tflite"))
    assert model.subgraphs[0].operators[0].op_name == "MyFancyOp"
    assert model.records.metadata == (("min_runtime_version", md.buffer),)
    assert bytes(model.buffer_bytes(md.buffer)).startswith(b"1.5.0")


@pytest.mark.parametrize("code", sorted(DTYPES))
def test_every_tensor_type_round_trips_through_the_reader(tmp_path, code):
    d = DTYPES[code]
    k = modelkit.Kit()
    sg = k.subgraph()
    data = bytes(range(d.nbytes(6))) if d.bits else None
    k.tensor(sg, f"t_{d.name}", [2, 3], code, data)
    model = open_file(k.save(tmp_path / "t.tflite"))
    t = model.tensor(0, 0)
    assert t.dtype.name == d.name
    if data is not None:
        assert bytes(model.tensor_bytes(t)) == data
        arr = model.tensor_array(t, unpack=True)
        assert arr.shape == (2, 3)
