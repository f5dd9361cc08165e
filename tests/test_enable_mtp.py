"""MTP for a package exported without it (fixtures/no-mtp/, fixtures/jax/no-mtp/: litert-torch export_hf
without --assistant_model): `enable-mtp` / `build-drafter` add decode's `activations` and a `verify`
signature. Oracles: the with-assistant export of the same weights (the ground truth), run in the LiteRT
interpreter; litert-lm-builder's header reader; the LiteRT-LM engine (subprocess probe)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from fixture_oracles import engine, sections, sha
from test_fixtures import FAM_IDS, FAMILIES, JAX, TORCH

import mtpsurgeon
from mtpsurgeon.errors import SurgeryError


def cli(*args, ok=True):
    p = subprocess.run([sys.executable, "-m", "mtpsurgeon", *map(str, args)], capture_output=True, text=True,
                       timeout=300)
    assert (p.returncode == 0) == ok, (p.stdout, p.stderr)
    return p


def no_mtp(fam):
    return fam.path("no-mtp/" + fam.no_mtp["file"])


def section(path, model_type="tf_lite_prefill_decode") -> bytes:
    return next(s["data"] for s in sections(path) if s["items"].get("model_type") == model_type)


def _mask(dtype, rows, C):
    vis = (np.arange(C)[None, :] <= np.asarray(rows)[:, None]).reshape(1, 1, len(rows), C)
    return vis if dtype == np.bool_ else np.where(vis, 0, -1e9).astype(dtype)


def _inputs(details, rng, start):
    T, C = int(details["input_pos"]["shape"][0]), int(details["mask"]["shape"][-1])
    ins = {}
    for n, d in details.items():
        if n in ("input_pos", "mask"):
            continue
        if np.issubdtype(d["dtype"], np.integer):
            ins[n] = rng.integers(-100, 100, size=d["shape"]).astype(d["dtype"])
        else:
            ins[n] = rng.standard_normal(d["shape"]).astype(d["dtype"])
    rows = list(range(start, start + T))
    return ins, rows, C


def _run(runner, ins, rows, C):
    d = runner.get_input_details()
    return runner(**ins, input_pos=np.asarray(rows, np.int32), mask=_mask(d["mask"]["dtype"], rows, C))


def _decode_steps(dec, ins, rows, C):
    """T decode calls of the ground truth: the reference a verify must reproduce."""
    kv = {n: v for n, v in ins.items() if n.startswith("kv_cache")}
    outs = []
    for k, p in enumerate(rows):
        o = _run(dec, {**kv, "embeddings": ins["embeddings"][:, k:k + 1]}, [p], C)
        outs.append(o)
        kv = {n: o[n] for n in kv}
    return {**kv, **{n: np.concatenate([o[n] for o in outs], axis=1) for n in ("logits", "activations")}}


@pytest.fixture(scope="module", params=FAMILIES, ids=FAM_IDS)
def enabled(request, tmp_path_factory):
    fam = request.param
    out = tmp_path_factory.mktemp(fam.name) / "enabled.litertlm"
    p = cli("enable-mtp", no_mtp(fam), "-o", out, "--json")
    return fam, out, json.loads(p.stdout)


def test_enable_mtp_result_and_untouched_sections(enabled):
    fam, out, res = enabled
    assert res["equivalence"]["ok"] and res["equivalence"]["bit_identical"], res["equivalence"]
    assert res["batched"] is True and res["unbatched_reason"] == "", res["notes"]
    assert res["draft_steps"] == 3 and res["verify_tokens"] == 4 and res["hidden"] == 64
    assert res["unchanged_signatures"] == ["prefill_16"]
    src, got = sections(no_mtp(fam)), sections(out)
    assert len(src) == len(got)
    for a, b in zip(src, got):  # litert-lm-builder's reader: same items, same bytes except prefill_decode
        assert a["items"] == b["items"] and a["data_type"] == b["data_type"]
        if a["items"].get("model_type") != "tf_lite_prefill_decode":
            assert sha(a["data"]) == sha(b["data"])
    assert mtpsurgeon.EnableResult.from_json(res).to_json() == res


def _compare_with_ground_truth(out, fam, verify_reference):
    """Random inputs, 3 trials: decode bit-identical to the with-assistant export's; verify equal to
    ``verify_reference(gt, ins, rows, C)`` bit for bit. Returns per trial verify's largest difference from
    4 decode calls of the ground truth."""
    ours = Interpreter(model_content=section(out))
    gt = Interpreter(model_content=fam.path("base_prefill_decode.tflite").read_bytes())
    rng = np.random.default_rng(7)
    vs_decode = []
    for trial in range(3):
        for key in ("decode", "verify"):
            a, b = ours.get_signature_runner(key), gt.get_signature_runner(key)
            assert set(a.get_input_details()) == set(b.get_input_details())
            ins, rows, C = _inputs(a.get_input_details(), rng, int(rng.integers(0, 100)))
            got = _run(a, ins, rows, C)
            assert set(got) == set(b.get_output_details())
            want = _run(b, ins, rows, C) if key == "decode" else verify_reference(gt, ins, rows, C)
            for n in want:
                assert np.array_equal(got[n], want[n]), (key, n)
            if key == "verify":
                steps = _decode_steps(gt.get_signature_runner("decode"), ins, rows, C)
                vs_decode.append({n: float(np.abs(steps[n].astype(np.float64) - got[n]).max()) for n in steps})
    return vs_decode


def test_decode_and_verify_equal_the_ground_truth(enabled):
    """decode: bit-identical to the with-assistant export on random inputs (logits, activations, caches).
    The batched verify: bit-identical to the with-assistant export's own (batched) verify on both families.
    torch: that is also 4 decode calls bit for bit. jax (INT8 caches): the exporter's verify, like ours, keeps
    the KV rows it writes in float within one call while 4 decode calls re-quantize each row, so both differ
    from those calls by up to one INT8 step in the caches of the layers after the first."""
    fam, out, _ = enabled
    vs_decode = _compare_with_ground_truth(out, fam, lambda gt, ins, rows, C: _run(
        gt.get_signature_runner("verify"), ins, rows, C))
    for diff in vs_decode:
        if fam is TORCH:
            assert all(v == 0 for v in diff.values()), diff
        else:
            assert diff["kv_cache_k_0"] == 0 and diff["kv_cache_v_0"] == 0, diff  # the first layer's rows: exact
            assert diff["kv_cache_k_1"] <= 3 and diff["kv_cache_v_1"] <= 3, diff  # a few INT8 steps at most
            assert 0 < max(diff.values()), diff


@pytest.mark.parametrize("fam", FAMILIES, ids=FAM_IDS)
def test_unbatched_verify_is_exactly_the_decode_calls(fam, tmp_path):
    """--unbatched keeps the construction as G+1 IF-calls of decode's graph: 4 decode calls bit for bit."""
    out = tmp_path / "unbatched.litertlm"
    res = json.loads(cli("enable-mtp", no_mtp(fam), "-o", out, "--unbatched", "--json").stdout)
    assert res["batched"] is False and "asked for (--unbatched" in res["unbatched_reason"]
    assert any(n.startswith("not batched: ") for n in res["notes"]) and res["equivalence"]["bit_identical"]
    vs_decode = _compare_with_ground_truth(out, fam, lambda gt, ins, rows, C: _decode_steps(
        gt.get_signature_runner("decode"), ins, rows, C))
    assert all(v == 0 for d in vs_decode for v in d.values())
    text = cli("enable-mtp", no_mtp(fam), "-o", out, "--unbatched", "--force").stdout
    assert "verify: NOT batched, 4 decode calls per verify call: asked for (--unbatched" in " ".join(text.split())


