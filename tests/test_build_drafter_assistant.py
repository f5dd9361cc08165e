"""A drafter trained in Hugging Face transformers (fixtures/assistant/, made by
fixtures/build/assistant_ckpt.py: Gemma4AssistantForCausalLM, 2 query heads over the
base's 1 KV head, RoPE, layer_scalar), built by build-drafter and grafted: its logits
equal transformers' forward (recorded at fixture-build time) within 1e-3 after the
soft-cap the LiteRT graph applies, and the LiteRT-LM engine accepts its drafts."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from conftest import FIXTURES
from fixture_oracles import base_run
from test_fixtures import TORCH


def _base_run(prompt_ids):
    return base_run(TORCH, prompt_ids)

ASSISTANT = FIXTURES / "assistant"
REF = json.loads((ASSISTANT / "reference.json").read_text())
PROBE = Path(__file__).with_name("fixture_engine_probe.py")
PROMPTS = [l.strip() for l in (FIXTURES / "prompts.txt").read_text().splitlines() if l.strip() and not l.startswith("#")]


def cli(*args):
    p = subprocess.run([sys.executable, "-m", "mtpsurgeon", *map(str, args)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, (p.stdout, p.stderr)
    return p


def test_checkpoint_is_the_one_the_reference_was_computed_with():
    assert hashlib.sha256((ASSISTANT / "model.safetensors").read_bytes()).hexdigest() == REF["model_sha256"]
    assert REF["softcap_in_forward"] is False
    assert sum(p.stat().st_size for p in ASSISTANT.iterdir()) < 1 << 20


def test_logits_equal_transformers_forward(tmp_path):
    out = tmp_path / "assistant.tflite"
    cli("build-drafter", ASSISTANT, "--base", FIXTURES / "hidden" / "no-drafter.litertlm", "-o", out)
    run = Interpreter(model_path=str(out)).get_signature_runner("mtp_drafter")
    cap = json.loads((ASSISTANT / "config.json").read_text())["text_config"]["final_logit_softcapping"]
    ids = REF["tokens"]
    for step in REF["steps"]:
        t = step["t"]
        ins, nxt = _base_run(ids[: t + 1])
        assert nxt == ids[t + 1]  # step-1 input = [embedder(x_{t+1}) | activations_t], as the reference's
        got = run(**ins)
        # transformers' assistant forward does not soft-cap; the LiteRT graph does: cap·tanh(x/cap)
        want = np.tanh(np.asarray(step["logits"], np.float64) / cap) * cap
        assert np.abs(got["logits"][0, 0] - want).max() < 1e-3, t
        assert np.abs(got["projected_activations"][0, 0] - np.asarray(step["projected_activations"])).max() < 1e-3, t
        assert int(got["logits"][0, 0].argmax()) == step["argmax"]


def test_grafted_assistant_speeds_up_the_engine(tmp_path):
    out = tmp_path / "with-assistant.litertlm"
    cli("build-drafter", ASSISTANT, "--base", FIXTURES / "hidden" / "no-drafter.litertlm", "-o", out,
        "--quant", "int4c")
    res = {}
    for spec in ("on", "off"):
        args = [sys.executable, str(PROBE), str(out), "--spec", spec, "--max-tokens", "24"]
        for p in PROMPTS:
            args += ["--prompt", p]
        r = subprocess.run(args, capture_output=True, text=True, timeout=300)
        res[spec] = json.loads([l for l in r.stdout.splitlines() if l.startswith("{")][-1])
        assert res[spec]["engine_created"] and res[spec]["error"] is None, res[spec]
    for a, b in zip(res["on"]["texts"], res["off"]["texts"]):
        wa, wb = a.split(), b.split()
        assert len(wb) >= 16 and wa[: len(wb)] == wb and len(wa) - len(wb) <= 3, (a, b)
    assert len(res["on"]["success_rates"]) == 1 and res["on"]["success_rates"][0] > 0, res["on"]["success_rates"]


def test_readme_walkthrough_runs_as_written(tmp_path):
    import re
    import shlex

    from conftest import REPO

    text = (REPO / "README.md").read_text()
    section = text.split("## Add a drafter to a package that has none", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = [line for line in block.splitlines() if line.startswith("mtpsurgeon ")]
    assert [c.split()[1] for c in commands] == ["inspect", "build-drafter", "inspect"]
    (tmp_path / "fixtures").symlink_to(REPO / "fixtures")
    outs = []
    for command in commands:
        p = subprocess.run([sys.executable, "-m", "mtpsurgeon", *shlex.split(command)[1:]], cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, (command, p.stderr)
        outs.append(p.stdout)
    assert "MTP: ABSENT" in outs[0] and "MTP: READY" in outs[2]
    assert "link checks passed" in outs[1] and "section 5" in outs[1]
