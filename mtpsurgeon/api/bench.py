"""``mtpsurgeon.bench``: does speculative decoding with the MTP drafter pay off on this machine?"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from mtpsurgeon.api.inspect import analysed
from mtpsurgeon.engine.call_timing import ENGINE_CPU_THREADS, TimingPlan, time_engine_calls
from mtpsurgeon.engine.cost import CostModel, from_calls
from mtpsurgeon.engine.runner import INSTALL_HINT, WorkerOutput, engine_available
from mtpsurgeon.engine.session import alternate_runs
from mtpsurgeon.engine.stats import BenchResult, per_prompt_row, summarize, with_cost
from mtpsurgeon.errors import (EngineError, EngineUnavailableError, MalformedFileError,
                               SpeculativeDecodingUnavailableError, UsageError)
from mtpsurgeon.formats.litertlm import LiteRTLMContainer
from mtpsurgeon.formats.litertlm.schema import MTP_DRAFTER
from mtpsurgeon.inputs import accepts_weights_dir

#: Used when no prompts are given: everyday requests of different lengths and kinds.
DEFAULT_PROMPTS = (
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Explain step by step how a refrigerator keeps food cold.",
    "List ten uses for a paperclip, one per line.",
    "Summarise the causes of the First World War in one paragraph.",
)
BACKENDS = ("cpu", "gpu")


def read_prompts(path: str | os.PathLike) -> list[str]:
    """One prompt per line; blank lines and lines starting with '#' are skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read prompts ({exc.__class__.__name__})") from None
    prompts = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise UsageError(f"{path}: no prompts in the file (one per line)")
    return prompts


def _facts(path: str | os.PathLike) -> tuple[int | None, int | None]:
    """(draft steps G, engine token budget) from the file's structure; refuse files without a drafter."""
    with analysed(path) as analysis:
        file = analysis.file
        if not isinstance(file, LiteRTLMContainer):
            raise UsageError(f"{path}: bench runs the LiteRT-LM engine, which needs a .litertlm container")
        if file.find(MTP_DRAFTER) is None:
            fix = f" (fix: {analysis.verdict.fix})" if analysis.verdict.fix else ""
            raise SpeculativeDecodingUnavailableError(
                f"{path}: speculative decoding is unavailable: the container has no '{MTP_DRAFTER}' section{fix}")
        dims = analysis.base
        steps = dims.verify_len - 1 if dims is not None and dims.verify_len else None
        if steps is None or steps < 1:
            raise SpeculativeDecodingUnavailableError(
                f"{path}: speculative decoding is unavailable: the base model has no usable 'verify' signature")
        budget = (file.llm_metadata or {}).get("max_num_tokens") or (dims.cache_len if dims else None)
        return steps, budget if isinstance(budget, int) else None


