"""`mtpsurgeon tune` on the jax fixture family (fixtures/jax/): 4 query heads over 2 KV heads
(so heads = T = 4 at the exported length), RoPE tables, INT8 per-tensor KV caches read through
DEQUANTIZE and written through QUANTIZE. Proven as for the torch family (test_tune.py), against
independent oracles: the generator's litert-torch exports at T' with the same INT8 KV edit
(structure), the LiteRT interpreter (verify == repeated decode on the float-boundary twin built
here with the schema's object API; the INT8 model against the untouched source on the common
tokens), litert-lm-builder (other sections untouched) and the LiteRT-LM engine."""
from __future__ import annotations

import json
import sys

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter

from conftest import FIXTURES, REPO
from test_restore_fixtures import cli
from test_tune import assert_engine_greedy_identical, assert_sections_untouched_and_links_pass, tune_each

sys.path.insert(0, str(REPO))
from fixtures.build.verify_variants import canonical, read_summary, summarize  # noqa: E402

from mtpsurgeon.surgery.verify_vs_decode import check_verify_matches_decode  # noqa: E402

JAX = FIXTURES / "jax"
BASE = JAX / "base_prefill_decode.tflite"
CONTAINER = JAX / "gemma4-mini.litertlm"
PROMPTS = JAX / "prompts.txt"


def float_boundary_twin(data: bytes) -> bytes:
    """The model with each INT8 cache input's DEQUANTIZE and each cache output's QUANTIZE removed
    (verify and decode), written with the schema's object API: an oracle independent of mtpsurgeon."""
    m = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    op = {i: max(c.builtinCode, c.deprecatedBuiltinCode) for i, c in enumerate(m.operatorCodes)}
    for sd in m.signatureDefs:
        if sd.signatureKey.decode() not in ("verify", "decode"):
            continue
        sg = m.subgraphs[sd.subgraphIndex]
        drop = []
        for k, o in enumerate(sg.operators):
            if op[o.opcodeIndex] == schema.BuiltinOperator.DEQUANTIZE and o.inputs[0] in list(sg.inputs):
                old, new = o.inputs[0], o.outputs[0]
                sg.inputs = [new if i == old else i for i in sg.inputs]
                for tm in sd.inputs:
                    tm.tensorIndex = new if tm.tensorIndex == old else tm.tensorIndex
                drop.append(k)
            elif op[o.opcodeIndex] == schema.BuiltinOperator.QUANTIZE and o.outputs[0] in list(sg.outputs):
                old, new = o.outputs[0], o.inputs[0]
                sg.outputs = [new if i == old else i for i in sg.outputs]
                for tm in sd.outputs:
                    tm.tensorIndex = new if tm.tensorIndex == old else tm.tensorIndex
                drop.append(k)
        assert len(drop) == 8, drop  # 4 caches in, 4 out
        sg.operators = [o for k, o in enumerate(sg.operators) if k not in drop]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def run_verify(data: bytes, state: dict, emb: np.ndarray, start: int) -> dict:
    r = Interpreter(model_content=data).get_signature_runner("verify")
    d = r.get_input_details()
    t, c = int(d["input_pos"]["shape"][0]), int(d["mask"]["shape"][-1])
    rows = np.arange(start, start + t)
    mask = (np.arange(c)[None, :] <= rows[:, None]).reshape(1, 1, t, c)
    return r(**state, embeddings=emb[:, :t], input_pos=rows.astype(np.int32), mask=mask)


