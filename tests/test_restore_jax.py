"""restore on the jax family's hiding places (JAX/TF names, converter-named I/O, RoPE, GQA, INT8 KV caches),
proven like the torch family's: interpreter outputs bit-identical to the ground-truth drafter
(the pruned drafter too, rebuilt through the emitter from its recognised roles),
litert-lm-builder reads the result, and the LiteRT-LM engine gives greedy text on == off with the
ground truth's own success rate (0.5-0.95 by construction, so a degraded drafter would show)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from conftest import FIXTURES
from test_restore_fixtures import assert_same_drafter, cli, drafter_outputs, engine, peek_sections, same_greedy, \
    section_bytes

from mtpsurgeon.analysis import analyze
from mtpsurgeon.formats.open import open_file
from mtpsurgeon.formats.tflite.writer import tflite_bytes
from mtpsurgeon.surgery.ir import Model

JAX = FIXTURES / "jax"
EXPECTED = json.loads((JAX / "expected.json").read_text())
DIMS = EXPECTED["model_dims"]
WEIGHTS = EXPECTED["drafter_weights"]
PROMPTS = JAX / "prompts.txt"
GROUND_TRUTH = (JAX / "mtp_drafter.tflite").read_bytes()


@pytest.fixture(scope="module")
def ground_truth_engine(tmp_path_factory):
    gt = tmp_path_factory.mktemp("gt") / "gemma4-mini.litertlm"  # the engine drops caches beside the model
    shutil.copy(JAX / "gemma4-mini.litertlm", gt)
    return engine(gt, "on", PROMPTS)


CASES = {
    "hidden/untagged-drafter.litertlm": [],
    "hidden/mistagged-drafter.litertlm": [],
    "hidden/unsigned-drafter.litertlm": [],
    "hidden/no-drafter.litertlm": ["--drafter", JAX / "mtp_drafter.tflite"],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_restored_jax_container(name, tmp_path, ground_truth_engine):
    src = JAX / name
    before = src.read_bytes()
    out = tmp_path / "restored.litertlm"
    cli("restore", src, "-o", out, *CASES[name])
    assert src.read_bytes() == before
    assert [t for t, _ in peek_sections(out)].count("tf_lite_mtp_drafter") == 1
    drafter = section_bytes(out, "tf_lite_mtp_drafter")
    assert set(drafter_outputs(drafter)) == {"logits", "projected_activations"}  # runtime names, whatever the tensors are called
    assert_same_drafter(drafter, GROUND_TRUTH)
    on, off = engine(out, "on", PROMPTS), engine(out, "off", PROMPTS)
    assert on["error"] is None and off["error"] is None and on["has_speculative_decoding_support"] is True
    assert same_greedy(on["texts"], off["texts"]) and same_greedy(ground_truth_engine["texts"], off["texts"])
    assert on["success_rates"] and on["success_rates"] == ground_truth_engine["success_rates"]
    assert all(0.5 <= r <= 0.95 for r in on["success_rates"]), on["success_rates"]


def outputs_at_positions(model_bytes: bytes, positions=(0, 5, 40, 100, 127)) -> list[dict[str, np.ndarray]]:
    """'mtp_drafter' on random activations and random INT8 caches at several positions (a causal mask each);
    ``param_tensor`` (which only the converter's drafter declares) gets (pos, 1, 0, ...)."""
    runner = Interpreter(model_content=model_bytes).get_signature_runner("mtp_drafter")
    details = runner.get_input_details()
    rng = np.random.default_rng(11)
    out = []
    for pos in positions:
        feed = {}
        for name, d in sorted(details.items()):
            shape, dtype = tuple(d["shape"]), np.dtype(d["dtype"])
            if name == "mask":
                feed[name] = (np.arange(shape[-1]) <= pos).reshape(shape)
            elif name == "input_pos":
                feed[name] = np.array([pos], np.int32)
            elif name == "param_tensor":
                feed[name] = np.array([pos, 1, 0, 0, 0, 0, 0], np.int32).reshape(shape)
            elif dtype == np.int8:
                feed[name] = rng.integers(-127, 128, shape).astype(np.int8)
            else:
                feed[name] = rng.standard_normal(shape).astype(dtype)
        out.append(runner(**feed))
    return out


def assert_bit_identical_drafters(got: bytes, want: bytes = GROUND_TRUTH) -> None:
    for a, b in zip(outputs_at_positions(got), outputs_at_positions(want)):
        assert set(a) == set(b) == {"logits", "projected_activations"}
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])


