"""inspect on every fixture of both families gives exactly the answers their expected.json records.

expected.json is written by the fixture generator from what it hid (it never
imports mtpsurgeon), so this compares our analysis with an independent truth:
fixtures/expected.json for the torch family (litert-torch names), and
fixtures/jax/expected.json for the jax family (JAX/TF export names, anonymous
norms, converter-named I/O, RoPE, GQA, INT8 KV caches).
"""
from __future__ import annotations

import json

import pytest

from conftest import FIXTURES
from mtpsurgeon.analysis import analyze

FAMILIES = {"torch": FIXTURES, "jax": FIXTURES / "jax"}
#: "family:relative/name" → expected entry
EXPECTED = {f"{fam}:{name}": entry for fam, root in FAMILIES.items()
            for name, entry in json.loads((root / "expected.json").read_text())["files"].items()}


def _expected_models(entry: dict) -> list[dict]:
    """Per-model expectations: a .tflite is one model, a container one per TFLite section."""
    if entry["format"] == "tflite":
        return [dict(entry, section=None)]
    return [dict(m, section=int(k)) for k, m in entry["models"].items()]


def _report(name: str):
    fam, _, rel = name.rpartition(":")
    return analyze(FAMILIES[fam or "torch"] / rel)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_verdict_and_hiding_place(name):
    exp = EXPECTED[name]["mtp"]
    r = _report(name)
    assert r.verdict.status == exp["verdict"], r.verdict.summary
    kinds = {f.kind for f in r.findings if f.hidden or f.kind == "section_missing"}
    if exp["hiding"] is None:
        assert kinds == set()
    else:
        assert kinds == {exp["hiding"]}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_orphans_exactly(name):
    r = _report(name)
    ours = {m.section_index: m for m in r.models}
    for exp in _expected_models(EXPECTED[name]):
        ma = ours[exp.get("section")]
        assert {(t.subgraph, t.index, t.name) for t in ma.orphans.tensors} == {
            (t["subgraph"], t["tensor"], t["name"]) for t in exp["orphan_tensors"]}
        assert set(ma.orphans.buffers) == set(exp["orphan_buffers"])
        assert {s.index for s in ma.orphans.subgraphs} == set(exp["orphan_subgraphs"])


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if EXPECTED[n]["format"] == "litertlm"))
def test_sections_match(name):
    r = _report(name)
    exp = EXPECTED[name]["sections"]
    assert [(s.index, s.data_type_name, s.model_type, s.size) for s in r.file.sections] == [
        (s["index"], s["data_type"], s["model_type"], s["size"]) for s in exp]
    for s in exp:
        assert r.file.section_sha256(s["index"]) == s["sha256"]


def test_pruned_drafter_weights_are_all_mtp():
    r = _report("hidden/pruned-drafter.tflite")
    (f,) = [f for f in r.findings if f.kind == "pruned_ops"]
    expected = set(EXPECTED["torch:hidden/pruned-drafter.tflite"]["mtp"]["details"]["weight_tensors"])
    assert {t.name for t in f.tensors} == expected
    assert f.dims == {"D": 64, "H": 64}


def test_parallel_heads_weights_tied():
    r = _report("hidden/parallel-heads-pruned.tflite")
    (f,) = [f for f in r.findings if f.kind == "parallel_heads_pruned"]
    details = EXPECTED["torch:hidden/parallel-heads-pruned.tflite"]["mtp"]["details"]
    assert {t.name for t in f.tensors} == set(details["head_weights"])
    assert f.dims["heads"] == len(details["removed_outputs"])


def test_link_checks_pass_on_ground_truth_and_fail_on_mismatch(tmp_path):
    r = _report("gemma4-mini.litertlm")
    (f,) = [f for f in r.findings if f.kind == "drafter_section"]
    assert f.links and all(c.passed for c in f.links)
    dims = json.loads((FIXTURES / "expected.json").read_text())["model_dims"]
    assert r.base.hidden == dims["H"] and r.base.vocab == dims["V"] and r.base.cache_len == dims["C"]
    assert r.base.verify_len - 1 == dims["draft_steps"]
    # The standalone drafter checked against the parallel-heads base (no verify, no KV caches) fails loudly.
    bad = analyze(FIXTURES / "mtp_drafter.tflite", base=FIXTURES / "heads/parallel-heads.tflite")
    (d,) = [f for f in bad.findings if f.kind == "drafter_model"]
    failed = {c.name for c in d.links if not c.passed}
    assert "base has a 'verify' signature" in failed
    assert any(n.startswith("KV input") for n in failed)