def same_on_common_tokens(tuned: bytes, source: bytes, seed: int) -> None:
    """The INT8 model itself: tuned verify at T' and the source verify at T on the same inputs agree bit for
    bit on the first min(T, T') tokens (logits, activations, KV rows they write; the rest of the cache kept)."""
    rng = np.random.default_rng(seed)
    d = Interpreter(model_content=source).get_signature_runner("verify").get_input_details()
    state = {n: rng.integers(-100, 100, size=tuple(s["shape"])).astype(np.int8) for n, s in d.items()
             if n.startswith("kv_cache_")}
    emb = rng.standard_normal((1, 8, 64)).astype(np.float32)
    start = 40
    a, b = run_verify(tuned, state, emb, start), run_verify(source, state, emb, start)
    ta, tb = a["logits"].shape[1], b["logits"].shape[1]
    m = min(ta, tb)
    for name in ("logits", "activations"):
        np.testing.assert_array_equal(a[name][:, :m], b[name][:, :m], err_msg=name)
    for name in state:  # K [1, kvh, C, hd] (positions on axis 2), V [1, kvh, hd, C] (axis 3)
        axis = 2 if "_k_" in name else 3
        keep = np.r_[0:start + m, start + max(ta, tb):state[name].shape[axis]]
        np.testing.assert_array_equal(np.take(a[name], keep, axis), np.take(b[name], keep, axis), err_msg=name)
        longer = a if ta > tb else b
        extra = np.r_[start + m:start + max(ta, tb)]
        shorter = b if longer is a else a
        np.testing.assert_array_equal(np.take(shorter[name], extra, axis), np.take(state[name], extra, axis))
        assert not np.array_equal(np.take(longer[name], extra, axis), np.take(state[name], extra, axis))


@pytest.mark.parametrize("tokens", [2, 3, 5])
def test_tflite_matches_the_generators_export(tmp_path, tokens):
    out = tmp_path / f"t{tokens}.tflite"
    r = json.loads(cli("tune", BASE, "--draft-steps", tokens - 1, "-o", out, "--json").stdout)
    assert r["verify_tokens"] == tokens and r["equivalence"]["bit_identical"]
    assert any("quantized state boundaries" in n for n in r["notes"])
    data, src = out.read_bytes(), BASE.read_bytes()
    ref = read_summary(JAX / "verify_variants" / f"verify_T{tokens}.json.gz")
    assert canonical(summarize(data)) == canonical(ref)
    if tokens != 2:  # one constant per reading, no orphan left (at T=2 the converter merges equal constants)
        assert len(summarize(data)["graphs"][0]["tensors"]) == len(ref["graphs"][0]["tensors"])
    for key in ("decode", "prefill_16"):
        assert summarize(data, key) == summarize(src, key)
    # the interpreter, independently of the gate: on the float-boundary twin verify == T' decode calls
    eq = check_verify_matches_decode(float_boundary_twin(data), seed=tokens + 100)
    assert eq.bit_identical and eq.tokens == tokens and len(eq.max_abs_diff) == 6
    # ... while the INT8 model differs from repeated decode by re-quantization, at the exported T as well
    assert not check_verify_matches_decode(src, seed=tokens + 100).bit_identical
    same_on_common_tokens(data, src, seed=tokens)


def test_heads_equal_to_t_is_told_apart_by_layout():
    """At T = 4 = heads the GQA reshape back [1, 2, 8, 32] -> [1, 4, 4, 32] is [1, heads, T, hd]; the converter
    stored that shape once with the q-projection reshape's [1, T, heads, hd]: both readings are found."""
    from mtpsurgeon.formats.open import open_file
    from mtpsurgeon.surgery.ir import Model
    from mtpsurgeon.surgery.ir.symbolic import infer_shapes

    s = infer_shapes(Model.from_tflite(open_file(BASE)), "verify")
    shared = [t for t in {id(c.tensor): c.tensor for c in s.constants}.values() if len(s.readings(t)) > 1]
    assert shared
    for t in shared:
        got = sorted([str(e) for e in r.exprs] for r in s.readings(t))
        assert got in ([["1", "4", "T", "32"], ["1", "T", "4", "32"]], [["1", "4", "T", "64"], ["1", "T", "4", "64"]])


@pytest.fixture(scope="module")
def tuned_containers(tmp_path_factory):
    return tune_each(CONTAINER, tmp_path_factory.mktemp("tuned-jax"))