def test_pruned_jax_drafter_is_restored_bit_identical(tmp_path, ground_truth_engine):
    """Operators gone, norm scales anonymous: the roles come from shapes, names and the tensor table's order,
    the architecture from the base and the constants left; the emitter's graph re-uses every stored weight."""
    src = JAX / "hidden/pruned-drafter.litertlm"
    before = src.read_bytes()
    out = tmp_path / "restored.litertlm"
    p = cli("restore", src, "-o", out)
    assert src.read_bytes() == before
    assert "50 stored weights" in p.stdout and "sliding window 32 from the constants left" in p.stdout
    assert [t for t, _ in peek_sections(out)].count("tf_lite_mtp_drafter") == 1
    assert_bit_identical_drafters(section_bytes(out, "tf_lite_mtp_drafter"))
    on, off = engine(out, "on", PROMPTS), engine(out, "off", PROMPTS)
    assert on["error"] is None and off["error"] is None and on["has_speculative_decoding_support"] is True
    assert same_greedy(on["texts"], off["texts"])
    assert on["success_rates"] and on["success_rates"] == ground_truth_engine["success_rates"]


def test_pruned_jax_roles_come_from_table_order():
    r = analyze(JAX / "hidden/pruned-drafter.litertlm")
    (rm, ma), = [(rm, ma) for ma in r.models for rm in ma.roles.values()]
    tensors = ma.model.subgraphs[rm.subgraph].tensors
    got = {tensors[i].name: role for i, role in rm.roles.items()}
    assert set(got) == set(WEIGHTS) and not rm.unassigned
    for name, want in WEIGHTS.items():
        assert got[name].kind == "rope_table" if want["role"] == "rope_inv_freq" else got[name].hf_name == want["hf"]
    by_order = {n for n, role in got.items() if role.source == "order"}
    assert len(by_order) == 21 + 4  # the 17 block/final norms, 4 q norms and 4 layer scalars: anonymous
    assert all(n.startswith("jax2tf_arg_") for n in by_order)
    assert (rm.arch["eps"], rm.arch["softcap"], rm.arch["sliding_window"]) == (pytest.approx(1e-6), 30.0, 32)


def _pruned_variant(tmp_path, edit) -> Path:
    m = Model.from_buffer((JAX / "hidden/pruned-drafter.tflite").read_bytes())
    edit(m.graphs[0])
    out = tmp_path / "variant.tflite"
    out.write_bytes(tflite_bytes(m))
    return out


def test_norms_out_of_table_order_are_refused(tmp_path):
    """A q norm swapped with a block norm fits neither reading of the table: nothing is guessed or written."""
    def swap(g):
        names = [t.name for t in g.tensors]
        q = next(i for i, t in enumerate(g.tensors) if t.name.startswith("jax2tf_arg") and t.shape == [1, 1, 1, 32])
        n = next(i for i in range(q + 1, len(names)) if g.tensors[i].shape == [1, 1, 48])
        g.tensors[q], g.tensors[n] = g.tensors[n], g.tensors[q]
    src = _pruned_variant(tmp_path, swap)
    out = tmp_path / "out.tflite"
    p = cli("restore", src, "--base", JAX / "gemma4-mini.litertlm", "-o", out, expect=1)
    assert "cannot be placed" in p.stderr and "table order" in p.stderr and "Traceback" not in p.stderr
    assert not out.exists()


def test_a_window_the_constants_cannot_give_needs_the_config(tmp_path):
    """Without the window constant the rebuild refuses; the assistant's config.json supplies it."""
    src = _pruned_variant(tmp_path, lambda g: g.tensors.remove(
        next(t for t in g.tensors if t.shape == [1, 1, 1, 1] and t.buffer is not None
             and int(np.frombuffer(t.buffer.data, np.int32)[0]) == DIMS["sliding_window"])))
    out = tmp_path / "out.tflite"
    base = JAX / "gemma4-mini.litertlm"
    p = cli("restore", src, "--base", base, "-o", out, expect=1)
    assert "--config" in p.stderr and "window" in p.stderr and not out.exists()
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(EXPECTED["hf_assistant_config"]))
    p = cli("restore", src, "--base", base, "-o", out, "--config", cfg)
    assert "sliding window 32 from config.json" in p.stdout
    assert_bit_identical_drafters(out.read_bytes())


