"""build-drafter round trip on the jax fixture family (RoPE from the config, GQA, sliding window beyond the
cache's first 32 positions, INT8 KV caches): `extract --names hf` of the ground truth → build-drafter →
graft into the container without a drafter. Oracles: the LiteRT interpreter against the converter's float
drafter, and the LiteRT-LM engine's greedy text and success rate against the ground truth's."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import FIXTURES
from test_restore_fixtures import cli, engine, same_greedy, section_bytes
from test_restore_jax import outputs_at_positions

JAX = FIXTURES / "jax"
PROMPTS = JAX / "prompts.txt"


def _checkpoint(source, tmp_path_factory):
    out = tmp_path_factory.mktemp("jaxck") / "assistant"
    cli("extract", source, "--names", "hf", "--dtype", "f32", "-o", out)
    return out


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return _checkpoint(JAX / "gemma4-mini.litertlm", tmp_path_factory)


@pytest.fixture(scope="module")
def float_checkpoint(tmp_path_factory):
    return _checkpoint(JAX / "mtp_drafter_f32.tflite", tmp_path_factory)


def test_f32_build_equals_the_converters_float_drafter(float_checkpoint, tmp_path):
    out = tmp_path / "f32.tflite"
    cli("build-drafter", float_checkpoint, "--base", JAX / "hidden/no-drafter.litertlm", "-o", out, "--quant", "f32")
    want = outputs_at_positions((JAX / "mtp_drafter_f32.tflite").read_bytes())
    got = outputs_at_positions(out.read_bytes())  # positions 40, 100, 127 lie past the window of 32
    for a, b in zip(got, want):
        for k in b:
            assert np.abs(a[k] - b[k]).max() <= 1e-4 * max(1.0, np.abs(b[k]).max()), k


def test_grafted_int4_build_decodes_like_the_ground_truth(checkpoint, tmp_path):
    out = tmp_path / "built.litertlm"
    cli("build-drafter", checkpoint, "--base", JAX / "hidden/no-drafter.litertlm", "-o", out, "--quant", "int4c")
    assert section_bytes(out, "tf_lite_mtp_drafter")
    gt = tmp_path / "gt" / "gemma4-mini.litertlm"
    gt.parent.mkdir()
    shutil.copy(JAX / "gemma4-mini.litertlm", gt)
    truth, on, off = engine(gt, "on", PROMPTS), engine(out, "on", PROMPTS), engine(out, "off", PROMPTS)
    assert on["error"] is None and off["error"] is None and on["has_speculative_decoding_support"] is True
    assert same_greedy(on["texts"], off["texts"])
    assert len(on["success_rates"]) == 1 and abs(on["success_rates"][0] - truth["success_rates"][0]) <= 0.02


def test_f32_build_equals_transformers_past_the_window(float_checkpoint, tmp_path):
    """The built drafter against Gemma4AssistantForCausalLM itself, at positions up to the cache length."""
    from mtpsurgeon.analysis import analyze
    from mtpsurgeon.extract.parity import check_parity

    out = tmp_path / "f32.tflite"
    cli("build-drafter", float_checkpoint, "--base", JAX / "hidden/no-drafter.litertlm", "-o", out, "--quant", "f32")
    (rm,) = [rm for ma in analyze(out, base=JAX / "gemma4-mini.litertlm").models for rm in ma.roles.values()]
    res = check_parity(float_checkpoint, out, rm, samples=30)
    assert res.passed() and res.logits_max_abs < 1e-3, res.to_json()
    assert max(res.positions) > 32


def test_build_then_extract_returns_the_checkpoint(checkpoint, tmp_path):
    """checkpoint → build-drafter (f32) → extract --names hf: the same config.json (RoPE parameters read back
    from the emitted tables, window from the emitted mask, layer scalars) and the same tensors."""
    import json

    from safetensors.numpy import load_file

    built, back = tmp_path / "built.tflite", tmp_path / "back"
    cli("build-drafter", checkpoint, "--base", JAX / "hidden/no-drafter.litertlm", "-o", built, "--quant", "f32")
    cli("extract", built, "--names", "hf", "--dtype", "f32", "-o", back)
    assert json.loads((back / "config.json").read_text()) == json.loads((checkpoint / "config.json").read_text())
    a, b = load_file(str(back / "model.safetensors")), load_file(str(checkpoint / "model.safetensors"))
    assert set(a) == set(b)
    for k in b:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-7, err_msg=k)
