"""bench runs the official LiteRT-LM engine (litert-lm-api) in child processes, MTP off and on.

Oracles: the fixture README's measured success rate (1.0 with 24-32 new tokens on
prompts.txt), the engine itself through the independent probe script, and the
runtime's definition of the success rate (accepted drafts / drafted tokens)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES
from mtpsurgeon.engine.stats import PromptRun, engine_run, summarize
from test_restore_fixtures import _mislinked_drafter

PROBE = Path(__file__).with_name("fixture_engine_probe.py")
PROMPTS = FIXTURES / "prompts.txt"
TOP_KEYS = {"file", "backend", "draft_steps", "prompts", "max_tokens", "repeats", "runs", "off", "on", "speedup",
            "greedy_identical", "mismatched_prompts", "verdict_kind", "verdict", "threads", "cost", "cost_note",
            "per_prompt"}
RUN_KEYS = {"speculative", "repeat", "prefill_tokens_per_second", "decode_tokens_per_second", "success_rate",
            "accepted_per_verify_step", "prompts"}
PROMPT_KEYS = {"prompt", "text", "prefill_tokens", "prefill_tokens_per_second", "decode_tokens",
               "decode_tokens_per_second", "time_to_first_token_seconds"}
TOTAL_KEYS = {"prefill_tokens_per_second", "decode_tokens_per_second", "success_rate", "accepted_per_verify_step",
              "tokens_per_verify_step"}


def mtpsurgeon(*args, cwd=None, expect=0, pre=""):
    code = f"{pre}import sys; from mtpsurgeon.cli.main import main; sys.argv = ['mtpsurgeon', *sys.argv[1:]]; main()"
    p = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=600,
                       cwd=cwd)
    assert p.returncode == expect, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    return p


@pytest.fixture(scope="module")
def ground_truth_bench():
    before = sorted(FIXTURES.rglob("*"))
    p = mtpsurgeon("bench", FIXTURES / "gemma4-mini.litertlm", "--prompts", PROMPTS, "--max-tokens", 32,
                   "--repeats", 2, "--json")
    assert sorted(FIXTURES.rglob("*")) == before  # the engine's cache files went to a private folder
    return json.loads(p.stdout)


def test_ground_truth_greedy_text_and_success_rate(ground_truth_bench):
    r = ground_truth_bench
    assert r["draft_steps"] == 3 and r["greedy_identical"] is True and r["mismatched_prompts"] == []
    on = [run for run in r["runs"] if run["speculative"]]
    off = [run for run in r["runs"] if not run["speculative"]]
    assert [run["repeat"] for run in on] == [run["repeat"] for run in off] == [1, 2]
    assert [run["success_rate"] for run in on] == [1.0, 1.0]  # fixtures/README.md, "LiteRT-LM engine"
    assert all(run["success_rate"] is None for run in off)
    assert r["on"]["accepted_per_verify_step"] == 3.0 and r["on"]["tokens_per_verify_step"] == 4.0
    # The off-run texts are what the independent probe script gets from the engine.
    probe = subprocess.run([sys.executable, str(PROBE), str(FIXTURES / "gemma4-mini.litertlm"), "--spec", "off",
                            "--prompts-file", str(PROMPTS), "--max-tokens", "32"], capture_output=True, text=True,
                           timeout=600)
    assert [p["text"] for p in off[0]["prompts"]] == json.loads(probe.stdout.strip().splitlines()[-1])["texts"]
    prompts = [line for line in PROMPTS.read_text().splitlines() if line and not line.startswith("#")]
    assert [p["prompt"] for p in on[0]["prompts"]] == prompts


def test_json_schema(ground_truth_bench):
    r = ground_truth_bench
    assert set(r) == TOP_KEYS
    assert r["prompts"] == 8 and r["max_tokens"] == 32 and r["repeats"] == 2 and r["backend"] == "cpu"
    for run in r["runs"]:
        assert set(run) == RUN_KEYS and len(run["prompts"]) == 8
        assert run["decode_tokens_per_second"] > 0 and run["prefill_tokens_per_second"] > 0
        for p in run["prompts"]:
            assert set(p) == PROMPT_KEYS and p["decode_tokens"] >= 32 and isinstance(p["text"], str)
    assert set(r["on"]) == set(r["off"]) == TOTAL_KEYS
    s = r["speedup"]
    ratios = [on["decode_tokens_per_second"] / off["decode_tokens_per_second"]
              for on, off in zip(*(sorted((x for x in r["runs"] if x["speculative"] == m), key=lambda x: x["repeat"])
                                   for m in (True, False)))]
    assert s["per_repeat"] == pytest.approx(ratios) and s["min"] <= s["median"] <= s["max"]
    assert r["verdict_kind"] in {"faster", "slower", "unclear"} and r["verdict"].startswith("MTP ")


def test_terminal_table_and_verdict(tmp_path):
    p = mtpsurgeon("bench", FIXTURES / "gemma4-mini.litertlm", "--prompts", PROMPTS, "--max-tokens", 24,
                   "--repeats", 1)
    assert "draft steps G = 3" in p.stdout and "decode tok/s" in p.stdout and "identical" in p.stdout
    verdict = p.stdout.strip().splitlines()[-1]
    assert verdict.startswith(("MTP speeds decoding up", "MTP slows decoding here: leave it off",
                               "MTP makes no clear difference here"))


def test_no_drafter_means_unavailable():
    p = mtpsurgeon("bench", FIXTURES / "hidden/no-drafter.litertlm", expect=1)
    assert "speculative decoding is unavailable" in p.stderr and "no-drafter.litertlm" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and p.stdout == ""


def test_missing_engine_is_one_line(tmp_path):
    p = mtpsurgeon("bench", FIXTURES / "gemma4-mini.litertlm", expect=1, pre="import sys; sys.modules['litert_lm'] = None; ")
    assert "pip install 'mtpsurgeon[engine]'" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_a_tflite_is_refused():
    p = mtpsurgeon("bench", FIXTURES / "mtp_drafter.tflite", expect=2)
    assert ".litertlm container" in p.stderr


def test_an_aborting_engine_is_reported_not_fatal(tmp_path):
    """A drafter whose KV inputs the base lacks aborts the 0.18.1 engine (SIGABRT): only the child dies."""
    # mtpsurgeon never writes such a drafter tagged (the engine aborts on it), so pack it with the official builder.
    from litert_lm_builder import litertlm_builder as B

    bad = tmp_path / "bad.litertlm"
    builder = B.LitertLmFileBuilder.unpack(str(FIXTURES / "hidden/no-drafter.litertlm"), str(tmp_path / "unpacked"))
    builder.add_tflite_model(str(_mislinked_drafter(tmp_path)), B.TfLiteModelType.MTP_DRAFTER)
    with open(bad, "wb") as f:
        builder.build(f)
    p = mtpsurgeon("bench", bad, "--repeats", 1, "--max-tokens", 8, expect=1)
    assert "aborted with SIGABRT" in p.stderr and "MTP on" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_restore_bench_needs_a_written_file(tmp_path):
    p = mtpsurgeon("restore", FIXTURES / "hidden/untagged-drafter.litertlm", "-o", tmp_path / "x.litertlm", "--bench",
                   "--dry-run", expect=2)
    assert "--dry-run" in p.stderr and not any(tmp_path.iterdir())


def test_restore_bench_measures_what_it_wrote(tmp_path):
    out = tmp_path / "fixed.litertlm"
    p = mtpsurgeon("restore", FIXTURES / "hidden/untagged-drafter.litertlm", "-o", out, "--bench", "--prompts", PROMPTS,
                   "--max-tokens", 32, "--repeats", 1, "--json")
    r = json.loads(p.stdout)
    assert r["status"] == "restored" and r["bench"]["file"] == str(out)
    assert r["bench"]["greedy_identical"] is True and r["bench"]["on"]["success_rate"] == 1.0
    assert sorted(x.name for x in tmp_path.iterdir()) == ["fixed.litertlm", "fixed.safetensors"]


def _run(speculative, repeat, texts, decode_tps, rate=None):
    prompts = [PromptRun(f"p{i}", t, 5, 1000.0, 32, decode_tps, 0.001) for i, t in enumerate(texts)]
    return engine_run(speculative, repeat, prompts, rate, 3)


def test_summary_arithmetic_and_a_changed_text_is_broken():
    runs = [_run(False, 1, ["a b", "c d"], 100.0), _run(True, 1, ["a b e", "c d"], 150.0, 0.5),
            _run(False, 2, ["a b", "c d"], 100.0), _run(True, 2, ["a b", "c X"], 130.0, 0.25)]
    r = summarize("m.litertlm", "cpu", 3, 32, runs)
    assert r.speedup.per_repeat == pytest.approx([1.5, 1.3]) and r.speedup.median == pytest.approx(1.4)
    assert r.on.success_rate == pytest.approx(0.375) and r.on.accepted_per_verify_step == pytest.approx(1.125)
    assert r.runs[1].accepted_per_verify_step == pytest.approx(1.5)  # G x rate
    assert r.mismatched_prompts == [1] and not r.greedy_identical and r.verdict_kind == "broken"
    ok = summarize("m.litertlm", "cpu", 3, 32, runs[:3] + [_run(True, 2, ["a b", "c d"], 130.0, 0.25)])
    assert ok.greedy_identical and ok.verdict == "MTP speeds decoding up 1.4× here"


def test_build_drafter_bench_measures_what_it_wrote(tmp_path):
    out = tmp_path / "built.litertlm"
    p = mtpsurgeon("build-drafter", FIXTURES / "assistant", "--base", FIXTURES / "hidden/no-drafter.litertlm", "-o", out,
                   "--no-rope", "--bench", "--prompts", PROMPTS, "--max-tokens", 16, "--repeats", 1, "--json")
    r = json.loads(p.stdout)
    assert r["output"] == str(out) and r["bench"]["file"] == str(out)
    assert r["bench"]["greedy_identical"] is True and r["bench"]["on"]["success_rate"] > 0
