"""Rebuilding pruned operators from recipes (restore, hiding place d).

Oracles: the LiteRT interpreter runs the restored model and the ground-truth
fixture on the same random inputs (outputs must agree within 1e-5 relative —
in practice they are bit-identical, because the recipes mirror the
converter's op sequence); the LiteRT-LM engine runs the restored container
with speculative decoding. Failure paths: a recipe that does not bind, an
ambiguous binding, a missing base, a malformed recipe — clear errors,
nothing written, the IR untouched.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from conftest import FIXTURES

from mtpsurgeon.analysis import analyze
from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.formats.open import open_file
from mtpsurgeon.formats.tflite.writer import tflite_bytes
from mtpsurgeon.surgery.ir import Model
from mtpsurgeon.surgery.rebuild_ops import rebuild
from mtpsurgeon.surgery.recipe import (
    bind,
    builtin_recipes,
    default_recipe_for,
    interpolate,
    load_recipe,
    unify_shape,
    validate,
)

GT_DRAFTER = FIXTURES / "mtp_drafter.tflite"
GT_CONTAINER = FIXTURES / "gemma4-mini.litertlm"
PRUNED_DRAFTER = FIXTURES / "hidden" / "pruned-drafter.tflite"
PRUNED_CONTAINER = FIXTURES / "hidden" / "pruned-drafter.litertlm"
GT_HEADS = FIXTURES / "heads" / "parallel-heads.tflite"
PRUNED_HEADS = FIXTURES / "hidden" / "parallel-heads-pruned.tflite"
RECIPES = Path(__file__).resolve().parents[1] / "mtpsurgeon" / "surgery" / "recipes"
#: The litert-torch-shaped drafter recipe: a user recipe example (restore's default rebuild is the emitter's).
DRAFTER_RECIPE = Path(__file__).resolve().parents[1] / "docs" / "recipes" / "litert-torch-drafter.json"
REL_TOL = 1e-5

pytestmark = pytest.mark.skipif(not PRUNED_DRAFTER.exists() or not PRUNED_HEADS.exists(),
                                reason="fixtures not built (bash fixtures/build/build.sh)")


# ---------------------------------------------------------------------------- helpers
def cli(*args, expect=0):
    p = subprocess.run([sys.executable, "-m", "mtpsurgeon", *map(str, args)], capture_output=True, text=True,
                       timeout=300, check=False)
    assert p.returncode == expect, (p.returncode, p.stdout, p.stderr)
    return p


def random_feeds(runner, rng) -> dict[str, np.ndarray]:
    feeds = {}
    for name, d in runner.get_input_details().items():
        shape, dtype = tuple(d["shape"]), np.dtype(d["dtype"])
        if dtype == np.bool_:
            feeds[name] = rng.random(shape) < 0.7
        elif np.issubdtype(dtype, np.floating):
            feeds[name] = rng.standard_normal(shape).astype(dtype)
        elif name == "tokens":
            feeds[name] = rng.integers(0, 512, shape).astype(dtype)
        else:
            feeds[name] = rng.integers(0, 100, shape).astype(dtype)
    return feeds


def compare(truth: bytes, restored: bytes, key: str, trials: int = 4, seed: int = 0) -> dict[str, tuple[float, float]]:
    """Run signature ``key`` of both models on the same random inputs; (max abs, max rel) difference per output."""
    a = Interpreter(model_content=bytes(truth)).get_signature_runner(key)
    b = Interpreter(model_content=bytes(restored)).get_signature_runner(key)
    assert set(a.get_input_details()) == set(b.get_input_details())
    for name, d in a.get_input_details().items():
        e = b.get_input_details()[name]
        assert list(d["shape"]) == list(e["shape"]) and d["dtype"] == e["dtype"], name
    rng = np.random.default_rng(seed)
    worst: dict[str, tuple[float, float]] = {}
    for _ in range(trials):
        feeds = random_feeds(a, rng)
        want, got = a(**feeds), b(**feeds)
        assert set(want) == set(got)
        for k in want:
            assert want[k].shape == got[k].shape and want[k].dtype == got[k].dtype
            diff = float(np.max(np.abs(want[k].astype(np.float64) - got[k].astype(np.float64))))
            rel = diff / max(float(np.max(np.abs(want[k]))), 1e-30)
            old = worst.get(k, (0.0, 0.0))
            worst[k] = (max(old[0], diff), max(old[1], rel))
    return worst


def assert_close(worst: dict[str, tuple[float, float]], outputs: set[str]) -> None:
    assert outputs <= set(worst), (outputs, set(worst))
    for k, (diff, rel) in worst.items():
        print(f"  {k}: max abs diff {diff:.3g}, max rel diff {rel:.3g}")
        assert rel <= REL_TOL, (k, diff, rel)


def pruned_drafter_finding(base_path=GT_CONTAINER):
    report = analyze(PRUNED_DRAFTER, base=base_path)
    (f,) = [f for f in report.findings if f.kind == "pruned_ops"]
    return report, f


def recipe_json(name: str) -> dict:
    path = DRAFTER_RECIPE if name == "litert-torch-drafter" else RECIPES / f"{name}.json"
    return json.loads(path.read_text())


def section_bytes(path: Path, model_type: str) -> bytes:
    c = open_file(path)
    (s,) = [s for s in c.tflite_sections() if s.model_type == model_type]
    return bytes(c.section_bytes(s.index))


# ---------------------------------------------------------------------------- the format
def test_builtin_recipes_load_and_validate():
    assert builtin_recipes() == ["parallel-heads"]  # pruned drafters are rebuilt by the emitter, not a JSON recipe
    for name in builtin_recipes():
        r = load_recipe(name)
        assert r.name == name and r.applies_to in ("pruned_ops", "parallel_heads_pruned")
    assert load_recipe(str(DRAFTER_RECIPE)).applies_to == "pruned_ops"
    with pytest.raises(SurgeryError, match="recipe file"):
        default_recipe_for("pruned_ops")
    assert default_recipe_for("parallel_heads_pruned") == "parallel-heads"
    with pytest.raises(SurgeryError, match="recipe file"):
        default_recipe_for("named_orphans")


def test_recipe_file_by_path(tmp_path):
    p = tmp_path / "mine.json"
    p.write_text(json.dumps(recipe_json("parallel-heads")))
    assert load_recipe(str(p)).source == str(p)
    with pytest.raises(SurgeryError, match="unknown recipe"):
        load_recipe("no-such-recipe")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SurgeryError, match="not valid JSON"):
        load_recipe(str(bad))


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(format="other/9"), "'format' must be"),
    (lambda d: d.pop("signature"), "missing 'signature'"),
    (lambda d: d.update(extra=1), "unknown keys"),
    (lambda d: d["body"].append({"op": "NOT_AN_OP", "in": [], "out": "x"}), "not a TFLite builtin"),
    (lambda d: d["body"].append({"call": "nope", "out": "x"}), "unknown macro"),
    (lambda d: d["dims"].update(X="base.nonsense"), "unknown base field"),
    (lambda d: d["constants"].append({"name": "c", "dtype": "FLOAT99", "value": 1}), "unknown dtype"),
])
def test_malformed_recipes_are_rejected(edit, message):
    d = recipe_json("litert-torch-drafter")
    edit(d)
    with pytest.raises(SurgeryError, match=message):
        validate(d, "test.json")


def test_shape_expressions():
    assert unify_shape(["D", "2*H"], [64, 128], {"H": 64}) == {"D": 64}
    assert unify_shape(["D", "2*H"], [64, 128], {}) == {"D": 64, "H": 64}
    assert unify_shape(["D", "2*H"], [64, 127], {}) is None
    assert unify_shape(["D", "D"], [64, 32], {}) is None
    assert unify_shape([1, "*", "C", "hs"], [1, 2, 128, 32], {"C": 128}) == {"hs": 32}
    assert unify_shape(["V", "D"], [512], {}) is None
    assert interpolate("mtp_logits_{j+1}", {"j": 0}) == "mtp_logits_1"
    assert interpolate("layers.{N-1}.q_proj", {"N": 4}) == "layers.3.q_proj"


# ---------------------------------------------------------------------------- the drafter
def test_pruned_drafter_rebuilt_standalone_matches_ground_truth():
    report, finding = pruned_drafter_finding()
    ir = Model.from_tflite(report.file)
    lines: list[str] = []
    keys = rebuild(ir, report.file, finding, str(DRAFTER_RECIPE), report.base, report=lines)
    assert keys == ["mtp_drafter"]
    assert ir.signatures[0].key == "mtp_drafter"
    text = "\n".join(lines)
    assert "44 weight roles bound (44 by name, 0 by shape)" in text
    assert "0 orphan tensors left unbound" in text  # the 10 small constants are re-used, not copied
    restored = tflite_bytes(ir)
    gt = GT_DRAFTER.read_bytes()
    sig = Interpreter(model_content=restored).get_signature_list()["mtp_drafter"]
    assert sorted(sig["inputs"]) == sorted(Interpreter(model_content=gt).get_signature_list()["mtp_drafter"]["inputs"])
    assert_close(compare(gt, restored, "mtp_drafter"), {"logits", "projected_activations"})
    # same operator count as the converter's own graph
    assert len(ir.graphs[0].nodes) == len(Model.from_buffer(gt).graphs[0].nodes)


def test_pruned_drafter_base_can_be_the_prefill_decode_tflite():
    report, finding = pruned_drafter_finding(FIXTURES / "base_prefill_decode.tflite")
    ir = Model.from_tflite(report.file)
    rebuild(ir, report.file, finding, str(DRAFTER_RECIPE), report.base)
    assert_close(compare(GT_DRAFTER.read_bytes(), tflite_bytes(ir), "mtp_drafter", trials=2), {"logits"})


def test_pruned_drafter_inside_container_matches_ground_truth():
    report = analyze(PRUNED_CONTAINER)
    (finding,) = [f for f in report.findings if f.kind == "pruned_ops"]
    assert finding.section is not None
    model = report.file.model(finding.section)
    ir = Model.from_tflite(model)
    assert rebuild(ir, model, finding, str(DRAFTER_RECIPE), report.base) == ["mtp_drafter"]
    assert_close(compare(GT_DRAFTER.read_bytes(), tflite_bytes(ir), "mtp_drafter"), {"logits", "projected_activations"})


def prune_all_ops(model: bytes, dest: Path) -> Path:
    """``model`` with every operator, input, output and signature removed, constants kept (as the generator prunes)."""
    m = Model.from_buffer(model)
    g = m.graphs[0]
    g.nodes, g.inputs, g.outputs, m.signatures = [], [], [], []
    g.tensors = [t for t in g.tensors if t.is_constant]
    dest.write_bytes(tflite_bytes(m))
    return dest


@pytest.mark.parametrize("variant", ["mtp_drafter_blockwise.tflite", "mtp_drafter_f32.tflite"])
def test_other_quantizations_of_the_drafter_rebuild_too(variant, tmp_path):
    """Prune the INT4-blockwise and float twins the same way the fixture generator does, then rebuild."""
    truth = (FIXTURES / variant).read_bytes()
    pruned = prune_all_ops(truth, tmp_path / f"pruned-{variant}")
    report = analyze(pruned, base=GT_CONTAINER)
    (finding,) = [f for f in report.findings if f.kind == "pruned_ops"]
    ir = Model.from_tflite(report.file)
    rebuild(ir, report.file, finding, str(DRAFTER_RECIPE), report.base)
    assert_close(compare(truth, tflite_bytes(ir), "mtp_drafter", trials=2), {"logits", "projected_activations"})


def test_standalone_pruned_drafter_without_base_fails_clearly():
    report = analyze(PRUNED_DRAFTER)
    (finding,) = [f for f in report.findings if f.kind == "pruned_ops"]
    ir = Model.from_tflite(report.file)
    with pytest.raises(SurgeryError, match=r"--base") as exc:
        rebuild(ir, report.file, finding, str(DRAFTER_RECIPE), None)
    assert "C" in str(exc.value) and "cache_len" in str(exc.value)
    assert not ir.graphs[0].nodes and not ir.signatures and not ir.graphs[0].inputs


# ---------------------------------------------------------------------------- parallel heads
def test_pruned_parallel_heads_rebuilt_match_live_twin():
    report = analyze(PRUNED_HEADS)
    (finding,) = [f for f in report.findings if f.kind == "parallel_heads_pruned"]
    ir = Model.from_tflite(report.file)
    lines: list[str] = []
    keys = rebuild(ir, report.file, finding, "parallel-heads", report.base, report=lines)
    assert keys == ["decode"]
    assert list(ir.signature("decode").outputs) == ["logits", "mtp_logits_1", "mtp_logits_2"]
    assert any("dims: B=1, H=64, K=2, S=8, V=512" in line for line in lines)
    # the heads read the LM head's input: the hidden state after the final norm
    assert any("anchor 'hidden'" in line and "RMSNorm_norm" in line for line in lines)
    worst = compare(GT_HEADS.read_bytes(), tflite_bytes(ir), "decode")
    assert_close(worst, {"logits", "mtp_logits_1", "mtp_logits_2"})
    assert worst["logits"] == (0.0, 0.0)  # the base output is untouched


def test_ambiguous_binding_lists_candidates_and_changes_nothing():
    report = analyze(PRUNED_HEADS)
    (finding,) = [f for f in report.findings if f.kind == "parallel_heads_pruned"]
    d = recipe_json("parallel-heads")
    for w in d["weights"]:
        w["names"] = []  # as if the names had not survived: heads 0 and 1 look the same
    ir = Model.from_tflite(report.file)
    nodes, outs = len(ir.graphs[0].nodes), dict(ir.signature("decode").outputs)
    with pytest.raises(SurgeryError, match="ambiguous binding") as exc:
        rebuild(ir, report.file, finding, validate(d, "nameless.json"), None)
    msg = str(exc.value)
    assert "'mtp_heads.0.proj.weight'" in msg and "'mtp_heads.1.proj.weight'" in msg
    assert "heads.0.norm" in msg and "will not guess" in msg
    assert len(ir.graphs[0].nodes) == nodes and ir.signature("decode").outputs == outs


def test_binding_by_shape_when_names_do_not_survive():
    """A role whose name globs match nothing falls back to shape relations, and says so."""
    report, finding = pruned_drafter_finding()
    d = recipe_json("litert-torch-drafter")
    d["weights"][2]["names"] = ["lm_head_that_does_not_exist*"]  # embed_tokens [V, D]: unique shape [512, 64]
    b = bind(validate(d, "renamed.json"), Model.from_tflite(report.file), 0, finding, report.base)
    assert b.weights["embed_tokens"].name == "embed_tokens.weight"
    assert any("'embed_tokens' ← 'embed_tokens.weight'" in e and "by shape" in e for e in b.evidence)


def test_shape_only_drafter_binding_is_refused_as_ambiguous():
    """With D = H and I = 2H the fixture's drafter cannot be bound by shapes alone: refused, not guessed."""
    report, finding = pruned_drafter_finding()
    d = recipe_json("litert-torch-drafter")
    for w in d["weights"]:
        w["names"] = []
    d["dims"]["N"] = 4
    with pytest.raises(SurgeryError, match="ambiguous binding"):
        bind(validate(d, "nameless.json"), Model.from_tflite(report.file), 0, finding, report.base)


