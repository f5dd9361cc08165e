"""A gemma4_unified_assistant checkpoint (the 12B's assistant type) made by transformers' own
Gemma4UnifiedAssistantForCausalLM (tiny config, the fixture assistant's trained weights, saved with
save_pretrained): build-drafter's f32 drafter equals transformers' forward within 1e-4."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import FIXTURES
from fixture_oracles import base_run
from test_fixtures import TORCH

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
ASSISTANT = FIXTURES / "assistant"


def _unified_checkpoint(out):
    from safetensors.torch import load_file
    from transformers import Gemma4UnifiedAssistantConfig, Gemma4UnifiedAssistantForCausalLM

    src = json.loads((ASSISTANT / "config.json").read_text())
    text = dict(src["text_config"], model_type="gemma4_unified_text")
    text.pop("sliding_window")  # take the unified class's default (1024; gemma4_text's is 512)
    conf = Gemma4UnifiedAssistantConfig(text_config=text, backbone_hidden_size=src["backbone_hidden_size"])
    conf._attn_implementation = "eager"
    model = Gemma4UnifiedAssistantForCausalLM(conf).eval()
    missing, unexpected = model.load_state_dict(load_file(ASSISTANT / "model.safetensors"), strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    model.save_pretrained(out, safe_serialization=True)
    return model


def test_unified_assistant_checkpoint_builds_with_parity(tmp_path):
    ck = tmp_path / "unified"
    model = _unified_checkpoint(ck)
    saved = json.loads((ck / "config.json").read_text())
    assert saved["model_type"] == "gemma4_unified_assistant"
    assert saved["text_config"]["model_type"] == "gemma4_unified_text"
    assert saved["text_config"]["sliding_window"] == 1024  # Gemma4UnifiedTextConfig's default
    out = tmp_path / "d.tflite"
    p = subprocess.run([sys.executable, "-m", "mtpsurgeon", "build-drafter", ck, "--base",
                        FIXTURES / "hidden" / "no-drafter.litertlm", "-o", out, "--json"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "gemma4_unified_assistant" in " ".join(json.loads(p.stdout)["notes"])
    from ai_edge_litert.interpreter import Interpreter

    run = Interpreter(model_path=str(out)).get_signature_runner("mtp_drafter")
    cap = saved["text_config"]["final_logit_softcapping"]
    ids = json.loads((ASSISTANT / "reference.json").read_text())["tokens"]
    for t in (3, 10, 20, 30):
        ins, _ = base_run(TORCH, ids[: t + 1])
        got = run(**ins)
        C = ins["mask"].shape[-1]
        k = lambda n: torch.from_numpy(ins[n])  # noqa: E731
        shared = {"sliding_attention": (k("kv_cache_k_0"), k("kv_cache_v_0").transpose(-1, -2)),
                  "full_attention": (k("kv_cache_k_1"), k("kv_cache_v_1").transpose(-1, -2))}
        with torch.no_grad():
            o = model(inputs_embeds=torch.from_numpy(ins["activations"]), position_ids=torch.tensor([[t]]),
                      attention_mask=(torch.arange(C)[None, :] <= t).long(), shared_kv_states=shared)
        want = np.tanh(o.logits[0, 0].double().numpy() / cap) * cap
        assert np.abs(got["logits"][0, 0] - want).max() < 1e-4, t
        assert np.abs(got["projected_activations"][0, 0] - o.last_hidden_state[0, 0].numpy()).max() < 1e-4, t


def test_unified_defaults_fill_a_minimal_config(tmp_path):
    """A config.json without the fields the unified classes default (hand-written, or trimmed) reads with
    the unified defaults, named in the notes, not gemma4_assistant's."""
    from mtpsurgeon.surgery.drafter.spec import load_spec

    ck = tmp_path / "unified"
    _unified_checkpoint(ck)
    cfg = json.loads((ck / "config.json").read_text())
    for k in ("sliding_window", "num_kv_shared_layers"):
        cfg["text_config"].pop(k)
    cfg.pop("use_ordered_embeddings")
    (ck / "config.json").write_text(json.dumps(cfg))
    spec = load_spec(ck, None, rope=True)
    assert {b.sliding_window for b in spec.blocks if b.layer_type == "sliding_attention"} == {1024}
    notes = " ".join(spec.notes)
    assert "text_config.sliding_window = 1024 (gemma4_unified_text default)" in notes
    assert "use_ordered_embeddings = False" in notes
