"""The .litertlm writer, checked by the official litert-lm-builder (and litert-lm-api)."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from litert_lm_builder import litertlm_builder as B
from litert_lm_builder import litertlm_peek

from mtpsurgeon.errors import OutputExistsError, SurgeryError
from mtpsurgeon.formats.litertlm.writer import (
    Add,
    Drop,
    Item,
    Replace,
    Retag,
    SectionSpec,
    rewrite_container,
    write_litertlm,
)
from mtpsurgeon.formats.open import open_file

BLOCK = 16 * 1024


def official(path: Path) -> dict:
    """Version, system metadata and sections as the official peek code reads them."""
    text = io.StringIO()
    meta = litertlm_peek.read_litertlm_header(str(path), text)
    data = path.read_bytes()
    sm = meta.SystemMetadata()
    system = [litertlm_peek.kvp_to_dict(sm.Entries(i)) for i in range(sm.EntriesLength())] if sm else []
    sections = []
    for i in range(meta.SectionMetadata().ObjectsLength()):
        s = meta.SectionMetadata().Objects(i)
        items = [litertlm_peek.kvp_to_dict(s.Items(j)) for j in range(s.ItemsLength())]
        sections.append({
            "data_type": s.DataType(), "begin": s.BeginOffset(), "end": s.EndOffset(), "items": items,
            "sha256": hashlib.sha256(data[s.BeginOffset() : s.EndOffset()]).hexdigest(),
        })
    return {"version": text.getvalue().splitlines()[0], "system": system, "sections": sections, "size": len(data)}


def model_types(view: dict) -> list:
    return [next((i["value"] for i in s["items"] if i["key"] == "model_type"), None) for s in view["sections"]]


def test_identity_rewrite_keeps_everything(tiny_container, tmp_path):
    out = tmp_path / "same.litertlm"
    rewrite_container(open_file(tiny_container), [], out)
    a, b = official(tiny_container), official(out)
    assert a["version"] == b["version"] and a["system"] == b["system"]
    for sa, sb in zip(a["sections"], b["sections"], strict=True):
        assert sb["begin"] % BLOCK == 0
        assert (sa["data_type"], sa["items"], sa["sha256"]) == (sb["data_type"], sb["items"], sb["sha256"])
    # same layout rules as the official builder: identical file
    assert out.read_bytes() == tiny_container.read_bytes()


def test_retag_shows_in_official_views(tiny_container, tmp_path):
    out = tmp_path / "retagged.litertlm"
    rewrite_container(open_file(tiny_container), [Retag(1, {"model_type": "tf_lite_mtp_drafter"})], out)
    a, b = official(tiny_container), official(out)
    assert model_types(b) == ["tf_lite_prefill_decode", "tf_lite_mtp_drafter"]
    assert [s["sha256"] for s in a["sections"]] == [s["sha256"] for s in b["sections"]]
    assert b["sections"][1]["items"][0]["value_type"] == "String"
    # the official builder unpacks it and sees the drafter
    builder = B.LitertLmFileBuilder.unpack(str(out), str(tmp_path / "unpacked"))
    assert "tf_lite_mtp_drafter" in (tmp_path / "unpacked" / "model.toml").read_text()
    assert builder is not None


def test_add_drop_replace_keep_untouched_sections(tiny_container, tiny_tflite, tmp_path):
    src = open_file(tiny_container)
    before = official(tiny_container)
    drafter = tiny_tflite.read_bytes()
    edits = [
        Drop(0),
        Add(SectionSpec.tflite(tiny_tflite, "tf_lite_mtp_drafter", [Item.of("note", 7, "UInt16")])),
        Add(SectionSpec("GenericBinaryData", [Item.of("name", "blob")], b"x" * 40000), before=0),
    ]
    out = tmp_path / "edited.litertlm"
    rewrite_container(src, edits, out)
    after = official(out)
    assert model_types(after) == [None, "tf_lite_aux", "tf_lite_mtp_drafter"]
    assert after["sections"][1]["sha256"] == before["sections"][1]["sha256"]
    assert after["sections"][2]["sha256"] == hashlib.sha256(drafter).hexdigest()
    assert after["sections"][2]["items"][1] == {"key": "note", "value": 7, "value_type": "UInt16"}
    assert all(s["begin"] % BLOCK == 0 for s in after["sections"])
    assert after["size"] == after["sections"][-1]["end"]
    # mtpsurgeon's reader agrees, and the TFLite section parses
    c = open_file(out)
    assert c.find("tf_lite_mtp_drafter").index == 2 and c.model(2).signature("serving_default")

    out2 = tmp_path / "replaced.litertlm"
    rewrite_container(open_file(out), [Replace(0, b"new bytes")], out2)
    after2 = official(out2)
    assert after2["sections"][0]["sha256"] == hashlib.sha256(b"new bytes").hexdigest()
    assert [s["sha256"] for s in after2["sections"][1:]] == [s["sha256"] for s in after["sections"][1:]]


def test_typed_items_and_system_metadata(tmp_path, tiny_tflite):
    items = [Item.of("model_type", "tf_lite_prefill_decode"), Item.of("i32", -5), Item.of("u64", 2**40, "UInt64"),
             Item.of("flag", True), Item.of("ratio", 0.5), Item.of("d", 0.25, "Double")]
    out = tmp_path / "typed.litertlm"
    res = write_litertlm([SectionSpec("TFLiteModel", items, tiny_tflite)], [Item.of("Authors", "me")], out, version=(1, 7, 0))
    view = official(out)
    assert view["version"] == "LiteRT-LM Version: 1.7.0"
    got = {i["key"]: (i["value"], i["value_type"]) for i in view["sections"][0]["items"]}
    assert got == {"model_type": ("tf_lite_prefill_decode", "String"), "i32": (-5, "Int32"), "u64": (2**40, "UInt64"),
                   "flag": (True, "Bool"), "ratio": (0.5, "Float32"), "d": (0.25, "Double")}
    assert view["system"] == [{"key": "Authors", "value": "me", "value_type": "String"}]
    assert res.sections[0][0] % BLOCK == 0 and res.size == out.stat().st_size
    # a retag of an existing typed item keeps its type
    out2 = tmp_path / "retyped.litertlm"
    rewrite_container(open_file(out), [Retag(0, {"u64": 3}, remove=("d",))], out2)
    got2 = {i["key"]: (i["value"], i["value_type"]) for i in official(out2)["sections"][0]["items"]}
    assert got2["u64"] == (3, "UInt64") and "d" not in got2


def test_stream_output_and_guards(tiny_container, tmp_path):
    src = open_file(tiny_container)
    bio = io.BytesIO()
    rewrite_container(src, [], bio)
    assert bio.getvalue() == tiny_container.read_bytes()
    other = tmp_path / "other.litertlm"
    other.write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        rewrite_container(src, [], other)
    assert other.read_bytes() == b"keep"
    with pytest.raises(SurgeryError, match="input container"):
        rewrite_container(src, [], tiny_container, force=True)
    with pytest.raises(SurgeryError, match="does not exist"):
        rewrite_container(src, [Drop(9)], tmp_path / "x.litertlm")
    assert not (tmp_path / "x.litertlm").exists()


def test_litert_lm_api_sees_the_drafter(tiny_container, tmp_path):
    litert_lm = pytest.importorskip("litert_lm")
    out = tmp_path / "drafter.litertlm"
    rewrite_container(open_file(tiny_container), [Retag(1, {"model_type": "tf_lite_mtp_drafter"})], out)
    try:
        info = litert_lm.ModelInfo(str(out))
        has = info.llm.has_speculative_decoding_support()
    except Exception as exc:  # tiny test containers lack LLM metadata
        pytest.skip(f"litert_lm.ModelInfo cannot describe the tiny container: {exc}")
    assert has is True