def test_recipe_that_does_not_bind_names_role_and_shape():
    report, finding = pruned_drafter_finding()
    d = recipe_json("litert-torch-drafter")
    d["weights"][0]["shape"] = ["D", "3*H"]
    ir = Model.from_tflite(report.file)
    with pytest.raises(SurgeryError, match=r"no orphan tensor fits weight role 'pre_projection' \[D, 3\*H=192\]") as exc:
        rebuild(ir, report.file, finding, validate(d, "wrong.json"), report.base)
    assert "'pre_projection.weight' INT4[64, 128]" in str(exc.value)
    assert not ir.graphs[0].nodes and not ir.signatures


def test_failing_body_rolls_back_nothing_staged():
    report, finding = pruned_drafter_finding()
    d = recipe_json("litert-torch-drafter")
    d["body"].append({"op": "ADD", "in": ["logits", "no_such_value"], "out": "x"})
    ir = Model.from_tflite(report.file)
    before = len(ir.graphs[0].tensors)
    with pytest.raises(SurgeryError, match="no value named 'no_such_value'"):
        rebuild(ir, report.file, finding, validate(d, "typo.json"), report.base)
    assert len(ir.graphs[0].tensors) == before and not ir.graphs[0].nodes and not ir.signatures


def test_wrong_kind_of_recipe_is_refused():
    report, finding = pruned_drafter_finding()
    with pytest.raises(SurgeryError, match="rebuilds 'parallel_heads_pruned'"):
        rebuild(Model.from_tflite(report.file), report.file, finding, "parallel-heads", report.base)


