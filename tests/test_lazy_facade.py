"""Start-up stays light (the facade and the CLI verbs import on first use) and the API offers the scale features:
``hash_input``, streamed inspect documents and tensor rows. Real fixtures; hashes checked with hashlib."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

from safetensors import safe_open

import mtpsurgeon
import mtpsurgeon.api as api
from conftest import FIXTURES

HEAVY = ("numpy", "flatbuffers", "rich", "safetensors", "ai_edge_litert", "mtpsurgeon.api", "mtpsurgeon.formats")


def test_cli_start_up_imports_no_heavy_module():
    code = "import sys, mtpsurgeon.cli.main; print([m for m in %r if m in sys.modules])" % (HEAVY,)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert json.loads(out.replace("'", '"')) == []
    version = subprocess.run([sys.executable, "-m", "mtpsurgeon", "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and mtpsurgeon.__version__ in version.stdout


def test_every_exported_name_resolves_and_extract_stays_the_function():
    import mtpsurgeon.extract.dump  # noqa: F401  binds the subpackage as an attribute of its parent

    for name in mtpsurgeon.__all__:
        assert getattr(mtpsurgeon, name) is not None, name
    assert mtpsurgeon.extract is api.extract and callable(mtpsurgeon.extract)
    assert set(mtpsurgeon.__all__) <= set(dir(mtpsurgeon))


def test_api_extract_hashes_the_input_only_on_request(tmp_path):
    src = FIXTURES / "gemma4-mini.litertlm"
    plain = mtpsurgeon.extract(src, tmp_path / "a", section="mtp_drafter", select="all")
    assert plain.input_sha256 is None
    hashed = mtpsurgeon.extract(src, tmp_path / "b", section="mtp_drafter", select="all", hash_input=True)
    assert hashed.input_sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    with safe_open(hashed.dumps[0].path, "np") as f:
        assert f.metadata()["mtpsurgeon.source_sha256"] == hashed.input_sha256


def test_api_restore_records_the_written_section_hash(tmp_path):
    src = FIXTURES / "hidden/untagged-drafter.litertlm"
    res = mtpsurgeon.restore(src, tmp_path / "fixed.litertlm", hash_input=True)
    assert res.status == "restored" and res.input_sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    with safe_open(res.dumps[0], "np") as f:
        meta = f.metadata()
    section = int(meta["mtpsurgeon.section"])
    fixed = mtpsurgeon.open_file(tmp_path / "fixed.litertlm")
    try:
        assert meta["mtpsurgeon.section_sha256"] == hashlib.sha256(bytes(fixed.section_bytes(section))).hexdigest()
    finally:
        fixed.source.close()
    assert meta["mtpsurgeon.source_sha256"] == res.input_sha256


def test_streamed_documents_equal_the_materialised_ones():
    path = FIXTURES / "hidden/pruned-drafter.tflite"
    with api.inspect_json(path) as doc:
        assert not isinstance(doc["orphans"]["tensors"], list)
        streamed = json.loads(json.dumps(doc, default=list))
    assert streamed == mtpsurgeon.inspect(path).to_json()
    with api.tensor_rows(path, orphans=True) as rows:
        assert len(rows) and rows[0] == next(iter(rows))
        made = list(rows)
    assert made == [t.to_json() for t in mtpsurgeon.list_tensors(path, orphans=True)]
