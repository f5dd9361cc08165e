"""The cost model of `bench` (engine/cost.py, engine/call_timing.py) and `bench --per-prompt`.

Oracles: hand-computed arithmetic; the LiteRT interpreter running the full
section (a single-signature file must compute the same `decode`); the
container's own bytes (a kernel copy of a one-signature section); the LiteRT-LM
engine's own figures (success rates, tokens) for the per-prompt rows.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from conftest import FIXTURES
from mtpsurgeon.engine.call_timing import CallTime, TimingPlan, _single_signature_file, time_engine_calls
from mtpsurgeon.engine.cost import from_calls, predict
from mtpsurgeon.engine.timing_worker import feeds
from mtpsurgeon.errors import EngineError
from mtpsurgeon.formats.open import open_file
from test_bench import mtpsurgeon

FAMILIES = {"torch": FIXTURES, "jax": FIXTURES / "jax"}
COST_KEYS = {"threads", "draft_steps", "decode_ms", "verify_ms", "draft_step_ms", "embedder_ms",
             "per_layer_embedder_ms", "overhead_ms", "engine_decode_ms", "decode_step_ms", "cycle_ms",
             "engine_cycle_ms", "unexplained_cycle_ms", "break_even_success_rate", "ceiling_speedup", "success_rate", "predicted_speedup",
             "measured_speedup", "explanation", "calls"}
ROW_KEYS = {"index", "prompt", "off_decode_tokens_per_second", "on_decode_tokens_per_second", "success_rate",
            "tokens_per_verify_step", "speedup", "speedup_min", "speedup_max", "greedy_identical", "on_decode_tokens",
            "predicted_speedup"}


# --- arithmetic -------------------------------------------------------------------------------------

def test_arithmetic_against_hand_computed_values():
    # step = 10 + 0.5 + 2 = 12.5; cycle = 15 + 3·1 + 7·0.5 + 2 = 23.5
    c = predict(3, decode_ms=10, verify_ms=15, draft_step_ms=1, embedder_ms=0.5, overhead_ms=2, success_rate=0.5)
    assert c.decode_step_ms == pytest.approx(12.5) and c.cycle_ms == pytest.approx(23.5)
    assert c.break_even_success_rate == pytest.approx((23.5 / 12.5 - 1) / 3)  # 0.29333
    assert c.ceiling_speedup == pytest.approx(4 * 12.5 / 23.5)  # 2.1277
    assert c.predicted_speedup == pytest.approx(2.5 * 12.5 / 23.5)  # 1.3298
    assert c.speedup_at(c.break_even_success_rate) == pytest.approx(1.0)
    # A per-layer embedder runs once per MTP-off token and for verify's G + 1 tokens.
    p = predict(2, decode_ms=10, verify_ms=12, draft_step_ms=1, per_layer_embedder_ms=1)
    assert p.decode_step_ms == pytest.approx(11) and p.cycle_ms == pytest.approx(12 + 2 + 3)
    assert p.predicted_speedup is None and "measured" not in p.explanation


def test_the_sentence_explains_the_verdict():
    c = predict(3, decode_ms=84.0, verify_ms=106.0, draft_step_ms=2.0, success_rate=0.08, measured_speedup=0.7)
    assert c.explanation.startswith("verify costs 1.26 decodes and 3 drafts 0.07; MTP pays off above a success "
                                    "rate of 0.11; measured 0.08: predicted 0.93×, measured 0.70×")
    never = predict(3, decode_ms=0.07, verify_ms=0.11, draft_step_ms=1.2, success_rate=0.85)
    assert never.break_even_success_rate > 1 and never.ceiling_speedup < 1
    assert "cannot pay off here even if every draft is accepted (at most 0.08×)" in never.explanation  # 4·0.07 / (0.11 + 3·1.2)
    slow_engine = predict(3, decode_ms=1, verify_ms=1, draft_step_ms=0.1, success_rate=1, engine_cycle_ms=5)
    assert "the engine's cycle takes 5 ms where its calls predict 1.3 ms" in slow_engine.explanation
    with pytest.raises(ValueError):
        predict(0, decode_ms=1, verify_ms=1, draft_step_ms=1)


def test_from_calls_estimates_the_engine_step_and_cycle():
    calls = [CallTime("decode", 3, "decode", 1, 9, 10.0, 9.0), CallTime("verify", 3, "verify", 4, 9, 15.0, 14.0),
             CallTime("draft_step", 5, "mtp_drafter", 1, 9, 1.0, 0.9),
             CallTime("embedder", 4, "decode_embedder", 1, 9, 0.5, 0.4)]
    c = from_calls(calls, 3, threads=4, engine_decode_ms=12.5, success_rate=0.5, measured_speedup=1.2,
                   engine_on_tokens_per_second=100.0)
    assert c.overhead_ms == pytest.approx(2.0) and c.cycle_ms == pytest.approx(23.5)
    assert c.engine_cycle_ms == pytest.approx(2.5 * 1000 / 100)  # (1 + G·r) tokens per cycle at 100 tok/s
    assert c.unexplained_cycle_ms == pytest.approx(25 - 23.5)
    faster_engine = from_calls(calls, 3, threads=4, engine_decode_ms=8.0, success_rate=None, measured_speedup=None,
                               engine_on_tokens_per_second=None)
    assert faster_engine.overhead_ms == 0.0 and faster_engine.engine_cycle_ms is None


# --- the files the interpreter times ------------------------------------------------------------------

@pytest.mark.parametrize("family", FAMILIES)
def test_a_single_signature_file_computes_the_same_decode(family, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    container = open_file(FAMILIES[family] / "gemma4-mini.litertlm")
    base = container.find("tf_lite_prefill_decode").index
    single = _single_signature_file(container, base, "decode", tmp_path)
    reduced = Interpreter(model_path=str(single))
    assert list(reduced.get_signature_list()) == ["decode"]
    full = Interpreter(model_content=bytes(container.section_bytes(base)))
    assert set(full.get_signature_list()) >= {"decode", "verify"}
    runner = reduced.get_signature_runner("decode")
    inputs = feeds(runner.get_input_details(), 40, np.random.default_rng(1))
    got, want = runner(**inputs), full.get_signature_runner("decode")(**inputs)
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])


def test_a_one_signature_section_is_copied_byte_for_byte(tmp_path):
    container = open_file(FIXTURES / "jax/gemma4-mini.litertlm")
    drafter = container.find("tf_lite_mtp_drafter").index
    copy = _single_signature_file(container, drafter, "mtp_drafter", tmp_path)
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == container.section_sha256(drafter)


def test_timing_needs_a_drafter_and_a_container():
    with pytest.raises(EngineError, match="no 'tf_lite_mtp_drafter' section"):
        time_engine_calls(FIXTURES / "hidden/no-drafter.litertlm", TimingPlan(min_calls=1, min_seconds=0))
    with pytest.raises(Exception, match="litertlm container"):
        time_engine_calls(FIXTURES / "base_prefill_decode.tflite")


# --- bench --json: the cost block and --per-prompt on both families -------------------------------------

def _prompts(family, n=3):
    lines = (FAMILIES[family] / "prompts.txt").read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")][:n]


@pytest.fixture(scope="module", params=list(FAMILIES))
def per_prompt_bench(request, tmp_path_factory):
    family = request.param
    prompts = tmp_path_factory.mktemp(family) / "prompts.txt"
    prompts.write_text("\n".join(_prompts(family)) + "\n")
    p = mtpsurgeon("bench", FAMILIES[family] / "gemma4-mini.litertlm", "--prompts", prompts, "--max-tokens", 12,
                   "--repeats", 1, "--per-prompt", "--json")
    return family, json.loads(p.stdout)


def test_the_cost_block_is_timed_and_consistent(per_prompt_bench):
    family, r = per_prompt_bench
    c = r["cost"]
    assert set(c) == COST_KEYS and r["cost_note"] is None and r["threads"] == c["threads"] == 4
    assert c["draft_steps"] == r["draft_steps"] == 3
    assert [x["role"] for x in c["calls"]] == ["decode", "verify", "draft_step", "embedder"]
    assert [x["tokens"] for x in c["calls"]] == [1, 4, 1, 1]  # verify over G + 1 tokens
    for x in c["calls"]:
        assert 0 < x["min_ms"] <= x["median_ms"] and x["calls"] >= TimingPlan().min_calls
    by_role = {x["role"]: x["median_ms"] for x in c["calls"]}
    assert (c["decode_ms"], c["verify_ms"], c["draft_step_ms"], c["embedder_ms"]) == \
        (by_role["decode"], by_role["verify"], by_role["draft_step"], by_role["embedder"])
    # Every derived figure recomputed from the timings and the engine's own figures.
    G, E = 3, c["embedder_ms"]
    engine_off = 1000 / r["off"]["decode_tokens_per_second"]
    assert c["engine_decode_ms"] == pytest.approx(engine_off)
    assert c["overhead_ms"] == pytest.approx(max(0.0, engine_off - c["decode_ms"] - E))
    step = c["decode_ms"] + E + c["overhead_ms"]
    cycle = c["verify_ms"] + G * c["draft_step_ms"] + (2 * G + 1) * E + c["overhead_ms"]
    assert c["decode_step_ms"] == pytest.approx(step) and c["cycle_ms"] == pytest.approx(cycle)
    assert c["break_even_success_rate"] == pytest.approx((cycle / step - 1) / G)
    assert c["ceiling_speedup"] == pytest.approx((1 + G) * step / cycle)
    rate = r["on"]["success_rate"]
    assert c["success_rate"] == rate and c["measured_speedup"] == r["speedup"]["median"]
    assert c["predicted_speedup"] == pytest.approx((1 + G * rate) * step / cycle)
    assert c["engine_cycle_ms"] == pytest.approx((1 + G * rate) * 1000 / r["on"]["decode_tokens_per_second"])
    assert c["unexplained_cycle_ms"] == pytest.approx(c["engine_cycle_ms"] - cycle)
    assert c["explanation"] in r["verdict"] and r["verdict"].startswith("MTP ")
    if family == "jax":  # its drafter step costs many decodes: MTP cannot pay off even at rate 1
        assert c["draft_step_ms"] > 3 * c["decode_ms"] and c["ceiling_speedup"] < 1
        assert "cannot pay off" in c["explanation"]


def test_per_prompt_rows_agree_with_the_total(per_prompt_bench):
    family, r = per_prompt_bench
    rows, G = r["per_prompt"], r["draft_steps"]
    assert [row["index"] for row in rows] == [0, 1, 2] and [row["prompt"] for row in rows] == _prompts(family)
    total_on = next(run for run in r["runs"] if run["speculative"])
    for row, p in zip(rows, total_on["prompts"]):
        assert set(row) == ROW_KEYS and row["greedy_identical"] is True
        assert row["speedup"] == pytest.approx(row["on_decode_tokens_per_second"] / row["off_decode_tokens_per_second"])
        assert row["tokens_per_verify_step"] == pytest.approx(1 + G * row["success_rate"])
        assert row["on_decode_tokens"] == p["decode_tokens"]  # alone or not, the same greedy decoding
        assert row["predicted_speedup"] == pytest.approx((1 + G * row["success_rate"]) * r["cost"]["decode_step_ms"]
                                                         / r["cost"]["cycle_ms"])
    # The engine's total rate is accepted / drafted over all prompts: the per-prompt rates weighted by their
    # drafted tokens, G × cycles, where each cycle yields 1 + G × rate of the tokens after the first.
    cycles = [(row["on_decode_tokens"] - 1) / (1 + G * row["success_rate"]) for row in rows]
    combined = sum(row["success_rate"] * n for row, n in zip(rows, cycles)) / sum(cycles)
    assert combined == pytest.approx(r["on"]["success_rate"], abs=0.01)


def test_the_text_table_shows_cost_and_prompts(tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(_prompts("torch", 2)) + "\n")
    p = mtpsurgeon("bench", FIXTURES / "gemma4-mini.litertlm", "--prompts", prompts, "--max-tokens", 8, "--repeats", 1,
                   "--per-prompt", "--threads", 2)
    out = p.stdout
    assert "per prompt (each alone" in out and "cost model (LiteRT interpreter, XNNPACK, 2 threads" in out
    assert "break-even success rate" in out and "verify costs" in out and "draft step" in out


def test_no_cost_and_bad_options(tmp_path):
    p = mtpsurgeon("bench", FIXTURES / "gemma4-mini.litertlm", "--prompts", FIXTURES / "prompts.txt", "--max-tokens", 4,
                   "--repeats", 1, "--no-cost", "--json")
    r = json.loads(p.stdout)
    assert r["cost"] is None and r["cost_note"] is None and r["per_prompt"] is None and r["threads"] == 4
    assert "verify costs" not in r["verdict"]
    bad = mtpsurgeon("bench", FIXTURES / "gemma4-mini.litertlm", "--threads", 0, expect=2)
    assert "--threads" in bad.stderr
    none = mtpsurgeon("bench", FIXTURES / "hidden/no-drafter.litertlm", "--per-prompt", expect=1)
    assert "speculative decoding is unavailable" in none.stderr and len(none.stderr.strip().splitlines()) == 1