# ---------------------------------------------------------------------------- the CLI
def test_cli_restores_pruned_container_with_a_recipe_file(tmp_path):
    """`restore --recipe FILE` with a user-written copy of the built-in recipe; the section runs like the truth."""
    recipe = tmp_path / "my-drafter.json"
    recipe.write_text(json.dumps(recipe_json("litert-torch-drafter")))
    out = tmp_path / "restored.litertlm"
    before = PRUNED_CONTAINER.read_bytes()
    p = cli("restore", PRUNED_CONTAINER, "-o", out, "--recipe", recipe)
    assert "verify section 5 'mtp_drafter': ok" in p.stdout.replace("\n", " ")
    assert PRUNED_CONTAINER.read_bytes() == before
    assert_close(compare(GT_DRAFTER.read_bytes(), section_bytes(out, "tf_lite_mtp_drafter"), "mtp_drafter"),
                 {"logits", "projected_activations"})
    cli("restore", out, "-o", tmp_path / "again.litertlm")  # already complete: a no-op, exit 0
    assert not (tmp_path / "again.litertlm").exists()


def test_cli_restores_standalone_drafter_and_heads(tmp_path):
    out = tmp_path / "drafter.tflite"
    cli("restore", PRUNED_DRAFTER, "--base", GT_CONTAINER, "-o", out)
    assert_close(compare(GT_DRAFTER.read_bytes(), out.read_bytes(), "mtp_drafter", trials=2), {"logits"})
    heads = tmp_path / "heads.tflite"
    cli("restore", PRUNED_HEADS, "-o", heads)
    assert_close(compare(GT_HEADS.read_bytes(), heads.read_bytes(), "decode", trials=2), {"mtp_logits_1", "mtp_logits_2"})


