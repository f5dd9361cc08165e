"""The bench model (bench/make_bench_model.py) at its reduced size, `--scale tiny`:
structure and proportions, not speed (speed is bench/'s business).

The generator needs Google's export toolchain (litert-torch, ai-edge-quantizer),
which is not in the test extra: like fixtures/build/build.sh, the model is built
in the fixture venv (${FIXTURE_VENV:-~/.cache/mtpsurgeon-fixture-venv}), created
here with build.sh's pinned requirements when missing. The model is cached in
${MTPSURGEON_BENCH_TINY:-~/.cache/mtpsurgeon-tests/bench-tiny} and rebuilt only
when the generator's sources change (its generator key). Checked with the
official readers only: litert-lm-builder's header reader, the LiteRT interpreter,
the LiteRT-LM engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from fixture_oracles import ROOT, builder_sections, engine

JAX_EXPECTED = json.loads((ROOT / "fixtures" / "jax" / "expected.json").read_text())
RULE_TOKENS = JAX_EXPECTED["rule_sample_tokens"]  # BOS + jax-rule words: the small base's corpus
TINY = {"hidden": 256, "intermediate": 2048, "layers": 4}


def _fixture_python() -> Path:
    venv = Path(os.environ.get("FIXTURE_VENV", Path.home() / ".cache" / "mtpsurgeon-fixture-venv"))
    py = venv / "bin" / "python"
    if not py.is_file():  # exactly what fixtures/build/build.sh does
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    r = subprocess.run([str(py), "-c", "import litert_torch, ai_edge_quantizer"], capture_output=True)
    if r.returncode:
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r",
                        str(ROOT / "fixtures" / "build" / "requirements.txt")], check=True)
    return py


@pytest.fixture(scope="module")
def tiny() -> Path:
    out = Path(os.environ.get("MTPSURGEON_BENCH_TINY", Path.home() / ".cache" / "mtpsurgeon-tests" / "bench-tiny"))
    py = _fixture_python()
    r = subprocess.run([str(py), str(ROOT / "bench" / "make_bench_model.py"), str(out), "--scale", "tiny"],
                       capture_output=True, text=True, timeout=3600)
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def _sections(path):
    return {t: data for t, _, data in builder_sections(path)}


def _prompts(out: Path):
    return [l for l in (out / "prompts.txt").read_text().splitlines() if l.strip() and not l.startswith("#")]


def test_container_sections_and_proportions(tiny):
    secs = builder_sections(tiny / "bench.litertlm")
    types = [t for t, _, _ in secs]
    for t in ("tf_lite_prefill_decode", "tf_lite_embedder", "tf_lite_mtp_drafter"):
        assert types.count(t) == 1, types
    assert len(secs) == 6  # + LLM metadata, tokenizer, (and the builder's own) non-TFLite sections
    s = _sections(tiny / "bench.litertlm")
    base, drafter = len(s["tf_lite_prefill_decode"]), len(s["tf_lite_mtp_drafter"])
    assert drafter <= 0.05 * base, (drafter, base)
    m = schema.Model.GetRootAs(s["tf_lite_prefill_decode"], 0)
    sigs = {m.SignatureDefs(i).SignatureKey().decode(): m.SignatureDefs(i) for i in range(m.SignatureDefsLength())}
    assert {"decode", "verify"} <= set(sigs), sigs
    sg = m.Subgraphs(sigs["decode"].SubgraphIndex())
    fc_int8 = {}
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        c = m.OperatorCodes(op.OpcodeIndex())
        if max(c.BuiltinCode(), c.DeprecatedBuiltinCode()) == schema.BuiltinOperator.FULLY_CONNECTED:
            t = sg.Tensors(op.Inputs(1))
            assert t.Type() == schema.TensorType.INT8, t.Name()
            b = m.Buffers(t.Buffer())
            fc_int8[t.Buffer()] = b.Size() if b.Offset() > 1 else b.DataLength()
    H, I, L = TINY["hidden"], TINY["intermediate"], TINY["layers"]
    # every layer's MLP (3 H x I matrices) is read per token at one byte a weight
    assert sum(fc_int8.values()) >= L * 3 * H * I, sum(fc_int8.values())
    report = json.loads((tiny / "bench.json").read_text())
    assert report["grown_base_check"]["greedy_equal"] == report["grown_base_check"]["prompts"] == len(_prompts(tiny))


def test_interpreter_runs_decode_verify_and_drafter(tiny):
    """The grown, quantized base still follows the rule the small base learned, verify
    agrees with decode, and the drafter's first draft on real activations is mostly right."""
    s = _sections(tiny / "bench.litertlm")
    emb = Interpreter(model_content=s["tf_lite_embedder"]).get_signature_runner("decode_embedder")
    it = Interpreter(model_content=s["tf_lite_prefill_decode"])
    dec, ver = it.get_signature_runner("decode"), it.get_signature_runner("verify")
    dr = Interpreter(model_content=s["tf_lite_mtp_drafter"]).get_signature_runner("mtp_drafter")
    dec_in = dec.get_input_details()
    C = dec_in["mask"]["shape"][-1]
    kv = {k: np.zeros(d["shape"], d["dtype"]) for k, d in dec_in.items() if k.startswith("kv")}
    assert all(d.dtype == np.int8 for d in kv.values())
    e = lambda tok: emb(token_ids=np.array([[tok]], np.int32))["embeddings"]  # noqa: E731
    hits, draft_hits, n = 0, 0, 0
    for p, tok in enumerate(RULE_TOKENS[:-2]):
        mask = np.where(np.arange(C) <= p, 0, -1e9).astype(np.float32).reshape(1, 1, 1, C)
        r = dec(embeddings=e(tok), input_pos=np.array([p], np.int32), mask=mask, **kv)
        kv = {k: r[k] for k in kv}
        if p >= 3:  # the rule needs 3 words of context
            n += 1
            hits += int(r["logits"][0, -1].argmax()) == RULE_TOKENS[p + 1]
            ins = {"activations": np.concatenate([e(RULE_TOKENS[p + 1]), r["activations"].reshape(1, 1, -1)], -1),
                   "input_pos": np.array([p], np.int32), "mask": (np.arange(C) <= p).reshape(1, 1, 1, C),
                   "param_tensor": np.zeros((1, 1, 1, 7), np.int32)}
            ins.update({k: kv[k] for k in dr.get_input_details() if k.startswith("kv")})
            out = dr(**ins)
            assert out["projected_activations"].shape[-1] == TINY["hidden"]
            draft_hits += int(out["logits"][0, -1].argmax()) == RULE_TOKENS[p + 2]
    assert hits == n, (hits, n)
    assert draft_hits >= n // 2, (draft_hits, n)
    T = ver.get_input_details()["input_pos"]["shape"][0]
    ids = RULE_TOKENS[:T]
    kv0 = {k: np.zeros(v.shape, v.dtype) for k, v in kv.items()}
    vr = ver(embeddings=np.concatenate([e(t) for t in ids], 1), input_pos=np.arange(T, dtype=np.int32),
             mask=(np.arange(C)[None, :] <= np.arange(T)[:, None]).reshape(1, 1, T, C), **kv0)
    kv = dict(kv0)
    for p, tok in enumerate(ids):
        mask = np.where(np.arange(C) <= p, 0, -1e9).astype(np.float32).reshape(1, 1, 1, C)
        r = dec(embeddings=e(tok), input_pos=np.array([p], np.int32), mask=mask, **kv)
        kv = {k: r[k] for k in kv}
    # the last position is the first the rule decides (3 words of context); earlier ones are near-ties
    assert int(vr["logits"][0, -1].argmax()) == int(r["logits"][0, -1].argmax()) == RULE_TOKENS[T]
    for k in kv:  # verify leaves the cache of T decode steps, up to INT8 rounding (batched vs single-row kernels)
        diff = np.abs(vr[k].astype(np.int32) - kv[k].astype(np.int32))
        assert diff.max() <= 2 and (diff > 0).mean() < 0.01 and np.any(kv[k] != 0), (k, diff.max(), (diff > 0).mean())
    assert vr["activations"].shape[-1] == TINY["hidden"]


def test_engine_mtp_on_equals_off_with_a_realistic_success_rate(tiny):
    prompts = tuple(_prompts(tiny))
    on = engine(str(tiny / "bench.litertlm"), "on", prompts, max_tokens=32)
    off = engine(str(tiny / "bench.litertlm"), "off", prompts, max_tokens=32)
    assert on["returncode"] == 0 and off["returncode"] == 0, (on.get("error"), off.get("error"))
    assert len(on["texts"]) == len(off["texts"]) == len(prompts)
    for a, b in zip(on["texts"], off["texts"]):  # the last MTP cycle may run past max_tokens
        assert len(b.split()) == 32 and a.split()[:32] == b.split(), (a, b)
    assert on["success_rates"] and 0.3 <= on["success_rates"][0] <= 0.95, on["success_rates"]


def test_outdir_inside_the_repository_is_refused(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "make_bench_model.py"), str(ROOT / "bench" / "x")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "outside the repository" in r.stderr and r.stderr.count("\n") == 1
