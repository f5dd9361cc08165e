"""The streaming safetensors writer, checked with the safetensors package as oracle."""
from __future__ import annotations

import json

import numpy as np
import pytest
import safetensors
from safetensors.numpy import load_file

from mtpsurgeon.formats.safetensors import SafetensorsWriteError, SafetensorsWriter


def test_roundtrip_arrays_and_chunked_sources(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 5)).astype(np.float32)
    b = rng.integers(-100, 100, size=7).astype(np.int8)  # 7 bytes: later offsets are not aligned
    c = rng.integers(0, 1 << 40, size=(2, 2)).astype(np.int64)
    h = rng.standard_normal(4).astype(np.float16)
    path = tmp_path / "x.safetensors"
    w = SafetensorsWriter(path, chunk_bytes=8)  # tiny chunks: many writes per tensor
    w.add("a", "F32", a.shape, a.nbytes, lambda: (a[i : i + 1] for i in range(3)))  # row chunks
    w.add_array("b", b)
    w.add("c", "I64", c.shape, None, memoryview(c.tobytes()))
    w.add("h", "F16", h.shape, 8, lambda: iter([h[:1].tobytes(), h[1:]]))
    w.add_array("empty", np.zeros((0, 3), np.float32))
    size = w.write({"format": "np", "k": "v"})
    assert size == path.stat().st_size
    got = load_file(path)
    assert set(got) == {"a", "b", "c", "h", "empty"}
    np.testing.assert_array_equal(got["a"], a)
    np.testing.assert_array_equal(got["b"], b)
    np.testing.assert_array_equal(got["c"], c)
    np.testing.assert_array_equal(got["h"], h)
    assert got["empty"].shape == (0, 3)
    with safetensors.safe_open(path, framework="np") as f:
        assert f.metadata() == {"format": "np", "k": "v"}
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    assert (8 + n) % 8 == 0 and raw[8 + n - 1 : 8 + n] in (b" ", b"}")
    header = json.loads(raw[8 : 8 + n])
    assert [header[k]["data_offsets"] for k in ("a", "b", "c", "h")] == [[0, 60], [60, 67], [67, 99], [99, 107]]


def test_bf16_bytes_read_back_by_the_rust_loader(tmp_path):
    words = np.array([0x3F80, 0xC000, 0x7FC0], dtype=np.uint16)  # 1.0, -2.0, nan
    path = tmp_path / "b.safetensors"
    w = SafetensorsWriter(path)
    w.add("w", "BF16", (3,), 6, words)
    w.write()
    (name, info), = safetensors.deserialize(path.read_bytes())
    assert name == "w" and info["dtype"] == "BF16" and info["shape"] == [3]
    assert bytes(info["data"]) == words.tobytes()


def test_duplicate_and_inconsistent_declarations_are_refused(tmp_path):
    w = SafetensorsWriter(tmp_path / "x.safetensors")
    w.add("a", "F32", (2,), 8, b"\0" * 8)
    with pytest.raises(SafetensorsWriteError, match="duplicate"):
        w.add("a", "F32", (2,), 8, b"\0" * 8)
    with pytest.raises(SafetensorsWriteError, match="needs 8 bytes"):
        w.add("b", "F32", (2,), 7, b"\0" * 7)
    with pytest.raises(SafetensorsWriteError, match="dtype"):
        w.add("c", "F128", (2,), 32, b"\0" * 32)
    with pytest.raises(SafetensorsWriteError, match="__metadata__"):
        w.header({"n": 1})


@pytest.mark.parametrize("payload, problem", [(b"\0" * 7, "produced 7 bytes"), (b"\0" * 9, "more than 8")])
def test_a_source_with_the_wrong_size_fails(tmp_path, payload, problem):
    w = SafetensorsWriter(tmp_path / "x.safetensors")
    w.add("a", "F32", (2,), 8, lambda: iter([payload]))
    with pytest.raises(SafetensorsWriteError, match=problem):
        w.write()


def test_sources_are_read_lazily_one_at_a_time(tmp_path):
    calls = []

    def source(tag):
        def gen():
            calls.append(tag)
            yield np.full(2, len(calls), np.float32)
        return gen

    w = SafetensorsWriter(tmp_path / "x.safetensors")
    w.add("a", "F32", (2,), 8, source("a"))
    w.add("b", "F32", (2,), 8, source("b"))
    assert calls == []
    w.write()
    assert calls == ["a", "b"]
    got = load_file(tmp_path / "x.safetensors")
    assert got["a"].tolist() == [1, 1] and got["b"].tolist() == [2, 2]
