"""The output policy and all-or-nothing output sets (mtpsurgeon/outputs.py)."""
from __future__ import annotations

import errno
import os

import pytest

from mtpsurgeon.errors import OutputError, OutputExistsError
from mtpsurgeon.outputs import OutputSet, atomic_output, check_output, is_partial, partial_name


def test_set_is_renamed_only_when_every_file_is_complete(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "sub" / "b.bin"
    with OutputSet() as outs:
        ta, tb = outs.add(a), outs.add(b)
        assert is_partial(ta) and is_partial(tb) and ta.parent == a.parent
        ta.write_bytes(b"a")
        tb.write_bytes(b"b")
        assert not a.exists() and not b.exists()
    assert a.read_bytes() == b"a" and b.read_bytes() == b"b" and not list(tmp_path.rglob(".*partial*"))


def test_failure_removes_every_temporary_file_and_new_folder(tmp_path):
    with pytest.raises(RuntimeError):
        with OutputSet() as outs:
            outs.add(tmp_path / "a.bin").write_bytes(b"a")
            outs.add(tmp_path / "new" / "deeper" / "b.bin").write_bytes(b"b")
            raise RuntimeError("second file failed verification")
    assert list(tmp_path.iterdir()) == []


def test_a_file_never_written_fails_the_set(tmp_path):
    with pytest.raises(OutputError, match="nothing was written"):
        with OutputSet() as outs:
            outs.add(tmp_path / "a.bin").write_bytes(b"a")
            outs.add(tmp_path / "b.bin")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space"), (errno.EFBIG, "too large"),
                                         (errno.EROFS, "read-only"), (errno.EDQUOT, "quota")])
def test_write_errors_become_one_line_naming_the_destination(tmp_path, code, words):
    out = tmp_path / "a.bin"
    with pytest.raises(OutputError) as info:
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"half")
            raise OSError(code, os.strerror(code))
    assert str(info.value).startswith(str(out)) and words in str(info.value) and "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_policy(tmp_path):
    src = tmp_path / "in.bin"
    src.write_bytes(b"input")
    existing = tmp_path / "old.bin"
    existing.write_bytes(b"old")
    with pytest.raises(OutputError, match="input"):
        check_output(src, force=True, inputs=[src])
    os.link(src, tmp_path / "hard.bin")
    with pytest.raises(OutputError, match="input"):
        check_output(tmp_path / "hard.bin", force=True, inputs=[src])
    (tmp_path / "link.bin").symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputError, match="symbolic link"):
        check_output(tmp_path / "link.bin", force=True)
    with pytest.raises(OutputExistsError):
        check_output(existing)
    assert check_output(existing, force=True) == existing
    with pytest.raises(OutputError, match="directory"):
        check_output(tmp_path, force=True)
    with pytest.raises(OutputError, match="not a directory"):
        check_output(src / "x" / "y.bin")
    with pytest.raises(OutputError, match="twice"):
        with OutputSet() as outs:
            outs.add(tmp_path / "same.bin")
            outs.add(tmp_path / "." / "same.bin")


def test_stale_partials_of_dead_processes_only(tmp_path):
    out = tmp_path / "a.bin"
    dead = partial_name(out, 4194000)
    alive = partial_name(out, os.getppid())  # a running process: maybe another writer, left alone
    other = partial_name(tmp_path / "b.bin", 4194000)  # another output's: not ours to remove
    for p in (dead, alive, other):
        p.write_bytes(b"x")
    with OutputSet() as outs:
        outs.add(out).write_bytes(b"a")
    assert outs.cleaned == [dead] and not dead.exists() and alive.exists() and other.exists()


def test_verification_runs_before_anything_is_moved(tmp_path):
    import numpy as np
    from safetensors.numpy import load_file

    from mtpsurgeon.formats.safetensors import SafetensorsWriter
    from mtpsurgeon.formats.safetensors.check import check_complete

    good, bad = tmp_path / "good.safetensors", tmp_path / "bad.safetensors"
    with pytest.raises(OutputError, match="incomplete safetensors"):
        with OutputSet() as outs:
            for p in (good, bad):
                w = SafetensorsWriter(outs.add(p, check_complete))
                w.add_array("x", np.arange(6, dtype=np.float32))
                w.write({"format": "np"})
            tmp = outs.files[1][1]
            tmp.write_bytes(tmp.read_bytes()[:-4])  # cut short, as a full disk would
    assert list(tmp_path.iterdir()) == []
    with OutputSet() as outs:
        w = SafetensorsWriter(outs.add(good, check_complete))
        w.add_array("x", np.arange(6, dtype=np.float32))
        w.write({"format": "np"})
    assert load_file(str(good))["x"].tolist() == list(range(6))
