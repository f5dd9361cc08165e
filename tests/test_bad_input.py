"""Bad input: one clear line naming the file, exit 2, no traceback, bounded time."""
from __future__ import annotations

import struct
import subprocess
import sys
import time

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as fb

import modelkit


def run_cli(*args, timeout=60):
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "mtpsurgeon", *map(str, args)], capture_output=True, text=True, timeout=timeout)
    return p, time.monotonic() - t0


def assert_one_line_error(path, *args):
    p, seconds = run_cli("inspect", path, *args)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert str(path) in lines[0]
    assert "Traceback" not in p.stderr
    assert seconds < 30
    return lines[0]


def test_missing_file(tmp_path):
    assert "cannot open" in assert_one_line_error(tmp_path / "nope.tflite")


def test_empty_and_random(tmp_path):
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    assert "empty" in assert_one_line_error(empty)
    noise = tmp_path / "noise.bin"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    assert "not a .tflite or .litertlm" in assert_one_line_error(noise)


@pytest.mark.parametrize("keep", [9, 40, 200, 500])
def test_truncated_tflite(tmp_path, tiny_tflite, keep):
    data = tiny_tflite.read_bytes()
    bad = tmp_path / "trunc.tflite"
    bad.write_bytes(data[:keep])
    assert_one_line_error(bad)


@pytest.mark.parametrize("keep", [20, 31, 100, 20000])
def test_truncated_container(tmp_path, tiny_container, keep):
    data = tiny_container.read_bytes()
    bad = tmp_path / "trunc.litertlm"
    bad.write_bytes(data[:keep])
    assert_one_line_error(bad)


def test_container_wrong_major_version(tmp_path, tiny_container):
    data = bytearray(tiny_container.read_bytes())
    struct.pack_into("<I", data, 8, 7)
    bad = tmp_path / "v7.litertlm"
    bad.write_bytes(data)
    assert "major version 7" in assert_one_line_error(bad)


def test_section_past_end(tmp_path, tiny_container):
    data = tiny_container.read_bytes()
    bad = tmp_path / "cut.litertlm"
    bad.write_bytes(data[: len(data) - 100])
    assert "outside" in assert_one_line_error(bad)


def _mutated_model(tmp_path, mutate):
    model = fb.ModelT.InitFromPackedBuf(modelkit.tiny_fc_model(tmp_path / "base.tflite").read_bytes(), 0)
    mutate(model)
    k = modelkit.Kit()
    k.model = model
    return k.save(tmp_path / "mutated.tflite")


def test_unknown_tensor_type(tmp_path):
    path = _mutated_model(tmp_path, lambda m: setattr(m.subgraphs[0].tensors[0], "type", 99))
    assert "unknown tensor type 99" in assert_one_line_error(path)


def test_unknown_builtin_operator(tmp_path):
    def mutate(m):
        m.operatorCodes[0].builtinCode = 4000
    assert "unknown builtin operator 4000" in assert_one_line_error(_mutated_model(tmp_path, mutate))


def test_buffer_index_out_of_range(tmp_path):
    path = _mutated_model(tmp_path, lambda m: setattr(m.subgraphs[0].tensors[1], "buffer", 77))
    assert "buffer index 77" in assert_one_line_error(path)


def test_offset_buffer_past_end(tmp_path):
    def mutate(m):
        m.buffers[1].data = None
        m.buffers[1].offset, m.buffers[1].size = 1 << 40, 12
    assert "past the end" in assert_one_line_error(_mutated_model(tmp_path, mutate))


def test_huge_vector_length_is_rejected_fast(tmp_path, tiny_tflite):
    """A corrupt vector length must not make the parser loop for billions of entries."""
    data = bytearray(tiny_tflite.read_bytes())
    model = fb.Model.GetRootAs(data, 0)
    tab = model._tab
    vec = tab.Vector(tab.Offset(12))  # buffers vector
    struct.pack_into("<I", data, vec - 4, 0x7FFFFFFF)
    bad = tmp_path / "huge.tflite"
    bad.write_bytes(data)
    assert "overruns" in assert_one_line_error(bad)


def test_debug_shows_traceback(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x10\x00\x00\x00TFL3" + b"\xff" * 8)
    p, _ = run_cli("--debug", "inspect", bad)
    assert p.returncode != 0 and "Traceback" in p.stderr


@pytest.mark.parametrize("verb", ["extract", "restore"])
def test_every_verb_rejects_bad_input_in_one_line(tmp_path, verb):
    noise = tmp_path / "noise.litertlm"
    noise.write_bytes(b"LITERTLM" + np.random.default_rng(1).bytes(100))
    out = tmp_path / "out"
    p, _ = run_cli(verb, noise, "-o", out)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and str(noise) in p.stderr
    assert "Traceback" not in p.stderr and not out.exists()
