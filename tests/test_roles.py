"""Drafter weight roles come from dataflow, not names.

Ground truth for the torch fixture family is its torch parameter names (the
fixture generator names every weight after its parameter); the recogniser
must reproduce them without reading any name, so the same answer is required
after every tensor name is replaced.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mtpsurgeon.analysis import analyze
from mtpsurgeon.analysis.roles.from_dataflow import recognise
from mtpsurgeon.analysis.signatures import signature_io, subgraph_io
from mtpsurgeon.extract.hf_names import candidates
from mtpsurgeon.formats.open import open_file
from tests.renamekit import anonymous, converter_io, rewrite_names

FX = Path(__file__).resolve().parent.parent / "fixtures"
DRAFTERS = ["mtp_drafter.tflite", "mtp_drafter_blockwise.tflite", "mtp_drafter_f32.tflite"]


def _roles(path: Path) -> dict[int, str]:
    m = open_file(path)
    io = signature_io(m, m.signatures[0]) if m.signatures else subgraph_io(m, 0)
    rm = recognise(m, io)
    return {i: r.hf_name for i, r in rm.roles.items()}, rm, m


@pytest.mark.parametrize("name", DRAFTERS)
def test_roles_match_the_torch_parameter_names(name):
    roles, rm, m = _roles(FX / name)
    tensors = m.subgraphs[rm.subgraph].tensors
    assert len(roles) == 44 and not rm.unassigned
    for i, hf in roles.items():
        want = candidates(tensors[i].name)
        # The LM head is tied: the fixture stores it as embed_tokens.
        assert want == {hf}, (tensors[i].name, hf)
    assert rm.arch["num_layers"] == 4 and rm.arch["softcap"] == pytest.approx(30.0) and rm.arch["softcap_folded"]
    assert [b.layer_type for b in rm.blocks] == ["sliding_attention"] * 3 + ["full_attention"]


@pytest.mark.parametrize("name", DRAFTERS)
def test_roles_do_not_change_when_every_name_is_anonymous(tmp_path, name):
    want, _, _ = _roles(FX / name)
    anon = rewrite_names(FX / name, tmp_path / name, anonymous)
    got, rm, m = _roles(anon)
    assert got == want
    assert not any("layers" in t.name for t in m.subgraphs[0].tensors)


def _converter_named_unsigned(tmp_path: Path) -> Path:
    src = FX / "mtp_drafter.tflite"
    m = open_file(src)
    sg = m.subgraphs[0]
    return rewrite_names(src, tmp_path / "converter.tflite", converter_io(list(sg.inputs), list(sg.outputs)),
                         drop_signatures=True)


def test_unsigned_drafter_with_converter_names_is_found(tmp_path):
    path = _converter_named_unsigned(tmp_path)
    report = analyze(path, base=FX / "gemma4-mini.litertlm")
    kinds = [f.kind for f in report.findings]
    assert "no_signature" in kinds, kinds
    f = next(f for f in report.findings if f.kind == "no_signature")
    assert f.links_pass, [(c.name, c.expected, c.actual) for c in f.links if not c.passed]
    assert set(f.drafter.io.inputs) >= {"activations", "input_pos", "mask", "kv_cache_k_0", "kv_cache_v_1"}
    assert set(f.drafter.io.outputs) == {"logits", "projected_activations"}
    assert report.verdict.status == "hidden"


def test_restore_reexposes_converter_named_drafter_with_runtime_names(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    path = _converter_named_unsigned(tmp_path)
    out = tmp_path / "restored.tflite"
    r = subprocess.run([sys.executable, "-m", "mtpsurgeon", "restore", str(path), "--base",
                        str(FX / "gemma4-mini.litertlm"), "-o", str(out), "--no-dump"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr + r.stdout
    got = Interpreter(model_path=str(out)).get_signature_runner("mtp_drafter")
    ref = Interpreter(model_path=str(FX / "mtp_drafter.tflite")).get_signature_runner("mtp_drafter")
    assert set(got.get_input_details()) == set(ref.get_input_details())
    assert set(got.get_output_details()) == set(ref.get_output_details())
    rng = np.random.default_rng(0)
    feed = {}
    for name, d in ref.get_input_details().items():
        if d["dtype"] == np.bool_:
            feed[name] = rng.random(d["shape"]) > 0.3
        elif d["dtype"] == np.int32:
            feed[name] = np.full(d["shape"], 5, np.int32)
        else:
            feed[name] = rng.standard_normal(d["shape"]).astype(d["dtype"])
    a, b = got(**feed), ref(**feed)
    for k in b:
        np.testing.assert_array_equal(a[k], b[k])


def test_inspect_json_lists_each_weight_role():
    r = subprocess.run([sys.executable, "-m", "mtpsurgeon", "inspect", str(FX / "gemma4-mini.litertlm"), "--json"],
                       capture_output=True, text=True, check=True)
    data = json.loads(r.stdout)
    f = next(f for f in data["mtp"]["findings"] if f["kind"] == "drafter_section")
    roles = f["roles"]
    assert len(roles["weights"]) == 44 and roles["arch"]["vocab"] == 512
    assert {w["role"] for w in roles["weights"]} >= {"pre_projection", "lm_head", "final_norm", "layers.3.q_norm"}
    assert all(w["source"] == "dataflow" for w in roles["weights"])


def test_names_hf_maps_every_weight_of_an_anonymous_drafter(tmp_path):
    """No tensor name helps: 44/44 weights still get their gemma4_assistant names, from dataflow."""
    from safetensors.numpy import load_file

    anon = rewrite_names(FX / "mtp_drafter.tflite", tmp_path / "anon.tflite", anonymous)
    out = tmp_path / "hf"
    r = subprocess.run([sys.executable, "-m", "mtpsurgeon", "extract", str(anon), "-o", str(out), "--dtype", "f32",
                        "--names", "hf", "--no-models", "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = load_file(next(out.glob("*.safetensors")))
    ref_dir = tmp_path / "ref"
    subprocess.run([sys.executable, "-m", "mtpsurgeon", "extract", str(FX / "mtp_drafter.tflite"), "-o", str(ref_dir),
                    "--dtype", "f32", "--names", "hf", "--no-models"], capture_output=True, check=True)
    ref = load_file(next(ref_dir.glob("*.safetensors")))
    assert set(got) == set(ref) and len([k for k in got if not k.endswith("layer_scalar")]) == 44
    for k in ref:
        np.testing.assert_array_equal(got[k], ref[k])
    config = json.loads((out / "config.json").read_text())["text_config"]
    assert config["layer_types"] == ["sliding_attention"] * 3 + ["full_attention"]
    assert (config["head_dim"], config["global_head_dim"], config["final_logit_softcapping"]) == (32, 64, 30.0)


def out_of_order_anonymous(tmp_path: Path) -> Path:
    """The pruned drafter with every name anonymous and one q norm swapped with the block norm after it in the
    tensor table: the order no longer reads as a drafter's, in either direction."""
    from mtpsurgeon.formats.tflite.writer import tflite_bytes
    from mtpsurgeon.surgery.ir import Model

    m = Model.from_buffer((FX / "hidden" / "pruned-drafter.tflite").read_bytes())
    ts = m.graphs[0].tensors
    q = next(i for i, t in enumerate(ts) if t.shape == [1, 1, 32])
    n = next(i for i in range(q + 1, len(ts)) if ts[i].shape == [1, 1, 64])
    ts[q], ts[n] = ts[n], ts[q]
    swapped = tmp_path / "swapped.tflite"
    swapped.write_bytes(tflite_bytes(m))
    return rewrite_names(swapped, tmp_path / "pruned.tflite", anonymous)


