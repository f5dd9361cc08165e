"""build-drafter builds transformers' function of a config, or refuses it naming the field (issue 20, item 3).

Checkpoints are each family's own drafter written by ``extract --names hf`` (a faithful config), then edited
the way a user's checkpoint may differ. Oracles: transformers' forward of the edited folder
(``check_parity`` runs it against the built drafter in the LiteRT interpreter) and the LiteRT interpreter
running the original drafter.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import roundtripkit as R
from mtpsurgeon.analysis import analyze

FX = Path(__file__).resolve().parent.parent / "fixtures"
FAMILIES = {"torch": FX, "jax": FX / "jax"}
transformers = pytest.importorskip("transformers", reason="transformers is a test dependency")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Each family's float drafter as a --names hf folder (extracted once per module)."""
    out = {}
    for fam, fx in FAMILIES.items():
        hf = tmp_path_factory.mktemp(fam) / "hf"
        R.cli("extract", fx / "mtp_drafter_f32.tflite", "-o", hf, "--names", "hf", "--dtype", "f32", "--no-models")
        out[fam] = hf
    return out


def _edited(src: Path, dst: Path, edit_text=None, tensors=None) -> Path:
    """A copy of checkpoint ``src`` with ``edit_text(text_config)`` / ``tensors(dict)`` applied."""
    dst.mkdir()
    cfg = json.loads((src / "config.json").read_text())
    if edit_text:
        edit_text(cfg["text_config"])
    ws = load_file(str(src / "model.safetensors"))
    if tensors:
        tensors(cfg, ws)
    (dst / "config.json").write_text(json.dumps(cfg))
    save_file(ws, str(dst / "model.safetensors"))
    return dst


def _build(hf: Path, family: str, out: Path, ok: bool = True):
    return R.cli("build-drafter", hf, "--base", FAMILIES[family] / "gemma4-mini.litertlm", "-o", out,
                 "--quant", "f32", "--json", ok=ok)


def _parity(hf: Path, drafter: Path):
    from mtpsurgeon.extract.parity import check_parity

    roles = next(iter(analyze(drafter).models[0].roles.values()))
    return check_parity(hf, drafter, roles, samples=8)


def _set(key, value):
    return lambda tc: tc.__setitem__(key, value)


def _rope_type(rope_type):
    def edit(tc):
        for r in tc["rope_parameters"].values():
            r["rope_type"] = rope_type
    return edit


