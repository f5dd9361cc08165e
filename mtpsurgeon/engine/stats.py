"""Bench figures: per engine run, per mode, and the on/off comparison.

Definitions (LiteRT-LM runtime, ``llm_litert_mtp_drafter.cc``): every verify
step drafts G tokens (G = len(verify ``input_pos``) − 1); drafts are accepted
up to the first mismatch and the verifier adds one token. The engine's
*success rate* is accepted drafts / drafted tokens over the engine's life, so
accepted drafts per verify step = G × rate and tokens per verify step =
1 + G × rate.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, replace

from mtpsurgeon.engine.cost import CostModel
from mtpsurgeon.engine.verdict import decide
from mtpsurgeon.jsonrecord import JsonRecord


@dataclass(frozen=True)
class PromptRun(JsonRecord):
    """One prompt decoded greedily by one engine."""

    prompt: str
    text: str
    prefill_tokens: int
    prefill_tokens_per_second: float
    decode_tokens: int
    decode_tokens_per_second: float
    time_to_first_token_seconds: float


@dataclass(frozen=True)
class EngineRun(JsonRecord):
    """One engine (one child process) over every prompt, speculative decoding on or off."""

    _nested = {"prompts": PromptRun}
    speculative: bool
    repeat: int  #: 1, 2, …
    prefill_tokens_per_second: float
    decode_tokens_per_second: float
    success_rate: float | None  #: engine log, on-runs only
    accepted_per_verify_step: float | None  #: G × success_rate
    prompts: list[PromptRun]


@dataclass(frozen=True)
class ModeTotals(JsonRecord):
    """Median over the repeats of one mode."""

    prefill_tokens_per_second: float
    decode_tokens_per_second: float
    success_rate: float | None
    accepted_per_verify_step: float | None
    tokens_per_verify_step: float | None


@dataclass(frozen=True)
class SpeedUp(JsonRecord):
    """Decode tokens/s with MTP on ÷ off: per repeat, median and spread."""

    median: float
    min: float
    max: float
    per_repeat: list[float]


@dataclass(frozen=True)
class PromptComparison(JsonRecord):
    """One prompt on its own (``bench --per-prompt``): one engine per (prompt, mode, repeat)."""

    index: int  #: 0-based position in the prompt list
    prompt: str
    off_decode_tokens_per_second: float  #: median over repeats
    on_decode_tokens_per_second: float
    success_rate: float | None  #: the engine's, median over repeats
    tokens_per_verify_step: float | None  #: 1 + G × success_rate
    speedup: float  #: median over repeats of on ÷ off
    speedup_min: float
    speedup_max: float
    greedy_identical: bool
    on_decode_tokens: int  #: tokens the MTP-on run decoded (median over repeats): 1 + cycles × (1 + G × rate)
    predicted_speedup: float | None = None  #: the cost model at this prompt's success rate


@dataclass(frozen=True)
class BenchResult(JsonRecord):
    """What ``mtpsurgeon bench --json`` prints."""

    _nested = {"runs": EngineRun, "off": ModeTotals, "on": ModeTotals, "speedup": SpeedUp, "cost": CostModel,
               "per_prompt": PromptComparison}
    file: str
    backend: str
    draft_steps: int | None  #: G
    prompts: int
    max_tokens: int
    repeats: int
    runs: list[EngineRun]
    off: ModeTotals
    on: ModeTotals
    speedup: SpeedUp
    greedy_identical: bool
    mismatched_prompts: list[int]  #: indices of prompts whose on-run text did not extend the off-run text
    verdict_kind: str  #: 'faster' | 'slower' | 'unclear' | 'broken'
    verdict: str
    threads: int | None = None  #: the engine's CPU thread count (None: its default, or not the CPU backend)
    cost: CostModel | None = None  #: the cost model (None: not asked for, or ``cost_note`` says why not)
    cost_note: str | None = None
    per_prompt: list[PromptComparison] | None = None  #: ``--per-prompt`` only


def per_prompt_row(index: int, prompt: str, r: BenchResult) -> PromptComparison:
    """One prompt's figures from the summary of its own runs."""
    s = r.speedup
    tokens = statistics.median_low([sum(p.decode_tokens for p in run.prompts) for run in r.runs if run.speculative])
    return PromptComparison(index, prompt, r.off.decode_tokens_per_second, r.on.decode_tokens_per_second,
                            r.on.success_rate, r.on.tokens_per_verify_step, s.median, s.min, s.max, r.greedy_identical,
                            tokens)