def test_names_hf_refuses_a_partial_mapping(tmp_path):
    """Anonymous names and norms out of table order: cannot be mapped completely: exit 1, the list, nothing written."""
    anon = out_of_order_anonymous(tmp_path)
    out = tmp_path / "hf"
    r = subprocess.run([sys.executable, "-m", "mtpsurgeon", "extract", str(anon), "-o", str(out), "--dtype", "f32",
                        "--names", "hf", "--no-models"], capture_output=True, text=True)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "not mapped" in r.stderr and "Traceback" not in r.stderr
    assert not list(out.glob("*.safetensors")) and not (out / "config.json").exists()


def test_pruned_roles_come_from_shapes_and_names_and_refuse_ambiguity(tmp_path):
    """Pruned: the torch names place every weight; with anonymous names and the norms out of table order the
    matrices are still read off the table, the [D] norms are reported ambiguous, and the notes say why."""
    report = analyze(FX / "hidden" / "pruned-drafter.litertlm")
    ma = next(m for m in report.models if any(r.method == "shapes" for r in m.roles.values()))
    rm = next(r for r in ma.roles.values() if r.method == "shapes")
    tensors = ma.model.subgraphs[rm.subgraph].tensors
    assert len(rm.roles) == 44
    for i, role in rm.roles.items():
        assert candidates(tensors[i].name) == {role.hf_name}, (tensors[i].name, role.label)
    assert [b.layer_type for b in rm.blocks] == ["sliding_attention"] * 3 + ["full_attention"]

    rep = analyze(out_of_order_anonymous(tmp_path), base=FX / "gemma4-mini.litertlm")
    rm = next(r for m in rep.models for r in m.roles.values() if r.method == "shapes")
    kinds = {r.kind for r in rm.roles.values()}
    assert "input_layernorm" not in kinds and "q_norm" not in kinds and "q_proj" in kinds  # matrices still read
    assert any("ambiguous" in why for _, why in rm.unassigned)
    assert any("table order of the norm vectors read backward" in n for n in rm.notes)
