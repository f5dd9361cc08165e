"""`extract --section S` alone: the header-only path (no analysis, no numpy), checked against the
official builder's reader, the LiteRT interpreter and hashlib."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest
from litert_lm_builder import litertlm_header_schema_py_generated as official

from conftest import FIXTURES
from mtpsurgeon import open_file
from mtpsurgeon.errors import MalformedFileError
from mtpsurgeon.formats.litertlm import schema

DRAFTER = FIXTURES / "mtp_drafter.tflite"
HEAVY = ("numpy", "flatbuffers", "rich", "safetensors", "ai_edge_litert", "mtpsurgeon.analysis",
         "mtpsurgeon.formats.tflite", "mtpsurgeon.extract.dump")


def cli(*args, expect=0):
    p = subprocess.run([sys.executable, "-m", "mtpsurgeon", *map(str, args)], capture_output=True, text=True, timeout=120)
    assert p.returncode == expect, p.stderr
    return p


def test_stored_code_tables_match_the_official_schema():
    def enum(cls):
        return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}

    assert schema.SECTION_TYPE_NAMES == enum(official.AnySectionDataType)
    assert schema.VDATA_NAMES == enum(official.VData)
    from mtpsurgeon.extract.section_out import TFLITE_IDENTIFIER
    from mtpsurgeon.formats.tflite.schema import FILE_IDENTIFIER

    assert TFLITE_IDENTIFIER == FILE_IDENTIFIER


def test_section_alone_loads_nothing_heavy(tmp_path):
    """The CLI's whole run, in-process: the heavy modules never load, and the bytes are the section's."""
    out = tmp_path / "out"
    code = ("import sys\nfrom mtpsurgeon.cli.main import cli\n"
            f"try:\n    cli([{str(FIXTURES / 'gemma4-mini.litertlm')!r}, '--section', 'mtp_drafter', '-o', {str(out)!r}],"
            " prog_name='mtpsurgeon')\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            f"print([m for m in sys.modules if m.startswith({HEAVY!r})], file=sys.stderr)\n")
    code = code.replace("cli([", "cli(['extract', ")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stderr.strip().splitlines()[-1] == "[]"
    (written,) = out.iterdir()
    assert written.read_bytes() == DRAFTER.read_bytes()
    assert hashlib.sha256(DRAFTER.read_bytes()).hexdigest()[:16] in p.stdout


def test_section_alone_runs_in_the_interpreter(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    res = json.loads(cli("extract", FIXTURES / "hidden/untagged-drafter.litertlm", "--section", "5", "-o", tmp_path,
                         "--json").stdout)
    (model,) = res["models"]
    assert model["path"].endswith(".section5.untagged.tflite") and res["dumps"] == []
    interp = Interpreter(model_path=model["path"])
    assert "mtp_drafter" in interp.get_signature_list()


def test_section_alone_refusals(tmp_path):
    p = cli("extract", DRAFTER, "--section", "0", "-o", tmp_path / "a", expect=2)
    assert "--section needs a .litertlm container" in p.stderr and "Traceback" not in p.stderr
    c = open_file(FIXTURES / "gemma4-mini.litertlm")
    try:
        other = next(s for s in c.sections if not s.is_tflite)
        drafter = c.find("tf_lite_mtp_drafter")
    finally:
        c.source.close()
    p = cli("extract", FIXTURES / "gemma4-mini.litertlm", "--section", other.index, "-o", tmp_path / "b", expect=2)
    assert f"section {other.index} is not a TFLite model" in p.stderr
    p = cli("extract", FIXTURES / "gemma4-mini.litertlm", "--section", "nope", "-o", tmp_path / "c", expect=2)
    assert "no section with model_type 'tf_lite_nope'" in p.stderr
    broken = tmp_path / "broken.litertlm"
    data = bytearray((FIXTURES / "gemma4-mini.litertlm").read_bytes())
    data[drafter.begin + 4 : drafter.begin + 8] = b"XXXX"
    broken.write_bytes(data)
    p = cli("extract", broken, "--section", "mtp_drafter", "-o", tmp_path / "d", expect=2)
    assert "missing 'TFL3' file identifier" in p.stderr and not (tmp_path / "d").exists()
    existing = tmp_path / "e"
    cli("extract", FIXTURES / "gemma4-mini.litertlm", "--section", "mtp_drafter", "-o", existing)
    p = cli("extract", FIXTURES / "gemma4-mini.litertlm", "--section", "mtp_drafter", "-o", existing, expect=1)
    assert "--force" in p.stderr


def test_corrupt_headers_fail_with_one_clear_error(tmp_path):
    """Every byte of the header flatbuffer overwritten in turn: a container or MalformedFileError, nothing else."""
    src = (FIXTURES / "gemma4-mini.litertlm").read_bytes()
    header_end = int.from_bytes(src[24:32], "little")
    path = tmp_path / "c.litertlm"
    outcomes = {"ok": 0, "malformed": 0}
    for pos in range(32, header_end, max(1, (header_end - 32) // 400)):
        for value in (0x00, 0xFF, 0x7F):
            data = bytearray(src)
            data[pos] = value
            path.write_bytes(data)
            try:
                c = open_file(path)
            except MalformedFileError:
                outcomes["malformed"] += 1
                continue
            c.source.close()
            outcomes["ok"] += 1
    assert outcomes["malformed"] > 0 and outcomes["ok"] > 0


def test_header_reader_matches_the_official_reader_on_every_fixture_container():
    from litert_lm_builder import litertlm_peek
    import io

    containers = sorted(FIXTURES.rglob("*.litertlm"))
    assert len(containers) >= 5
    for path in containers:
        meta = litertlm_peek.read_litertlm_header(str(path), io.StringIO())
        c = open_file(path)
        try:
            assert len(c.sections) == meta.SectionMetadata().ObjectsLength()
            for s in c.sections:
                o = meta.SectionMetadata().Objects(s.index)
                items = {litertlm_peek.kvp_to_dict(o.Items(j))["key"]: litertlm_peek.kvp_to_dict(o.Items(j))["value"]
                         for j in range(o.ItemsLength())}
                assert (s.data_type, s.begin, s.end, dict(s.items)) == (o.DataType(), o.BeginOffset(), o.EndOffset(), items)
                assert s.item_types == tuple(o.Items(j).ValueType() for j in range(o.ItemsLength()))
            sm = meta.SystemMetadata()
            official_system = [litertlm_peek.kvp_to_dict(sm.Entries(j)) for j in range(sm.EntriesLength())] if sm else []
            assert [k for k, _ in c.system_metadata] == [e["key"] for e in official_system]
            for (k, v), e in zip(c.system_metadata, official_system):
                assert v == e["value"] or (isinstance(v, float) and v == pytest.approx(e["value"])), k
        finally:
            c.source.close()


def test_llm_metadata_loads_without_the_builder_package_and_the_builder_still_imports_after():
    code = ("import sys\nfrom mtpsurgeon import open_file\n"
            f"c = open_file({str(FIXTURES / 'gemma4-mini.litertlm')!r})\n"
            "meta = c.llm_metadata\n"
            "print(meta['llm_model_type'], meta['max_num_tokens'], 'litert_lm_builder' in sys.modules, 'absl.app' in sys.modules)\n"
            "import litert_lm_builder\n"
            "from litert_lm_builder.runtime.proto import llm_metadata_pb2\n"
            "print(litert_lm_builder.LitertLmFileBuilder.__name__, llm_metadata_pb2.LlmMetadata is type(llm_metadata_pb2.LlmMetadata()))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["gemma4", "128", "False", "False", "LitertLmFileBuilder", "True"]
