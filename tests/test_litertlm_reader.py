"""The container reader against the official litert-lm-builder."""
from __future__ import annotations

import hashlib
import io

from litert_lm_builder import litertlm_core
from litert_lm_builder import litertlm_peek

from mtpsurgeon import open_file
from mtpsurgeon.formats.litertlm import LiteRTLMContainer


def _official_sections(path):
    """Sections as the official litert-lm-builder peek code reads them."""
    meta = litertlm_peek.read_litertlm_header(str(path), io.StringIO())
    out = []
    for i in range(meta.SectionMetadata().ObjectsLength()):
        s = meta.SectionMetadata().Objects(i)
        items = {}
        for j in range(s.ItemsLength()):
            kv = litertlm_peek.kvp_to_dict(s.Items(j))
            items[kv["key"]] = kv["value"]
        out.append((s.DataType(), s.BeginOffset(), s.EndOffset(), items))
    return path.read_bytes(), out


def test_sections_match_official_schema(tiny_container):
    c = open_file(tiny_container)
    assert isinstance(c, LiteRTLMContainer)
    data, official = _official_sections(tiny_container)
    assert c.version[0] == litertlm_core.LITERTLM_MAJOR_VERSION
    assert len(c.sections) == len(official)
    for s, (dt, begin, end, items) in zip(c.sections, official):
        assert (s.data_type, s.begin, s.end) == (dt, begin, end)
        assert dict(s.items) == items
        assert s.aligned
        assert c.section_sha256(s.index) == hashlib.sha256(data[begin:end]).hexdigest()
    assert [s.model_type for s in c.sections] == ["tf_lite_prefill_decode", "tf_lite_aux"]
    assert dict(c.system_metadata)["Authors"] == "mtpsurgeon tests"


def test_tflite_section_parsed_in_place(tiny_container, tiny_tflite):
    c = open_file(tiny_container)
    m = c.model(0)
    assert m.offset == c.sections[0].begin
    standalone = open_file(tiny_tflite)
    assert [t.name for t in m.tensors()] == [t.name for t in standalone.tensors()]
    w = m.tensor(0, 1)
    assert bytes(m.tensor_bytes(w)) == bytes(standalone.tensor_bytes(standalone.tensor(0, 1)))
    assert m.sha256() == hashlib.sha256(tiny_tflite.read_bytes()).hexdigest()
