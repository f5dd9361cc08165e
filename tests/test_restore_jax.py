"""restore on the jax family's hiding places (JAX/TF names, converter-named I/O, RoPE, GQA, INT8 KV caches),
proven like the torch family's: interpreter outputs bit-identical to the ground-truth drafter,
litert-lm-builder reads the result, and the LiteRT-LM engine gives greedy text on == off with the
ground truth's own success rate (0.5-0.95 by construction, so a degraded drafter would show)."""
from __future__ import annotations

import shutil

import pytest

from conftest import FIXTURES
from test_restore_fixtures import assert_same_drafter, cli, drafter_outputs, engine, peek_sections, same_greedy, \
    section_bytes

JAX = FIXTURES / "jax"
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