def test_cli_recipe_that_does_not_bind_writes_nothing(tmp_path):
    d = recipe_json("litert-torch-drafter")
    d["weights"][0]["shape"] = ["D", "3*H"]
    recipe = tmp_path / "wrong.json"
    recipe.write_text(json.dumps(d))
    out = tmp_path / "out.litertlm"
    p = cli("restore", PRUNED_CONTAINER, "-o", out, "--recipe", recipe, expect=1)
    assert "pre_projection" in p.stderr and "3*H=192" in p.stderr
    assert not out.exists() and not out.with_suffix(".safetensors").exists()
    assert not [x for x in tmp_path.iterdir() if x.name != "wrong.json"]


def test_cli_standalone_without_base_writes_nothing(tmp_path):
    out = tmp_path / "out.tflite"
    p = cli("restore", PRUNED_DRAFTER, "-o", out, expect=2)
    assert "--base" in p.stderr and "Traceback" not in p.stderr
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------- the engine
PROBE = Path(__file__).with_name("fixture_engine_probe.py")


def _engine(path: Path, spec: str) -> dict:
    p = subprocess.run([sys.executable, str(PROBE), str(path), "--spec", spec, "--prompts-file",
                        str(FIXTURES / "prompts.txt")], capture_output=True, text=True, timeout=600, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not PROBE.exists(), reason="engine probe not present")
def test_engine_speculative_decoding_with_rebuilt_drafter(tmp_path):
    pytest.importorskip("litert_lm")
    out = tmp_path / "restored.litertlm"
    cli("restore", PRUNED_CONTAINER, "-o", out, "--no-dump")
    gt = tmp_path / "gt" / "gemma4-mini.litertlm"
    gt.parent.mkdir()
    shutil.copy(GT_CONTAINER, gt)
    truth, on, off = _engine(gt, "on"), _engine(out, "on"), _engine(out, "off")
    assert on["error"] is None and off["error"] is None and on["has_speculative_decoding_support"] is True
    for s, p in zip(on["texts"], off["texts"]):  # speculative output starts with the plain greedy output
        assert p.split() and s.split()[: len(p.split())] == p.split()
    assert on["success_rates"] and on["success_rates"] == truth["success_rates"]
    print("  MTP success rates:", on["success_rates"])