UNBUILDABLE = {
    "yarn RoPE": (_rope_type("yarn"), "rope_parameters.full_attention.rope_type"),
    "quick_gelu MLP": (_set("hidden_activation", "quick_gelu"), "hidden_activation"),
    "attention biases": (_set("attention_bias", True), "attention_bias"),
    "MoE block": (_set("enable_moe_block", True), "enable_moe_block"),
    "per-layer inputs": (_set("hidden_size_per_layer_input", 16), "hidden_size_per_layer_input"),
    "rotating more than the head": (lambda tc: tc["rope_parameters"]["full_attention"].update(
        rope_type="proportional", partial_rotary_factor=1e12), "rope_parameters.full_attention.partial_rotary_factor"),
    "a zero RoPE base": (lambda tc: tc["rope_parameters"]["full_attention"].update(rope_theta=0),
                         "rope_parameters.full_attention.rope_theta"),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("case", sorted(UNBUILDABLE))
def test_a_config_the_emitter_cannot_build_is_refused(tmp_path, checkpoints, family, case):
    edit, field = UNBUILDABLE[case]
    hf = _edited(checkpoints[family], tmp_path / "hf", edit)
    out = tmp_path / "d.tflite"
    r = _build(hf, family, out, ok=False)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert field in r.stderr and "nothing written" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not out.exists()


def test_the_refused_activation_really_computes_something_else(tmp_path, checkpoints):
    """The oracle for refusing rather than building GeGLU anyway: transformers' forward of the quick_gelu config
    is not the drafter's function."""
    hf = _edited(checkpoints["jax"], tmp_path / "hf", _set("hidden_activation", "quick_gelu"))
    res = _parity(hf, FX / "jax" / "mtp_drafter_f32.tflite")
    assert not res.passed() and res.logits_max_abs > 1e-2, res.per_position


@pytest.mark.parametrize("name", ["silu", "relu", "sigmoid"])
def test_gate_activations_are_built_as_transformers_computes_them(tmp_path, checkpoints, name):
    """The gates the emitter builds besides GELU: transformers' forward of the edited checkpoint is the oracle."""
    hf = _edited(checkpoints["jax"], tmp_path / "hf", _set("hidden_activation", name))
    out = tmp_path / "d.tflite"
    _build(hf, "jax", out)
    res = _parity(hf, out)
    assert res.passed(), res.per_position


def test_default_rope_ignores_factor_as_transformers_does(tmp_path, checkpoints):
    """jax sliding blocks use 'default' RoPE: a 'factor' there changes nothing in transformers, nor in the build."""
    def edit(tc):
        tc["rope_parameters"]["sliding_attention"]["factor"] = 4.0
        tc["rope_parameters"]["sliding_attention"]["partial_rotary_factor"] = 0.5
    hf = _edited(checkpoints["jax"], tmp_path / "hf", edit)
    out = tmp_path / "d.tflite"
    _build(hf, "jax", out)
    rows = R.compare(FX / "jax" / "mtp_drafter_f32.tflite", out, R.spread(128, 32, 10))
    assert max(r["logits_rel"] for r in rows) <= 1e-5 and all(r["top1"] for r in rows), rows
    assert _parity(hf, out).passed()


def test_linear_rope_is_built_as_transformers_computes_it(tmp_path, checkpoints):
    """'linear' divides the frequencies by factor: the build follows transformers, hence leaves the original."""
    def edit(tc):
        tc["rope_parameters"]["sliding_attention"] = {"rope_type": "linear", "rope_theta": 10000.0, "factor": 4.0}
    hf = _edited(checkpoints["jax"], tmp_path / "hf", edit)
    out = tmp_path / "d.tflite"
    _build(hf, "jax", out)
    res = _parity(hf, out)
    assert res.passed(), res.per_position
    far = [r for r in R.compare(FX / "jax" / "mtp_drafter_f32.tflite", out, [100, 120])]
    assert max(r["logits_rel"] for r in far) > 1e-3, far  # a different rotation: not the original function


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_an_untied_lm_head_is_the_one_used(tmp_path, checkpoints, family):
    """tie_word_embeddings false: transformers' logits come from lm_head.weight, so must the drafter's."""
    def untie(cfg, ws):
        cfg["tie_word_embeddings"] = False
        emb = ws["model.embed_tokens.weight"]
        ws["lm_head.weight"] = np.ascontiguousarray(emb[::-1] * 0.5)  # another head, same shape
    hf = _edited(checkpoints[family], tmp_path / "hf", tensors=untie)
    out = tmp_path / "d.tflite"
    _build(hf, family, out)
    res = _parity(hf, out)
    assert res.passed(), res.per_position
    rows = R.compare(FAMILIES[family] / "mtp_drafter_f32.tflite", out, [0, 50])
    assert max(r["logits_rel"] for r in rows) > 1e-2, rows  # not the tied head's logits


def test_an_untied_config_without_lm_head_is_refused(tmp_path, checkpoints):
    hf = _edited(checkpoints["torch"], tmp_path / "hf", tensors=lambda cfg, ws: cfg.update(tie_word_embeddings=False))
    r = _build(hf, "torch", tmp_path / "d.tflite", ok=False)
    assert r.returncode == 1 and "lm_head.weight (tie_word_embeddings false)" in r.stderr, r.stderr


def test_tensors_transformers_ignores_are_named_in_a_note(tmp_path, checkpoints):
    def extra(cfg, ws):
        ws["model.layers.0.self_attn.k_proj.weight"] = np.zeros((32, 64), np.float32)
    hf = _edited(checkpoints["torch"], tmp_path / "hf", tensors=extra)
    out = tmp_path / "d.tflite"
    notes = json.loads(_build(hf, "torch", out).stdout)["notes"]
    assert any("model.layers.0.self_attn.k_proj.weight" in n and "not read" in n for n in notes), notes
    rows = R.compare(FX / "mtp_drafter_f32.tflite", out, [0, 64, 127])
    assert max(r["logits_rel"] for r in rows) <= 1e-5, rows


HOSTILE = {
    "rope_parameters a list": (lambda tc: tc.__setitem__("rope_parameters", [1, 2]), "rope_parameters"),
    "a rope entry a string": (lambda tc: tc["rope_parameters"].__setitem__("full_attention", "x"), "rope_parameters"),
    "per_layer_config a list": (lambda tc: tc.__setitem__("per_layer_config", [1]), "per_layer_config"),
    "soft-cap a string": (_set("final_logit_softcapping", "x"), "final_logit_softcapping is 'x', not a finite number"),
    "epsilon a string": (_set("rms_norm_eps", "tiny"), "rms_norm_eps is 'tiny', not a finite number"),
    "window a string": (_set("sliding_window", "big"), "sliding_window is 'big', not an integer"),
    "theta a string": (lambda tc: tc["rope_parameters"]["full_attention"].__setitem__("rope_theta", "x"),
                       "rope_parameters.full_attention.rope_theta"),
    "text_config a string": (None, "text_config is not a JSON object"),
    "MLP width infinite": (_set("intermediate_size", float("inf")), "intermediate_size is 'inf', not an integer"),
    "epsilon NaN": (_set("rms_norm_eps", float("nan")), "rms_norm_eps is 'nan', not a finite number"),
    "a billion layers": (lambda tc: (tc.pop("layer_types"), tc.update(num_hidden_layers=10**9)),
                         "num_hidden_layers is 1000000000, for a checkpoint of"),
    "heads fractional": (_set("num_attention_heads", 2.5), "num_attention_heads is '2.5', not an integer"),
}


#: restore --config does not read num_hidden_layers (its layers are the file's)
BUILD_ONLY = {"a billion layers"}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_malformed_config_is_one_line_naming_the_field(tmp_path, checkpoints, case):
    """build-drafter and restore --config read config.json alike: exit 2, the file and the field, no traceback."""
    edit, says = HOSTILE[case]
    hf = _edited(checkpoints["jax"], tmp_path / "hf", edit)
    if edit is None:
        cfg = json.loads((hf / "config.json").read_text())
        (hf / "config.json").write_text(json.dumps({**cfg, "text_config": "abc"}))
    runs = [_build(hf, "jax", tmp_path / "d.tflite", ok=False)]
    if case not in BUILD_ONLY:
        runs.append(R.cli("restore", FX / "jax" / "hidden" / "pruned-drafter.tflite", "--base",
                          FX / "jax" / "gemma4-mini.litertlm", "-o", tmp_path / "r.tflite", "--config", hf / "config.json",
                          ok=False))
    for r in runs:
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and says in r.stderr and "config.json" in r.stderr, r.stderr
    assert not (tmp_path / "d.tflite").exists() and not (tmp_path / "r.tflite").exists()


def test_layer_types_follow_transformers(tmp_path):
    """transformers forces the last layer to full_attention, and without layer_types makes every 6th full."""
    from mtpsurgeon.surgery.drafter.buildable import default_layer_types

    cfg = transformers.Gemma4TextConfig(num_hidden_layers=13, layer_types=None)
    assert default_layer_types(13) == cfg.layer_types
    assert default_layer_types(4) == transformers.Gemma4TextConfig(num_hidden_layers=4, layer_types=None).layer_types


def test_a_last_sliding_layer_is_refused(tmp_path, checkpoints):
    def edit(tc):
        tc["layer_types"] = ["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"]
    hf = _edited(checkpoints["jax"], tmp_path / "hf", edit)
    r = _build(hf, "jax", tmp_path / "d.tflite", ok=False)
    assert r.returncode == 1 and "layer_types[-1]" in r.stderr and "forces the last layer" in r.stderr, r.stderr


def test_config_kv_heads_must_be_the_bases(tmp_path, checkpoints):
    hf = _edited(checkpoints["jax"], tmp_path / "hf", _set("num_key_value_heads", 7))
    r = _build(hf, "jax", tmp_path / "d.tflite", ok=False)
    assert r.returncode == 1 and "num_key_value_heads = the base's KV heads" in r.stderr, r.stderr


def _exact_gelu(src: Path, out: Path) -> Path:
    """``src`` with every MLP gate's GELU computing exact GELU (approximate = False)."""
    import inexpressiblekit as X

    edit = X.ObjectEdit(src)
    for op in X.gate_nonlinearities(X.load(src)):
        edit.sg.operators[op.index].builtinOptions.approximate = False
    return edit.save(out)


def _tanh_gates(src: Path, out: Path) -> Path:
    import inexpressiblekit as X

    return X.swap_nonlinearity(src, out, X.gate_nonlinearities(X.load(src)), "TANH")


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("gate, name", [(_exact_gelu, "gelu"), (_tanh_gates, "tanh")])
def test_another_gate_nonlinearity_round_trips(tmp_path, family, gate, name):
    """A drafter whose MLP gates compute exact GELU or tanh: extract names it, build-drafter builds it, and the
    rebuilt drafter computes the edited one's function (the interpreter runs both), not the GeGLU original's."""
    variant = gate(FAMILIES[family] / "mtp_drafter_f32.tflite", tmp_path / "variant.tflite")
    hf = tmp_path / "hf"
    R.cli("extract", variant, "-o", hf, "--names", "hf", "--dtype", "f32", "--no-models")
    assert json.loads((hf / "config.json").read_text())["text_config"]["hidden_activation"] == name
    out = tmp_path / "rebuilt.tflite"
    _build(hf, family, out)
    rows = R.compare(variant, out, R.spread(128, 32 if family == "jax" else None, 10))
    assert max(r["logits_rel"] for r in rows) <= 1e-5 and all(r["top1"] for r in rows), rows
    assert max(r["logits_rel"] for r in R.compare(FAMILIES[family] / "mtp_drafter_f32.tflite", out, [0, 60])) > 1e-6