def _verify_ops(path):
    from mtpsurgeon.formats.open import open_file
    from mtpsurgeon.formats.tflite import TFLiteModel
    from mtpsurgeon.surgery.ir import Model

    f = open_file(path)
    ir = Model.from_tflite(f if isinstance(f, TFLiteModel) else f.model(f.find("tf_lite_prefill_decode").index))
    return {k: [n.op for n in ir.signature(k).graph.nodes] for k in ("decode", "verify")}


def test_the_batched_verify_is_one_pass_like_the_exporters(enabled):
    """Structure: no control flow, each weight matmul once (as many FULLY_CONNECTED as decode: the LM head
    and every projection read their weights once per verify call), op count close to the exporter's verify."""
    fam, out, _ = enabled
    ours, gt = _verify_ops(out), _verify_ops(fam.path("base_prefill_decode.tflite"))
    assert not {"IF", "WHILE", "CALL"} & set(ours["verify"])
    assert ours["verify"].count("FULLY_CONNECTED") == ours["decode"].count("FULLY_CONNECTED") \
        == gt["verify"].count("FULLY_CONNECTED")
    assert ours["verify"].count("BATCH_MATMUL") == gt["verify"].count("BATCH_MATMUL")
    assert len(ours["verify"]) <= 1.5 * len(gt["verify"]), (len(ours["verify"]), len(gt["verify"]))