@accepts_weights_dir
def bench(path: str | os.PathLike, *, prompts: Sequence[str] | None = None, max_tokens: int = 64, repeats: int = 3,
          backend: str = "cpu", chat_template: bool = False, max_num_tokens: int | None = None,
          timeout: float = 1800, progress: Callable[[str], None] | None = None, threads: int | None = None,
          cost: bool = True, per_prompt: bool = False) -> BenchResult:
    """Decode ``prompts`` greedily with the official LiteRT-LM engine, MTP off and on, and compare.

    Every (mode, repeat) is one engine in its own child process, on a private
    symlink of the model (the engine writes cache files beside the model).
    Reports prefill/decode tokens/s per run and in total, the engine's MTP
    success rate, accepted drafts per verify step (G × rate, G = draft steps
    from the base's ``verify`` signature), the decode speed-up on ÷ off with
    its spread over ``repeats``, whether the greedy text was identical (on the
    off-run's text: the on-run may add up to G tokens), and a verdict.

    ``threads`` is the CPU backend's thread count, given to the engine and to
    the cost model (default: the engine's own default, 4). ``cost`` times the
    container's own model calls in the LiteRT interpreter (base ``decode``,
    ``verify`` over G + 1 tokens, one drafter step, the embedder) and adds the
    cost model (:mod:`mtpsurgeon.engine.cost`: break-even success rate,
    ceiling, predicted beside measured speed-up, one explaining sentence) as
    ``result.cost``; on the GPU backend it is skipped (``result.cost_note``).
    ``per_prompt`` also runs every prompt alone, one engine per (prompt, mode,
    repeat), for ``result.per_prompt``: each prompt's success rate and speed-up.

    Raises :class:`~mtpsurgeon.errors.EngineUnavailableError` without
    ``litert-lm-api``, :class:`~mtpsurgeon.errors.SpeculativeDecodingUnavailableError`
    for a container without a drafter, :class:`~mtpsurgeon.errors.EngineError`
    when the engine fails. ``progress(message)`` is called before each run.

    >>> import mtpsurgeon
    >>> result = mtpsurgeon.bench("fixtures/gemma4-mini.litertlm", prompts=["w17 w1 w3 w23"], repeats=1)
    >>> result.draft_steps, result.greedy_identical, result.on.success_rate
    (3, True, 1.0)
    >>> result.verdict_kind in ("faster", "slower", "unclear")
    True
    >>> result.threads, result.cost.draft_steps, result.cost.verify_ms > 0
    (4, 3, True)
    """
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend '{backend}' (choose from {', '.join(BACKENDS)})")
    if max_tokens < 1 or repeats < 1:
        raise UsageError("--max-tokens and --repeats must be at least 1")
    prompts = list(prompts) if prompts is not None else list(DEFAULT_PROMPTS)
    if not prompts:
        raise UsageError("no prompts to run")
    steps, budget = _facts(path)
    if not engine_available():
        raise EngineUnavailableError(f"bench needs the LiteRT-LM engine (litert-lm-api): {INSTALL_HINT}")

    def check(out: WorkerOutput, mode: str) -> None:
        if out.error is not None:
            if "tf_lite_mtp_drafter not found" in out.error:
                raise SpeculativeDecodingUnavailableError(
                    f"{path}: speculative decoding is unavailable: the engine found no drafter")
            raise EngineError(f"{path}: the LiteRT-LM engine failed with MTP {mode}: {out.error}")
        if mode == "on" and out.result.get("has_speculative_decoding_support") is False:
            raise SpeculativeDecodingUnavailableError(
                f"{path}: speculative decoding is unavailable: the engine reports no support for it")

    if threads is not None and threads < 1:
        raise UsageError("--threads must be at least 1")
    threads = (threads or ENGINE_CPU_THREADS) if backend == "cpu" else None

    def session(texts: Sequence[str]) -> BenchResult:
        runs = alternate_runs(path, texts, max_tokens=max_tokens, repeats=repeats,
                              max_num_tokens=max_num_tokens or budget, draft_steps=steps, check=check, backend=backend,
                              chat_template=chat_template, timeout=timeout, progress=progress, threads=threads)
        return summarize(str(path), backend, steps, max_tokens, runs)

    result = replace(session(prompts), threads=threads)
    if per_prompt:
        rows = []
        for i, prompt in enumerate(prompts):
            if progress is not None:
                progress(f"prompt {i + 1}/{len(prompts)} alone")
            rows.append(per_prompt_row(i, prompt, session([prompt])))
        result = replace(result, per_prompt=rows)
    if not cost:
        return result
    if backend != "cpu":
        return with_cost(result, None, f"the cost model times the CPU interpreter, not the {backend} backend: skipped")
    if progress is not None:
        progress("cost model: timing decode, verify, one draft step and the embedder in the interpreter")
    try:
        return with_cost(result, _cost_model(path, steps, threads, result))
    except (EngineError, MalformedFileError) as exc:  # the engine's figures stand; say why there is no cost model
        return with_cost(result, None, f"not available: {exc}")


def _cost_model(path: str | os.PathLike, steps: int, threads: int, r: BenchResult) -> CostModel:
    calls = time_engine_calls(path, TimingPlan(threads=threads))
    off = r.off.decode_tokens_per_second
    return from_calls(calls, steps, threads=threads, engine_decode_ms=1000.0 / off if off else None,
                      success_rate=r.on.success_rate, measured_speedup=r.speedup.median,
                      engine_on_tokens_per_second=r.on.decode_tokens_per_second)