def with_cost(r: BenchResult, cost: CostModel | None, note: str | None = None) -> BenchResult:
    """Attach the cost model: per-prompt predictions, and its explanation appended to the verdict."""
    rows = r.per_prompt
    if cost is not None and rows is not None:
        rows = [replace(p, predicted_speedup=None if p.success_rate is None else cost.speedup_at(p.success_rate))
                for p in rows]
    verdict = r.verdict if cost is None or r.verdict_kind == "broken" else f"{r.verdict} — {cost.explanation}"
    return replace(r, cost=cost, cost_note=note, per_prompt=rows, verdict=verdict)


def _rate(tokens: int, per_second: float) -> float:
    return tokens / per_second if per_second > 0 else 0.0


def engine_run(speculative: bool, repeat: int, prompts: list[PromptRun], success_rate: float | None,
               draft_steps: int | None) -> EngineRun:
    """Throughput of one run: total tokens over total time, across its prompts."""
    def throughput(tokens: list[int], rates: list[float]) -> float:
        seconds = sum(_rate(t, r) for t, r in zip(tokens, rates))
        return sum(tokens) / seconds if seconds > 0 else 0.0

    prefill = throughput([p.prefill_tokens for p in prompts], [p.prefill_tokens_per_second for p in prompts])
    decode = throughput([p.decode_tokens for p in prompts], [p.decode_tokens_per_second for p in prompts])
    accepted = draft_steps * success_rate if success_rate is not None and draft_steps else None
    return EngineRun(speculative, repeat, prefill, decode, success_rate, accepted, prompts)


def same_greedy(on_text: str, off_text: str) -> bool:
    """The on-run may add up to G tokens past the limit: compare on the off-run's text.

    A trailing U+FFFD (a character cut at the token limit) is not compared.

    >>> same_greedy("w1 w2 w3 w4", "w1 w2"), same_greedy("w1 w9 w3", "w1 w2")
    (True, False)
    """
    return on_text.startswith(off_text.rstrip("\ufffd"))


def _totals(runs: list[EngineRun], draft_steps: int | None) -> ModeTotals:
    rates = [r.success_rate for r in runs if r.success_rate is not None]
    rate = statistics.median(rates) if rates else None
    accepted = draft_steps * rate if rate is not None and draft_steps else None
    return ModeTotals(statistics.median(r.prefill_tokens_per_second for r in runs),
                      statistics.median(r.decode_tokens_per_second for r in runs), rate, accepted,
                      None if accepted is None else 1 + accepted)


def summarize(file: str, backend: str, draft_steps: int | None, max_tokens: int, runs: list[EngineRun]) -> BenchResult:
    """Compare the on- and off-runs of every repeat and state the verdict."""
    off = sorted((r for r in runs if not r.speculative), key=lambda r: r.repeat)
    on = sorted((r for r in runs if r.speculative), key=lambda r: r.repeat)
    ratios = [a.decode_tokens_per_second / b.decode_tokens_per_second if b.decode_tokens_per_second else 0.0
              for a, b in zip(on, off)]
    mismatched = sorted({i for a, b in zip(on, off) for i, (pa, pb) in enumerate(zip(a.prompts, b.prompts))
                         if not same_greedy(pa.text, pb.text)})
    identical = not mismatched and all(len(a.prompts) == len(b.prompts) for a, b in zip(on, off))
    speedup = SpeedUp(statistics.median(ratios), min(ratios), max(ratios), ratios)
    kind, sentence = decide(speedup.median, speedup.min, speedup.max, identical, len(ratios))
    return BenchResult(file, backend, draft_steps, len(off[0].prompts) if off else 0, max_tokens, len(ratios), runs,
                       _totals(off, draft_steps), _totals(on, draft_steps), speedup, identical, mismatched, kind,
                       sentence)