def test_tune_re_specializes_the_batched_verify(enabled, tmp_path):
    """The batched verify is an ordinary batched graph: `tune` changes its length (symbolic shape inference),
    and its gate passes (verify over G'+1 tokens vs as many decode calls)."""
    fam, out, _ = enabled
    res = mtpsurgeon.tune(out, 1, tmp_path / "g1.litertlm")
    assert res.draft_steps == 1 and res.source_draft_steps == 3 and res.equivalence.ok(), res.equivalence.describe()
    d = Interpreter(model_content=section(tmp_path / "g1.litertlm")).get_signature_runner("verify").get_input_details()
    assert d["input_pos"]["shape"].tolist() == [2] and d["mask"]["shape"].tolist() == [1, 1, 2, 128]


def _base_with_an_op_without_batched_form(tmp_path):
    """The torch no-MTP base with a TILE (multiples 1: the identity) before the LM head: decode computes the
    same, but no batched rule exists for TILE."""
    from mtpsurgeon.formats.open import open_file
    from mtpsurgeon.formats.tflite.schema import fb
    from mtpsurgeon.surgery.ir import Model
    from mtpsurgeon.surgery.respecialize_verify import write_base

    src = tmp_path / "base.tflite"
    src.write_bytes(section(no_mtp(TORCH)))
    m = open_file(src)
    ir = Model.from_tflite(m)
    g = ir.signature("decode").graph
    head = next(n for n in g.nodes if any(t is ir.signature("decode").outputs["logits"] for t in n.outputs))
    x = head.inputs[0]
    tiled = g.add_tensor("decode_tiled_hidden", x.shape, x.dtype)
    node = g.add_node("TILE", [x, g.add_constant("ones", np.ones(len(x.shape), np.int32))], [tiled], fb.TileOptionsT())
    g.nodes.remove(node)
    g.nodes.insert(g.nodes.index(head), node)
    head.inputs[0] = tiled
    path = tmp_path / "tile.tflite"
    write_base(ir, m, path)
    return path


def test_an_op_without_batched_form_falls_back_to_the_unbatched_verify_and_says_so(tmp_path):
    base = _base_with_an_op_without_batched_form(tmp_path)
    res = mtpsurgeon.enable_mtp(base, tmp_path / "out.tflite")
    assert res.batched is False and "TILE" in res.unbatched_reason and "cannot be proven" in res.unbatched_reason
    assert res.equivalence["bit_identical"] and any("TILE" in n for n in res.notes)
    assert "IF" in _verify_ops(tmp_path / "out.tflite")["verify"]
    text = " ".join(cli("enable-mtp", base, "-o", tmp_path / "cli.tflite").stdout.split())
    assert "verify: NOT batched" in text and "TILE" in text


