"""Kernel-copied container rewrites: correct bytes, read by litert-lm-builder, hashes of what was written.

Containers here have a multi-MB filler section built by the official
litert-lm-builder, so unchanged sections really go through copy_file_range.
"""
from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from litert_lm_builder import litertlm_builder as B
from safetensors import safe_open

from conftest import FIXTURES
from fixture_oracles import builder_sections as oracle_sections
from mtpsurgeon.formats.copy import FileRange, copy_range, sha256_file
from mtpsurgeon.formats.litertlm.writer import Retag, rewrite_container
from mtpsurgeon.formats.open import open_file

DRAFTER = FIXTURES / "mtp_drafter.tflite"


def builder_sections(path: Path) -> list[tuple[str | None, bytes]]:
    """(model_type, bytes) per section, located by litert-lm-builder's own header reader."""
    out = oracle_sections(path)
    assert all(begin % (16 * 1024) == 0 for _, begin, _ in out)
    return [(model_type, data) for model_type, _, data in out]


@pytest.fixture(scope="module")
def big_no_drafter(tmp_path_factory) -> Path:
    """fixtures/hidden/no-drafter.litertlm plus a 6 MB random GenericBinaryData section, built by litert-lm-builder."""
    work = tmp_path_factory.mktemp("big")
    filler = work / "filler.bin"
    filler.write_bytes(hashlib.sha256(b"seed").digest() * (6 * 2**20 // 32) + b"tail")
    b = B.LitertLmFileBuilder.unpack(str(FIXTURES / "hidden/no-drafter.litertlm"), str(work / "unpacked"))
    b.add_generic_binary_data(str(filler))
    out = work / "big-no-drafter.litertlm"
    with open(out, "wb") as f:
        b.build(f)
    return out


def cli(*args):
    p = subprocess.run([sys.executable, "-m", "mtpsurgeon", *map(str, args)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, (p.stdout, p.stderr)
    return p


def test_graft_copies_sections_and_records_hashes(big_no_drafter, tmp_path):
    out = tmp_path / "grafted.litertlm"
    res = json.loads(cli("restore", big_no_drafter, "--drafter", DRAFTER, "-o", out, "--hash-input", "--json").stdout)
    before, after = builder_sections(big_no_drafter), builder_sections(out)
    assert after[:-1] == before  # every original section byte-identical, same tags
    assert after[-1] == ("tf_lite_mtp_drafter", DRAFTER.read_bytes())
    assert res["input_sha256"] == hashlib.sha256(big_no_drafter.read_bytes()).hexdigest()
    assert res["dumps"] == [str(out.with_suffix(".safetensors"))]
    with safe_open(res["dumps"][0], "np") as f:
        meta = f.metadata()
    # the drafter's sha256 was taken while it was written: equal to the bytes now in the output
    assert meta["mtpsurgeon.source_sha256"] == hashlib.sha256(after[-1][1]).hexdigest()


def test_retag_hashes_only_the_changed_section(tmp_path):
    src = FIXTURES / "hidden/untagged-drafter.litertlm"
    c = open_file(src)
    index = next(s.index for s in c.sections if s.is_tflite and s.model_type is None)
    out = tmp_path / "retagged.litertlm"
    res = rewrite_container(c, [Retag(index, set={"model_type": "tf_lite_mtp_drafter"})], out)
    before, after = builder_sections(src), builder_sections(out)
    assert [b for _, b in after] == [b for _, b in before]
    assert after[index][0] == "tf_lite_mtp_drafter"
    assert res.section_sha256[index] == hashlib.sha256(after[index][1]).hexdigest()
    assert [h for i, h in enumerate(res.section_sha256) if i != index] == [None] * (len(after) - 1)


def test_restore_retag_dump_records_the_written_section(tmp_path):
    src = FIXTURES / "hidden/untagged-drafter.litertlm"
    out = tmp_path / "r.litertlm"
    res = json.loads(cli("restore", src, "-o", out, "--json").stdout)
    assert res["input_sha256"] is None
    with safe_open(res["dumps"][0], "np") as f:
        meta = f.metadata()
    assert "mtpsurgeon.source_sha256" not in meta  # the container is hashed only on request
    drafter = dict(builder_sections(out))["tf_lite_mtp_drafter"]
    assert meta["mtpsurgeon.section_sha256"] == hashlib.sha256(drafter).hexdigest()


@pytest.mark.parametrize("buffered", [True, False])
def test_copy_range_between_buffered_writes(tmp_path, buffered):
    """Kernel copies and Python writes interleave at the right positions (or the bounded-buffer fallback does)."""
    src = tmp_path / "src.bin"
    data = bytes(range(256)) * 40000 + b"end"
    src.write_bytes(data)
    out = tmp_path / "out.bin"
    ranges = [(0, 1000), (12345, 3 * 2**20), (len(data) - 7, 7), (5, 0)]
    expected = b""
    with open(out, "wb") as f:
        for i, (off, n) in enumerate(ranges):
            f.write(b"<%d>" % i)
            expected += b"<%d>" % i
            digest = hashlib.sha256() if buffered else None
            assert copy_range(FileRange(src, off, n), f, digest=digest) == n
            expected += data[off : off + n]
            if digest is not None:
                assert digest.hexdigest() == hashlib.sha256(data[off : off + n]).hexdigest()
        f.write(b"!")
    assert out.read_bytes() == expected + b"!"
    sink = io.BytesIO()  # no file descriptor: the bounded-buffer path
    copy_range(FileRange(src, 12345, 2**20), sink)
    assert sink.getvalue() == data[12345 : 12345 + 2**20]
    assert sha256_file(src, 100, 2**21) == hashlib.sha256(data[100 : 100 + 2**21]).hexdigest()


def test_extract_section_hashes_once_and_container_only_on_request(big_no_drafter, tmp_path):
    src = FIXTURES / "gemma4-mini.litertlm"
    res = json.loads(cli("extract", src, "--section", "mtp_drafter", "--all", "-o", tmp_path / "a", "--json").stdout)
    model = res["models"][0]
    written = Path(model["path"]).read_bytes()
    assert written == DRAFTER.read_bytes()  # the fixture's drafter section, byte for byte
    assert model["sha256"] == model["section_sha256"] == hashlib.sha256(written).hexdigest()
    assert res["input_sha256"] is None
    with safe_open(res["dumps"][0]["path"], "np") as f:
        meta = f.metadata()
    assert meta["mtpsurgeon.section_sha256"] == model["sha256"] and "mtpsurgeon.source_sha256" not in meta
    res = json.loads(cli("extract", src, "--section", "mtp_drafter", "--all", "-o", tmp_path / "b", "--hash-input", "--json").stdout)
    assert res["input_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    with safe_open(res["dumps"][0]["path"], "np") as f:
        assert f.metadata()["mtpsurgeon.source_sha256"] == res["input_sha256"]
    # --section alone (the header-only path): the same section bytes and hashes, no dump
    res = json.loads(cli("extract", src, "--section", "mtp_drafter", "-o", tmp_path / "c", "--hash-input", "--json").stdout)
    assert res["dumps"] == [] and res["input_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert Path(res["models"][0]["path"]).read_bytes() == written
    assert res["models"][0]["sha256"] == res["models"][0]["section_sha256"] == model["sha256"]


@pytest.mark.parametrize("missing", [("copy_file_range",), ("copy_file_range", "sendfile")])
def test_copy_falls_back_when_the_kernel_refuses(tmp_path, monkeypatch, missing):
    """EXDEV/ENOSYS from copy_file_range → sendfile; both refused → one bounded buffer. Same bytes each way."""
    import errno
    import os

    def refuse(*args, **kwargs):
        raise OSError(errno.EXDEV, "refused for the test")

    for name in missing:
        monkeypatch.setattr(os, name, refuse)
    src = tmp_path / "src.bin"
    data = hashlib.sha256(b"x").digest() * 70000
    src.write_bytes(data)
    out = tmp_path / "out.bin"
    with open(out, "wb") as f:
        f.write(b"head")
        assert copy_range(FileRange(src, 100, 2_000_000), f) == 2_000_000
        f.write(b"tail")
    assert out.read_bytes() == b"head" + data[100:2_000_100] + b"tail"
