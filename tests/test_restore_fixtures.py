"""restore on every container/tflite hiding place, proven with independent oracles:
the LiteRT interpreter, litert-lm-builder's peek code, the LiteRT-LM engine and safetensors."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as fb
from ai_edge_litert.interpreter import Interpreter
from safetensors.numpy import load_file

from conftest import FIXTURES
from fixture_oracles import builder_sections

PROBE = Path(__file__).with_name("fixture_engine_probe.py")
PROMPTS = FIXTURES / "prompts.txt"


def cli(*args, expect=0):
    p = subprocess.run([sys.executable, "-m", "mtpsurgeon", *map(str, args)], capture_output=True, text=True, timeout=300)
    assert p.returncode == expect, (p.returncode, p.stdout, p.stderr)
    return p


def peek_sections(path: Path) -> list[tuple[str | None, str]]:
    """(model_type, sha256) per section, read by the official litert-lm-builder code."""
    out = []
    for model_type, begin, data in builder_sections(path):
        assert begin % (16 * 1024) == 0
        out.append((model_type, hashlib.sha256(data).hexdigest()))
    return out


def section_bytes(path: Path, model_type: str) -> bytes:
    found = [data for t, _, data in builder_sections(path) if t == model_type]
    if not found:
        raise AssertionError(f"no {model_type} section in {path}")
    return found[0]


def drafter_outputs(model_bytes: bytes) -> dict[str, np.ndarray]:
    """Run signature 'mtp_drafter' on fixed random inputs."""
    runner = Interpreter(model_content=model_bytes).get_signature_runner("mtp_drafter")
    rng = np.random.default_rng(7)
    feed = {}
    for name, d in runner.get_input_details().items():
        shape, dtype = tuple(d["shape"]), np.dtype(d["dtype"])
        feed[name] = (np.ones(shape, bool) if dtype == np.bool_ else
                      rng.standard_normal(shape).astype(dtype) if np.issubdtype(dtype, np.floating) else
                      np.zeros(shape, dtype))
    return runner(**feed)


GROUND_TRUTH = (FIXTURES / "mtp_drafter.tflite").read_bytes()


def assert_same_drafter(model_bytes: bytes, ground_truth: bytes = GROUND_TRUTH) -> None:
    want, got = drafter_outputs(ground_truth), drafter_outputs(model_bytes)
    assert set(want) == set(got)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])


def engine(path: Path, spec: str, prompts: Path = PROMPTS) -> dict:
    p = subprocess.run([sys.executable, str(PROBE), str(path), "--spec", spec, "--prompts-file", str(prompts)],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


def same_greedy(spec_texts: list[str], plain_texts: list[str]) -> bool:
    """Speculative output starts with the plain greedy output, token for token."""
    return len(spec_texts) == len(plain_texts) and all(
        s.split()[: len(p.split())] == p.split() and len(p.split()) > 0 for s, p in zip(spec_texts, plain_texts))


@pytest.fixture(scope="module")
def ground_truth_engine(tmp_path_factory):
    gt = tmp_path_factory.mktemp("gt") / "gemma4-mini.litertlm"  # the engine drops caches beside the model
    shutil.copy(FIXTURES / "gemma4-mini.litertlm", gt)
    return engine(gt, "on")


CASES = {
    "hidden/untagged-drafter.litertlm": [],
    "hidden/mistagged-drafter.litertlm": [],
    "hidden/unsigned-drafter.litertlm": [],
    "hidden/no-drafter.litertlm": ["--drafter", FIXTURES / "mtp_drafter.tflite"],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_restored_container(name, tmp_path, ground_truth_engine):
    src = FIXTURES / name
    before = src.read_bytes()
    out = tmp_path / "restored.litertlm"
    cli("restore", src, "-o", out, *CASES[name])
    assert src.read_bytes() == before  # the input is never modified

    # litert-lm-builder reads it; untouched sections are byte-identical.
    ours, theirs = peek_sections(out), peek_sections(src)
    assert [t for t, _ in ours].count("tf_lite_mtp_drafter") == 1
    src_shas = [sha for _, sha in theirs]
    changed = [sha for t, sha in ours if sha not in src_shas]
    assert len(changed) <= 1
    if name.startswith("hidden/unsigned"):
        assert changed, "the re-exposed drafter section must differ"
    assert_same_drafter(section_bytes(out, "tf_lite_mtp_drafter"))

    # The LiteRT-LM engine: speculative decoding on == off, and the ground truth's success rate.
    on, off = engine(out, "on"), engine(out, "off")
    assert on["error"] is None and off["error"] is None
    assert on["has_speculative_decoding_support"] is True
    # With speculative decoding the engine may emit the cycle's bonus token past max_output_tokens,
    # so greedy equality is checked on the tokens decoding without it produced.
    assert same_greedy(on["texts"], off["texts"]) and same_greedy(ground_truth_engine["texts"], off["texts"])
    assert on["success_rates"] and on["success_rates"] == ground_truth_engine["success_rates"]

    # The dump of re-linked weights loads with safetensors.
    weights = load_file(str(out.with_suffix(".safetensors")))
    assert "pre_projection.weight" in weights and "embed_tokens.weight" in weights


def test_unsigned_tflite_gets_its_signature_back(tmp_path):
    out = tmp_path / "drafter.tflite"
    cli("restore", FIXTURES / "hidden/unsigned-drafter.tflite", "-o", out, "--no-dump")
    assert list(Interpreter(model_path=str(out)).get_signature_list()) == ["mtp_drafter"]
    assert_same_drafter(out.read_bytes())


def test_complete_model_is_a_noop(tmp_path):
    out = tmp_path / "x.litertlm"
    p = cli("restore", FIXTURES / "gemma4-mini.litertlm", "-o", out)
    assert "nothing to restore" in p.stdout and not out.exists()


def test_nothing_hidden_is_an_error(tmp_path):
    out = tmp_path / "x.tflite"
    p = cli("restore", FIXTURES / "base_prefill_decode.tflite", "-o", out, expect=1)
    assert "nothing hidden" in p.stderr and not out.exists()


def test_missing_drafter_option_is_a_usage_error(tmp_path):
    p = cli("restore", FIXTURES / "hidden/no-drafter.litertlm", "-o", tmp_path / "x.litertlm", expect=2)
    assert "--drafter" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def _mislinked_drafter(tmp_path: Path) -> Path:
    """The ground-truth drafter with one KV input renamed, so it no longer fits the base."""
    m = fb.ModelT.InitFromPackedBuf(GROUND_TRUTH, 0)
    for tm in m.signatureDefs[0].inputs:
        if tm.name in (b"kv_cache_k_0", "kv_cache_k_0"):
            tm.name = "kv_cache_k_9"
    import flatbuffers

    b = flatbuffers.Builder(1 << 20)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    path = tmp_path / "mislinked.tflite"
    path.write_bytes(bytes(b.Output()))
    return path


def _short_mask_drafter(tmp_path: Path) -> Path:
    """The ground-truth drafter with its mask input declared half as long as the base's cache (a non-KV failure)."""
    m = fb.ModelT.InitFromPackedBuf(GROUND_TRUTH, 0)
    sig = m.signatureDefs[0]
    for tm in sig.inputs:
        if tm.name in (b"mask", "mask"):
            t = m.subgraphs[sig.subgraphIndex].tensors[tm.tensorIndex]
            t.shape = [*list(t.shape)[:-1], int(t.shape[-1]) // 2]
            if t.shapeSignature is not None and len(t.shapeSignature):
                t.shapeSignature = list(t.shape)
    import flatbuffers

    b = flatbuffers.Builder(1 << 20)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    path = tmp_path / "short-mask.tflite"
    path.write_bytes(bytes(b.Output()))
    return path


def test_link_gate_refuses_a_mismatched_drafter(tmp_path):
    bad = _mislinked_drafter(tmp_path)
    out = tmp_path / "x.litertlm"
    p = cli("restore", FIXTURES / "hidden/no-drafter.litertlm", "--drafter", bad, "-o", out, expect=1)
    assert "link checks failed" in p.stderr and "kv_cache_k_9" in p.stderr
    assert not out.exists() and not out.with_suffix(".safetensors").exists()
    # --force only overwrites; a drafter whose KV inputs the base lacks is refused even when failures are accepted.
    for flags in (["--force"], ["--accept-link-failures"], ["--force", "--accept-link-failures"]):
        p = cli("restore", FIXTURES / "hidden/no-drafter.litertlm", "--drafter", bad, "-o", out, *flags, "--no-verify",
                expect=1)
        assert "never written as a tagged drafter" in p.stderr and not out.exists()


def test_accept_link_failures_writes_a_non_kv_mismatch(tmp_path):
    bad = _short_mask_drafter(tmp_path)
    out = tmp_path / "x.litertlm"
    p = cli("restore", FIXTURES / "hidden/no-drafter.litertlm", "--drafter", bad, "-o", out, "--force", "--no-verify",
            expect=1)
    assert "mask length" in p.stderr and "--accept-link-failures" in p.stderr and not out.exists()
    p = cli("restore", FIXTURES / "hidden/no-drafter.litertlm", "--drafter", bad, "-o", out, "--accept-link-failures",
            "--no-verify")
    assert "warning" in p.stdout and out.exists() and out.with_suffix(".safetensors").exists()
    # inspect and restore agree: the tagged drafter that fails its checks is 'mismatched'.
    p = cli("inspect", out, "--json")
    assert json.loads(p.stdout)["mtp"]["verdict"] == "mismatched" and json.loads(p.stdout)["mtp"]["fix"] is None
    p = cli("restore", out, "-o", tmp_path / "again.litertlm", expect=1)
    assert "mismatched" in p.stderr


def test_existing_output_is_not_overwritten(tmp_path):
    out = tmp_path / "r.litertlm"
    out.write_bytes(b"keep me")
    p = cli("restore", FIXTURES / "hidden/untagged-drafter.litertlm", "-o", out, expect=1)
    assert "already exists" in p.stderr and out.read_bytes() == b"keep me"


def test_dry_run_writes_nothing(tmp_path):
    out = tmp_path / "r.litertlm"
    p = cli("restore", FIXTURES / "hidden/mistagged-drafter.litertlm", "-o", out, "--dry-run")
    assert "re-tag section 5" in p.stdout and not out.exists()


def test_graft_takes_the_drafter_from_another_container(tmp_path):
    out = tmp_path / "r.litertlm"
    cli("restore", FIXTURES / "hidden/no-drafter.litertlm", "--drafter", FIXTURES / "gemma4-mini.litertlm", "-o", out)
    grafted = section_bytes(out, "tf_lite_mtp_drafter")
    assert grafted == (FIXTURES / "mtp_drafter.tflite").read_bytes()