def _checkpoint(fam, tmp_path):
    if fam is TORCH:
        return fam.path("assistant")
    ck = tmp_path / "jax-hf"
    cli("extract", fam.path("gemma4-mini.litertlm"), "--names", "hf", "--dtype", "f32", "-o", ck)
    return ck


@pytest.mark.parametrize("fam", FAMILIES, ids=FAM_IDS)
def test_build_drafter_on_a_no_mtp_base_runs_mtp_in_the_engine(fam, tmp_path):
    ck = _checkpoint(fam, tmp_path)
    out, ref = tmp_path / "with-mtp.litertlm", tmp_path / "ground-truth-rebuilt.litertlm"
    res = json.loads(cli("build-drafter", ck, "--base", no_mtp(fam), "-o", out, "--json").stdout)
    assert res["mtp_added"]["equivalence"]["bit_identical"] and res["mtp_added"]["batched"]
    assert not list(tmp_path.glob(".mtpsurgeon-enable-*"))  # the intermediate base is gone
    cli("build-drafter", ck, "--base", fam.path("gemma4-mini.litertlm"), "--replace", "-o", ref)
    on, off, gt = (engine(str(p), s, tuple(fam.prompts), 24) for p, s in ((out, "on"), (out, "off"), (ref, "on")))
    for r in (on, off, gt):
        assert r["engine_created"] and r["error"] is None, r
    assert on["texts"] == gt["texts"]
    for a, b in zip(on["texts"], off["texts"]):  # MTP may overshoot max_output_tokens by up to G tokens
        wa, wb = a.split(), b.split()
        assert len(wb) >= 16 and wa[: len(wb)] == wb and len(wa) - len(wb) <= 3, (a, b)
    assert len(on["success_rates"]) == 1 and on["success_rates"][0] > 0.5, on["success_rates"]
    assert abs(on["success_rates"][0] - gt["success_rates"][0]) <= 0.02, (on["success_rates"], gt["success_rates"])


def _ambiguous_base(tmp_path):
    """The torch no-MTP base with one more decode input, [1, 1, 8], that is neither a token input nor a cache."""
    from mtpsurgeon.formats.open import open_file
    from mtpsurgeon.surgery.ir import Model
    from mtpsurgeon.surgery.respecialize_verify import write_base

    src = tmp_path / "base.tflite"
    src.write_bytes(section(no_mtp(TORCH)))
    m = open_file(src)
    ir = Model.from_tflite(m)
    dec = ir.signature("decode")
    extra = dec.graph.add_tensor("decode_extra", [1, 1, 8])
    dec.graph.inputs.append(extra)
    dec.inputs["extra"] = extra
    path = tmp_path / "ambiguous.tflite"
    write_base(ir, m, path)
    return path


def test_a_base_whose_token_axis_is_ambiguous_is_refused_and_nothing_written(tmp_path):
    base = _ambiguous_base(tmp_path)
    out = tmp_path / "out.tflite"
    with pytest.raises(SurgeryError, match=r"'extra' \[1, 1, 8\].*ambiguous"):
        mtpsurgeon.enable_mtp(base, out)
    p = cli("enable-mtp", base, "-o", out, ok=False)
    assert "extra" in p.stderr and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not out.exists() and sorted(x.name for x in tmp_path.iterdir()) == ["ambiguous.tflite", "base.tflite"]


def test_enable_mtp_refuses_a_base_that_has_verify(tmp_path):
    p = cli("enable-mtp", TORCH.path("gemma4-mini.litertlm"), "-o", tmp_path / "x.litertlm", ok=False)
    assert "already has a 'verify'" in p.stderr
    p = cli("build-drafter", TORCH.path("assistant"), "--base", TORCH.path("hidden/no-drafter.litertlm"),
            "-o", tmp_path / "y.litertlm", "--draft-steps", "2", ok=False)
    assert "tune" in p.stderr and not (tmp_path / "y.litertlm").exists()


