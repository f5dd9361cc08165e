"""The --names hf checkpoint computes what the LiteRT drafter computes (transformers as the oracle).

torch (CPU) and transformers are test-only dependencies. Tolerances: logits
within 1e-3 (relative to the largest logit, at least 1) after the documented
soft-cap correction, top-1 agreement 100%, projected activations within 1e-4,
at positions spread over the whole cache (past the sliding window too).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mtpsurgeon.analysis import analyze
from mtpsurgeon.extract.parity import check_parity

FX = Path(__file__).resolve().parent.parent / "fixtures"
pytest.importorskip("transformers", reason="transformers is a test dependency: pip install -e '.[test]'")


def _extract(src: Path, out: Path) -> Path:
    r = subprocess.run([sys.executable, "-m", "mtpsurgeon", "extract", str(src), "-o", str(out), "--dtype", "f32",
                        "--names", "hf", "--no-models"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


def _roles(src: Path):
    ma = analyze(src).models[0]
    rm = next(iter(ma.roles.values()))
    tensors = ma.model.subgraphs[rm.subgraph].tensors
    return rm, {r.hf_name for i, r in rm.roles.items() if r.hf_name and tensors[i].is_quantized}


def test_folder_loads_with_from_pretrained_in_a_fresh_python(tmp_path):
    out = _extract(FX / "mtp_drafter_f32.tflite", tmp_path / "hf")
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "config.json", "README.md"}
    code = ("import sys, transformers; m, info = transformers.AutoModelForCausalLM.from_pretrained(sys.argv[1], "
            "output_loading_info=True); print(type(m).__name__, sum(map(len, info.values())))")
    r = subprocess.run([sys.executable, "-c", code, str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-2:] == ["Gemma4AssistantForCausalLM", "0"]
    card = (out / "README.md").read_text()
    assert "30 * tanh(logits / 30)" in card and "sha256" in card


def test_float_twin_parity_within_tolerance(tmp_path):
    src = FX / "mtp_drafter_f32.tflite"
    rm, quantized = _roles(src)
    assert not quantized
    res = check_parity(_extract(src, tmp_path / "hf"), src, rm, samples=30)
    assert res.passed(), res.to_json()
    assert res.logits_max_abs <= 1e-3 and res.projected_max_abs <= 1e-4 and res.top1_agree == 1.0


def test_int4_gap_is_the_runtime_activation_quantization(tmp_path):
    """Plain float reference: a gap. Emulating the runtime's int8 activations: the gap closes, so the dump is exact."""
    src = FX / "mtp_drafter.tflite"
    rm, quantized = _roles(src)
    hf = _extract(src, tmp_path / "hf")
    plain = check_parity(hf, src, rm, samples=20)
    emulated = check_parity(hf, src, rm, samples=20, emulate_quantized=quantized)
    assert plain.logits_max_abs > 1e-2  # the runtime quantizes activations; a float forward does not
    assert emulated.passed(), emulated.to_json()
    # Emulated int8 activations are exact only up to rounding: where the two float paths (~1e-6 apart) straddle a
    # rounding boundary, one activation moves by a whole quantization step. Over 20 positions that happens at one
    # or two; everywhere else the dump is exact.
    exact = [r for r in emulated.per_position if r["logits_max_abs"] <= 1e-3 and r["projected_max_abs"] <= 1e-4]
    assert len(exact) >= 0.85 * len(emulated.per_position), emulated.per_position
    assert plain.logits_max_abs > 100 * sorted(r["logits_max_abs"] for r in emulated.per_position)[len(exact) // 2]


def test_check_parity_option(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mtpsurgeon", "extract", str(FX / "gemma4-mini.litertlm"), "-o",
                        str(tmp_path / "o"), "--dtype", "f32", "--names", "hf", "--check-parity", "--json"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    parity = json.loads(r.stdout)["dumps"][0]["parity"]
    assert parity["passed"] and parity["top1_agree"] == 1.0


def test_check_parity_says_so_without_torch(tmp_path):
    code = ("import sys; sys.modules['torch'] = None; from mtpsurgeon.cli.main import main; "
            "sys.argv = ['mtpsurgeon'] + sys.argv[1:]; main()")
    r = subprocess.run([sys.executable, "-c", code, "extract", str(FX / "mtp_drafter_f32.tflite"), "-o",
                        str(tmp_path / "o"), "--dtype", "f32", "--names", "hf", "--check-parity", "--no-models"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "torch and transformers are not importable" in r.stdout.replace("\n", " ")
