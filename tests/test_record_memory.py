"""Compact TFLite records (issue 11: 200,000 tensors in bounded memory) keep the record API."""
from __future__ import annotations

import sys

import pytest

from conftest import FIXTURES
from mtpsurgeon import open_file
from mtpsurgeon.formats.tflite.records import BufferRecord, BufferTable, TensorRecord


@pytest.fixture(scope="module")
def base():
    c = open_file(FIXTURES / "gemma4-mini.litertlm")
    yield c.model(c.find("tf_lite_prefill_decode").index)
    c.source.close()


def test_indices_are_shared_int_objects(tmp_path):
    """An operator's input index is the very int object of the tensor's index (no per-reference ints)."""
    from modelkit import OP, Kit

    kit = Kit()
    sg = kit.subgraph()
    x = kit.tensor(sg, "x", [1, 4])
    sg.inputs = [x]
    for i in range(400):  # x -> ADD(c0) -> ADD(c1) -> ...: 801 tensors, 400 constants
        c = kit.tensor(sg, f"c{i}", [1, 4], data=bytes(16))
        y = kit.tensor(sg, f"y{i}", [1, 4])
        kit.op(sg, OP.ADD, [x, c], [y])
        x = y
    sg.outputs = [x]
    m = open_file(kit.save(tmp_path / "chain.tflite"))
    try:
        tensors = m.subgraphs[0].tensors
        big = [i for op in m.subgraphs[0].operators for i in op.inputs + op.outputs if i > 256]
        assert len(big) > 800
        assert all(i is tensors[i].index for i in big)  # smaller ints are cached by Python anyway
        assert all(op.index is tensors[op.index].index for op in m.subgraphs[0].operators if op.index > 256)
        assert [m.tensor_array(tensors[i]).tolist() for i in (3, 799)] == [[[0.0] * 4]] * 2
        assert all(m.has_data(tensors[i]) == (tensors[i].name.startswith("c")) for i in range(len(tensors)))
    finally:
        m.source.close()


def test_buffer_table_behaves_like_a_tuple_of_records(base):
    table = base.buffers
    assert isinstance(table, BufferTable)
    records = tuple(table)
    assert len(records) == len(table) and all(isinstance(r, BufferRecord) for r in records)
    assert [r.index for r in records] == list(range(len(table)))
    assert table[-1] == records[-1] and table[1:4] == records[1:4]
    assert table == records and BufferTable.of(records) == table and hash(BufferTable.of(records)) == hash(table)
    assert {r.storage for r in records} <= {"empty", "inline", "offset"}
    assert all(table.size(i) == r.size for i, r in enumerate(records))
    with pytest.raises(IndexError):
        table[len(table)]
    with pytest.raises(IndexError):
        table[-len(table) - 1]


def test_tensor_record_keeps_its_fields_and_constructor():
    from mtpsurgeon.formats.tflite.dtypes import DTYPES

    plain = TensorRecord(0, 300, "w", (2, 2), DTYPES[0], 5, None)
    same = TensorRecord(subgraph=0, index=300, name="w", shape=(2, 2), dtype=DTYPES[0], buffer=5, quantization=None,
                        is_variable=False, shape_signature=None, external_buffer=0, sparsity=None)
    assert plain == same and hash(plain) == hash(same)
    assert (plain.is_variable, plain.shape_signature, plain.external_buffer, plain.sparsity) == (False, None, 0, None)
    var = TensorRecord(0, 300, "w", (2, 2), DTYPES[0], 5, None, is_variable=True, shape_signature=(-1, 2), external_buffer=7)
    assert (var.is_variable, var.shape_signature, var.external_buffer) == (True, (-1, 2), 7) and var != plain
    assert "is_variable=True" in repr(var)
    with pytest.raises(AttributeError):
        plain.name = "x"
    assert sys.getsizeof(plain) <= 96  # 8 slots (was 11)