def test_draft_steps_sets_the_verify_length(tmp_path):
    res = mtpsurgeon.enable_mtp(JAX.path("no-mtp/" + JAX.no_mtp["file"]), tmp_path / "g2.litertlm", draft_steps=2)
    assert res.verify_tokens == 3 and res.equivalence["bit_identical"] and res.batched
    d = Interpreter(model_content=section(tmp_path / "g2.litertlm")).get_signature_runner("verify").get_input_details()
    assert d["input_pos"]["shape"].tolist() == [3] and d["mask"]["shape"].tolist() == [1, 1, 3, 128]


@pytest.mark.parametrize("fam", FAMILIES, ids=FAM_IDS)
def test_inspect_says_mtp_can_be_added_and_which_checkpoints_fit(fam, tmp_path):
    doc = json.loads(cli("inspect", no_mtp(fam), "--json").stdout)["mtp"]
    assert doc["verdict"] == "absent" and "can be added" in doc["summary"]
    (f,) = [f for f in doc["findings"] if f["kind"] == "mtp_addable"]
    fit = f["dims"]["checkpoint_fit"]
    dims = fam.dims  # the generator's answer key
    assert fit["backbone_hidden_size"] == dims["H"] and fit["vocab_size"] == dims["V"]
    assert fit["kv_layers"] == {"32": 0, "64": 1} and fit["kv_heads"] == (1 if fam is TORCH else 2)
    assert any("'verify' over G+1 = 4 tokens" in a for a in f["dims"]["adds"])
    # the fix printed works as written once CHECKPOINT is filled in
    assert doc["fix"].startswith("mtpsurgeon build-drafter CHECKPOINT --base ")
    text = cli("inspect", no_mtp(fam)).stdout
    assert "mtp_addable" in text and "backbone_hidden_size = 64" in text
    # after enable-mtp the finding is gone (verify + activations present): the base is MTP-ready
    out = tmp_path / "e.litertlm"
    cli("enable-mtp", no_mtp(fam), "-o", out)
    after = json.loads(cli("inspect", out, "--json").stdout)["mtp"]
    assert [f["kind"] for f in after["findings"]] == ["section_missing"]


def test_inspect_of_an_mtp_ready_base_has_no_addable_finding():
    doc = json.loads(cli("inspect", TORCH.path("hidden/no-drafter.litertlm"), "--json").stdout)["mtp"]
    assert "mtp_addable" not in [f["kind"] for f in doc["findings"]]


def test_a_batched_verify_that_fails_the_gate_is_not_written(tmp_path, monkeypatch):
    """The gate decides: with a deliberately wrong rule (SOFTMAX lifted as LOG_SOFTMAX) the batched verify
    computes something else, fails verify == 4 decode calls, and the unbatched construction is written instead,
    saying why."""
    from mtpsurgeon.surgery import token_block_rules as rules
    from mtpsurgeon.surgery.ir import OpCode

    def wrong_softmax(lf, n):
        rules.row_wise(lf, n)
        lf.dst.nodes[-1].opcode = OpCode.make("LOG_SOFTMAX")
        lf.dst.nodes[-1].options, lf.dst.nodes[-1].options_type = None, 0

    monkeypatch.setitem(rules.RULES, "SOFTMAX", wrong_softmax)
    res = mtpsurgeon.enable_mtp(no_mtp(TORCH), tmp_path / "out.litertlm")
    assert res.batched is False and "failed the gate" in res.unbatched_reason, res.unbatched_reason
    assert res.equivalence["bit_identical"] and "IF" in _verify_ops(tmp_path / "out.litertlm")["verify"]
