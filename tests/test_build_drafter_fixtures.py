"""build-drafter round trip on the litert-torch fixture family, proven with independent oracles:
the LiteRT interpreter (parity with the original float drafter), the fixture's
ai-edge-quantizer output (byte equality of quantized weights), litert-lm-builder's
peek code (sections, alignment) and the LiteRT-LM engine (speculative on == off,
success rate)."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as fb
from ai_edge_litert.interpreter import Interpreter
from safetensors.numpy import load_file, save_file

from conftest import FIXTURES
from mtpsurgeon.surgery.drafter.quantize import quantize_weight
from fixture_oracles import base_run, builder_sections
from test_fixtures import EXPECTED, TORCH


def _base_run(prompt_ids):
    return base_run(TORCH, prompt_ids)

PROBE = Path(__file__).with_name("fixture_engine_probe.py")
PROMPTS = [l.strip() for l in (FIXTURES / "prompts.txt").read_text().splitlines() if l.strip() and not l.startswith("#")]


def cli(*args, expect=0):
    p = subprocess.run([sys.executable, "-m", "mtpsurgeon", *map(str, args)], capture_output=True, text=True, timeout=300)
    assert p.returncode == expect, (p.returncode, p.stdout, p.stderr)
    return p


def graph_tensors(path: Path) -> dict[str, tuple[np.ndarray, object]]:
    """name → (raw bytes as uint8, TensorT) of every constant, read with the TFLite schema."""
    data = path.read_bytes()
    m = fb.ModelT.InitFromObj(fb.Model.GetRootAs(data, 0))
    out = {}
    for t in m.subgraphs[0].tensors:
        b = m.buffers[t.buffer]
        if b.data is not None and len(b.data):
            out[t.name.decode()] = (np.asarray(b.data, np.uint8), t)
    return out


def f32_tensor(name: str) -> np.ndarray:
    raw, t = graph_tensors(FIXTURES / "mtp_drafter_f32.tflite")[name]
    return raw.view(np.float32).reshape(t.shape)


def checkpoint_from(source: Path, dest: Path) -> tuple[Path, str]:
    """`extract --names hf --dtype f32` of a fixture drafter, as a build-drafter checkpoint.

    litert-torch folded the soft-cap's 1/cap into the LM-head weights. When the
    extracted `model.embed_tokens.weight` still holds those folded values (equal to the
    converter's tensor, or to its dequantization), it is multiplied by the cap here so
    the checkpoint holds the true tied embedding, as a transformers checkpoint does.
    """
    out = dest / "extract"
    cli("extract", source, "--names", "hf", "--dtype", "f32", "-o", out)
    ck = dest / "ckpt"
    ck.mkdir()
    cfg = json.loads((out / "config.json").read_text())
    (ck / "config.json").write_text(json.dumps(cfg))
    st = load_file(str(next(out.glob("*.safetensors"))))
    head, folded = st["model.embed_tokens.weight"], f32_tensor("embed_tokens.weight")
    cap = np.float32(cfg["text_config"]["final_logit_softcapping"])
    how = "unfolded by extract"
    if np.abs(head - folded).max() < np.abs(folded).max() * 0.1:  # the folded weights (maybe dequantized)
        st["model.embed_tokens.weight"] = head * cap
        how = "folded by the converter; multiplied by the cap in this test"
    save_file(st, str(ck / "model.safetensors"))
    return ck, how


@pytest.fixture(scope="module")
def float_ckpt(tmp_path_factory):
    return checkpoint_from(FIXTURES / "mtp_drafter_f32.tflite", tmp_path_factory.mktemp("f32"))[0]


@pytest.fixture(scope="module")
def ground_truth_ckpt(tmp_path_factory):
    return checkpoint_from(FIXTURES / "gemma4-mini.litertlm", tmp_path_factory.mktemp("gt"))[0]


@lru_cache(maxsize=None)
def real_inputs(n: int = 4) -> list[dict]:
    seq = [int(x) for x in EXPECTED["rule_sample_tokens"]]
    return [_base_run(seq[: 4 + 2 * i])[0] for i in range(n)]


def random_inputs(details, seed, scale=0.5) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for pos in (0, 7, 40, 127):
        ins = {}
        for n, d in details.items():
            if n == "mask":
                ins[n] = (np.arange(d["shape"][-1]) <= pos).reshape(d["shape"])
            elif n == "input_pos":
                ins[n] = np.array([pos], np.int32)
            else:
                ins[n] = (rng.standard_normal(d["shape"]) * scale).astype(np.float32)
        out.append(ins)
    return out


def build(ck: Path, out: Path, *extra) -> Path:
    cli("build-drafter", ck, "--base", FIXTURES / "hidden" / "no-drafter.litertlm", "-o", out, "--no-rope", *extra)
    return out


def runner(path: Path):
    return Interpreter(model_path=str(path)).get_signature_runner("mtp_drafter")


def max_diff(a, b, inputs) -> dict[str, float]:
    worst = {"logits": 0.0, "projected_activations": 0.0}
    for ins in inputs:
        x, y = a(**ins), b(**ins)
        for k in worst:
            worst[k] = max(worst[k], float(np.abs(x[k] - y[k]).max()))
    return worst


def test_f32_build_equals_the_original_float_drafter(float_ckpt, tmp_path):
    built = runner(build(float_ckpt, tmp_path / "d.tflite"))
    ref = runner(FIXTURES / "mtp_drafter_f32.tflite")
    inputs = real_inputs() + random_inputs(ref.get_input_details(), 0)
    d = max_diff(built, ref, inputs)
    assert d["logits"] < 1e-4 and d["projected_activations"] < 1e-4, d
    # the interface is the runtime's, with the base's KV shapes and dtypes
    assert built.get_input_details().keys() == ref.get_input_details().keys()
    for n, det in ref.get_input_details().items():
        got = built.get_input_details()[n]
        assert list(got["shape"]) == list(det["shape"]) and got["dtype"] == det["dtype"], n


def test_numpy_quantizer_is_byte_identical_to_ai_edge_quantizer():
    for rel, mode in (("mtp_drafter.tflite", "int4c"), ("mtp_drafter_blockwise.tflite", "int4b32")):
        tensors = graph_tensors(FIXTURES / rel)
        n = 0
        for name, (raw, t) in tensors.items():
            if t.type not in (fb.TensorType.INT8, fb.TensorType.INT4):
                continue
            q = quantize_weight(f32_tensor(name), "int8" if t.type == fb.TensorType.INT8 else mode)
            assert q.data.tobytes() == raw.tobytes(), (rel, name)
            if q.block_size:
                scales_raw, st = tensors[name + "_scales"] if name + "_scales" in tensors else (None, None)
                assert t.quantization.details.blockSize == 32
                assert scales_raw is not None and scales_raw.tobytes() == q.scales.tobytes(), name
            else:
                assert np.array_equal(np.asarray(t.quantization.scale, np.float32), q.scales), name
            n += 1
        assert n == 23, (rel, n)  # every FULLY_CONNECTED weight (22 matrices + LM head)


@pytest.mark.parametrize("mode,twin", [("int4c", "mtp_drafter.tflite"), ("int4b32", "mtp_drafter_blockwise.tflite")])
def test_quantized_builds_equal_ai_edge_quantizer_drafters(float_ckpt, tmp_path, mode, twin):
    out = build(float_ckpt, tmp_path / "q.tflite", "--quant", mode)
    # every quantized matrix of the build is byte-identical to ai-edge-quantizer's (names: transformers')
    ours, theirs = graph_tensors(out), graph_tensors(FIXTURES / twin)
    same = 0
    for name, (raw, t) in theirs.items():
        if t.type in (fb.TensorType.INT8, fb.TensorType.INT4):
            mine = ours["model." + name if name.startswith(("layers", "embed", "norm")) else name]
            assert mine[1].type == t.type and mine[0].tobytes() == raw.tobytes(), name
            same += 1
    assert same == 23
    built, ref = runner(out), runner(FIXTURES / twin)
    inputs = real_inputs() + random_inputs(ref.get_input_details(), 1)
    for ins in inputs:
        a, b = built(**ins)["logits"][0, 0], ref(**ins)["logits"][0, 0]
        assert int(a.argmax()) == int(b.argmax())
    # dynamic-range kernels quantize their float inputs; float-level differences before an
    # FC (BATCH_MATMUL vs FULLY_CONNECTED attention) can flip one rounding, so most inputs
    # agree to float precision and the rest to well within the INT4 error
    diffs = [max_diff(built, ref, [ins])["logits"] for ins in inputs]
    assert sum(d < 1e-4 for d in diffs) >= len(diffs) - 2 and max(diffs) < 1.0, diffs


@pytest.mark.parametrize("mode", ["int8", "int4c", "int4b32"])
def test_quantized_builds_within_quantization_error_of_f32(float_ckpt, tmp_path, mode):
    f32 = runner(build(float_ckpt, tmp_path / "f.tflite"))
    q = runner(build(float_ckpt, tmp_path / "q.tflite", "--quant", mode))
    sizes = (tmp_path / "q.tflite").stat().st_size / (tmp_path / "f.tflite").stat().st_size
    assert sizes < {"int8": 0.4, "int4c": 0.3, "int4b32": 0.3}[mode], sizes
    for ins in real_inputs():
        a, b = f32(**ins)["logits"][0, 0], q(**ins)["logits"][0, 0]
        assert int(a.argmax()) == int(b.argmax())
        cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        assert cos > {"int8": 0.999, "int4c": 0.97, "int4b32": 0.97}[mode], (mode, cos)


# ----------------------------------------------------------------------------- graft + engine
def peek(path: Path) -> list[tuple[str | None, str, int]]:
    return [(t, hashlib.sha256(data).hexdigest(), begin) for t, begin, data in builder_sections(path)]


@lru_cache(maxsize=None)
def engine(path: str, spec: str) -> dict:
    args = [sys.executable, str(PROBE), path, "--spec", spec, "--max-tokens", "24"]
    for p in PROMPTS:
        args += ["--prompt", p]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300)
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    return {"returncode": r.returncode, **(json.loads(lines[-1]) if lines else {})}


@pytest.mark.parametrize("mode", ["f32", "int4c"])
def test_grafted_build_decodes_like_the_ground_truth(ground_truth_ckpt, tmp_path, mode):
    base = FIXTURES / "hidden" / "no-drafter.litertlm"
    before = base.read_bytes()
    out = build(ground_truth_ckpt, tmp_path / "out.litertlm", "--quant", mode)
    assert base.read_bytes() == before  # input untouched
    secs, orig = peek(out), peek(base)
    assert [s[:2] for s in secs[:-1]] == [s[:2] for s in orig]  # other sections byte-identical
    assert secs[-1][0] == "tf_lite_mtp_drafter" and all(s[2] % 16384 == 0 for s in secs)
    shutil.copy(out, tmp_path / "copy.litertlm")
    on, off = engine(str(out), "on"), engine(str(out), "off")
    truth = engine(str(FIXTURES / "gemma4-mini.litertlm"), "on")
    for r in (on, off, truth):
        assert r["returncode"] == 0 and r["engine_created"] and r["error"] is None, r
    assert on["has_speculative_decoding_support"] is True
    for a, b in zip(on["texts"], off["texts"]):
        wa, wb = a.split(), b.split()
        assert len(wb) >= 16 and wa[: len(wb)] == wb and len(wa) - len(wb) <= 3, (a, b)
    assert len(on["success_rates"]) == 1 and len(truth["success_rates"]) == 1
    assert abs(on["success_rates"][0] - truth["success_rates"][0]) <= 0.02, (on["success_rates"], truth["success_rates"])


def test_a_base_that_has_a_drafter_needs_replace(float_ckpt, tmp_path):
    gt = FIXTURES / "gemma4-mini.litertlm"
    out = tmp_path / "replaced.litertlm"
    p = subprocess.run([sys.executable, "-m", "mtpsurgeon", "build-drafter", float_ckpt, "--base", gt, "-o", out,
                        "--no-rope"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and "already has a drafter (section 5)" in p.stderr and not out.exists()
    cli("build-drafter", float_ckpt, "--base", gt, "-o", out, "--no-rope", "--replace", "--quant", "int4c")
    secs, orig = peek(out), peek(gt)
    assert len(secs) == len(orig) and [s[:2] for s in secs[:5]] == [s[:2] for s in orig[:5]]
    assert secs[5][0] == "tf_lite_mtp_drafter" and secs[5][1] != orig[5][1]
    # a .tflite base cannot be grafted into: the drafter alone is written instead
    p = subprocess.run([sys.executable, "-m", "mtpsurgeon", "build-drafter", float_ckpt, "--base",
                        FIXTURES / "base_prefill_decode.tflite", "-o", tmp_path / "x.litertlm", "--no-rope"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and "needs a .litertlm --base" in p.stderr and not (tmp_path / "x.litertlm").exists()
    cli("build-drafter", float_ckpt, "--base", FIXTURES / "base_prefill_decode.tflite", "-o", tmp_path / "x.tflite",
        "--no-rope")
    assert runner(tmp_path / "x.tflite") is not None