def test_container_sections_untouched_and_links_pass(tuned_containers):
    assert_sections_untouched_and_links_pass(CONTAINER, tuned_containers)


@pytest.mark.parametrize("g", [1, 2, 4])
def test_engine_greedy_identical_with_mtp(tuned_containers, g):
    assert_engine_greedy_identical(tuned_containers[g], PROMPTS)


def test_float_twin_equals_the_schema_built_one():
    """surgery/quantized_boundary.py (the gate's twin) finds, by structure, the same 16 boundaries as the
    oracle above: the two twins have the same verify and decode dataflow; other models are left alone."""
    from mtpsurgeon.formats.open import open_file
    from mtpsurgeon.formats.tflite.writer import tflite_bytes
    from mtpsurgeon.surgery.ir import Model
    from mtpsurgeon.surgery.quantized_boundary import float_twin

    ir = Model.from_tflite(open_file(BASE))
    assert float_twin(ir, ["verify", "decode"]) == 16
    ours, oracle = tflite_bytes(ir), float_boundary_twin(BASE.read_bytes())
    for key in ("verify", "decode"):
        assert canonical(summarize(ours, key)) == canonical(summarize(oracle, key))
        assert all(d["dtype"] == np.float32 for n, d in Interpreter(model_content=ours).get_signature_runner(key)
                   .get_input_details().items() if n.startswith("kv_cache_"))
    assert float_twin(Model.from_tflite(open_file(FIXTURES / "base_prefill_decode.tflite")), ["verify", "decode"]) == 0


def test_references_are_recorded_in_the_answer_key():
    import hashlib

    index = json.loads((JAX / "verify_variants" / "index.json").read_text())
    rec = json.loads((JAX / "expected.json").read_text())["verify_variants"]
    assert rec["variants"] == index["variants"] and rec["kv_cache_scales"] == index["kv_cache_scales"]
    assert sorted(index["variants"]) == ["2", "3", "5"]
    for v in index["variants"].values():
        assert hashlib.sha256((JAX / "verify_variants" / v["file"]).read_bytes()).hexdigest() == v["sha256"]
    # the scales the references were edited with are the committed base's own quantization parameters
    r = Interpreter(model_path=str(BASE)).get_signature_runner("verify").get_input_details()
    for name, scale in index["kv_cache_scales"].items():
        assert np.float32(r[name]["quantization_parameters"]["scales"][0]) == np.float32(scale)


def test_search_measures_the_int8_family(tmp_path):
    prompts = tmp_path / "prompts.txt"
    lines = [l for l in PROMPTS.read_text().splitlines() if l and not l.startswith("#")]
    prompts.write_text("\n".join(lines[:3]) + "\n")
    out = tmp_path / "best.litertlm"
    r = json.loads(cli("tune", CONTAINER, "--search", "1,4", "--prompts", prompts, "--repeats", 1, "-o", out,
                       "--json").stdout)
    assert [v["draft_steps"] for v in r["variants"]] == [1, 4]
    for v in r["variants"]:
        assert v["error"] is None and v["identical"] and v["tok_s_on"] > 0 and 0 < v["success_rate"] <= 1
    assert (r["winner"] is None) == (not out.exists())


def test_unknown_operator_in_the_jax_base_refused_nothing_written(tmp_path):
    from mtpsurgeon.formats.open import open_file
    from mtpsurgeon.formats.tflite.writer import write_tflite
    from mtpsurgeon.surgery.ir import Model, OpCode

    ir = Model.from_tflite(open_file(BASE))
    node = next(n for n in ir.signature("verify").graph.nodes if n.op == "COS")  # the RoPE table's cosine
    node.opcode = OpCode.make("REVERSE_V2")
    bad = tmp_path / "unknown-op.tflite"
    write_tflite(ir, bad)
    out = tmp_path / "out.tflite"
    p = cli("tune", bad, "--draft-steps", 2, "-o", out, expect=1)
    assert "no shape rule for operator REVERSE_V2" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".out.tflite*"))