def test_rope_from_the_config_is_built_as_transformers_computes_it_or_refused(tmp_path):
    """Without stored RoPE tables the rebuild takes config.json's rope_parameters: the assistant's own give the
    ground truth; a rope_type the emitter does not build (yarn) is refused, not read as 'default'."""
    tables = {n for n, w in WEIGHTS.items() if w["role"] == "rope_inv_freq"}
    src = _pruned_variant(tmp_path, lambda g: [g.tensors.remove(t) for t in list(g.tensors) if t.name in tables])
    out, base = tmp_path / "out.tflite", JAX / "gemma4-mini.litertlm"
    cfg = EXPECTED["hf_assistant_config"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    cli("restore", src, "--base", base, "-o", out, "--config", tmp_path / "config.json")
    assert_same_drafter(out.read_bytes(), GROUND_TRUTH)
    cfg["text_config"]["rope_parameters"]["sliding_attention"]["rope_type"] = "yarn"
    (tmp_path / "yarn.json").write_text(json.dumps(cfg))
    p = cli("restore", src, "--base", base, "-o", tmp_path / "yarn.tflite", "--config", tmp_path / "yarn.json",
            expect=1)
    assert "rope_parameters.sliding_attention.rope_type is 'yarn'" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "yarn.tflite").exists()


def test_config_is_refused_where_nothing_is_rebuilt(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(EXPECTED["hf_assistant_config"]))
    p = cli("restore", JAX / "hidden/untagged-drafter.litertlm", "-o", tmp_path / "o.litertlm", "--config", cfg, expect=2)
    assert "--config" in p.stderr and "not used" in p.stderr


@pytest.mark.parametrize("family", ["jax", "torch"])
def test_pruned_drafter_without_any_names_is_recognised_and_restored(family, tmp_path):
    """Every tensor renamed to jax2tf_arg_N (with LiteRT's own flatbuffer tools): the matrices and the norms are
    placed by table order and shapes, RoPE tables by their values, layer scalars by theirs; the roles equal
    the named file's and the restored drafter equals the one restored from the named file."""
    from renamekit import anonymous, rewrite_names

    root = JAX if family == "jax" else FIXTURES
    named = root / "hidden/pruned-drafter.tflite"
    anon = rewrite_names(named, tmp_path / "anonymous.tflite", anonymous)
    base = root / "gemma4-mini.litertlm"

    def labels(path):
        (rm,) = [rm for ma in analyze(path, base=base).models for rm in ma.roles.values()]
        assert not rm.unassigned
        return {i: r.label for i, r in rm.roles.items()}

    assert labels(anon) == labels(named)
    outs = [tmp_path / "from-named.tflite", tmp_path / "from-anonymous.tflite"]
    for src, out in zip((named, anon), outs):
        cli("restore", src, "--base", base, "-o", out, "--no-dump")
    want, got = outputs_at_positions(outs[0].read_bytes()), outputs_at_positions(outs[1].read_bytes())
    for a, b in zip(got, want):
        for k in b:
            np.testing.assert_array_equal(a[k], b[k])
    if family == "jax":
        assert_bit_identical_drafters(outs[1].read_bytes())


def _base_with_orphaned_drafter() -> bytes:
    """The jax base model with the pruned drafter's tensors added to its graph as orphan constants."""
    base = Model.from_buffer((JAX / "base_prefill_decode.tflite").read_bytes())
    drafter = Model.from_buffer((JAX / "hidden/pruned-drafter.tflite").read_bytes())
    g = base.graphs[0]
    for t in drafter.graphs[0].tensors:
        g.add_constant(t.name, t.buffer.data, t.dtype, shape=t.shape, quantization=t.quantization)
    return tflite_bytes(base)


def test_drafter_orphaned_inside_the_base_becomes_a_new_section(tmp_path, ground_truth_engine):
    """The drafter's weights left as orphans in the base section of a container without a drafter: restore
    builds a new drafter section from them and leaves the base section byte for byte as it was."""
    from mtpsurgeon.formats.litertlm.writer import Replace, rewrite_container

    c = open_file(JAX / "hidden/no-drafter.litertlm")
    base_index = next(s.index for s in c.tflite_sections() if s.model_type == "tf_lite_prefill_decode")
    src = tmp_path / "orphaned.litertlm"
    rewrite_container(c, [Replace(base_index, _base_with_orphaned_drafter())], src)
    out = tmp_path / "restored.litertlm"
    p = cli("restore", src, "-o", out)
    assert "build a new 'tf_lite_mtp_drafter' section" in p.stdout
    before, after = peek_sections(src), peek_sections(out)
    assert after[: len(before)] == before and after[-1][0] == "tf_lite_mtp_drafter"
    assert_bit_identical_drafters(section_bytes(out, "tf_lite_mtp_drafter"))
    on = engine(out, "on", PROMPTS)
    assert on["error"] is None and on["success_rates"] == ground_truth_engine["success_rates"]


def test_a_base_model_is_never_replaced_by_its_orphaned_drafter(tmp_path):
    src = tmp_path / "base.tflite"
    src.write_bytes(_base_with_orphaned_drafter())
    out = tmp_path / "out.tflite"
    p = cli("restore", src, "-o", out, "--dry-run", expect=1)
    assert "share their model with live operators" in p.stderr and "--recipe" in p.stderr
    assert not out.exists()
