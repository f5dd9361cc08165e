"""Measure one container with the LiteRT-LM engine: speed with MTP on and off.

    m = measure("g1.litertlm", ["w1 w2", "w3 w4"])
    m.tok_s_on, m.tok_s_off, m.success_rate, m.identical

The same engine session and figures as ``mtpsurgeon bench``
(:func:`~mtpsurgeon.engine.session.alternate_runs`: MTP off and on in child
processes, alternating); tokens/s are the engine's own decode benchmark, the
median over repeats (:func:`~mtpsurgeon.engine.stats.summarize`).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from mtpsurgeon.engine.runner import INSTALL_HINT, WorkerOutput, engine_available
from mtpsurgeon.engine.session import alternate_runs
from mtpsurgeon.engine.stats import BenchResult, summarize
from mtpsurgeon.errors import EngineError, EngineUnavailableError, MtpSurgeonError


@dataclass
class Measurement:
    tok_s_on: float  #: decode tokens/s with speculative decoding on (median over repeats)
    tok_s_off: float  #: ... and off
    success_rate: float | None  #: the drafter's acceptance rate (engine log), None if not logged
    identical: bool  #: greedy text with MTP on == off for every prompt (on the off-run's text)
    tokens: int = 0  #: decode tokens of one MTP-on run over the prompts
    texts_on: list[str] = field(default_factory=list)
    texts_off: list[str] = field(default_factory=list)
    speedup_per_repeat: list[float] = field(default_factory=list)  #: decode tok/s on ÷ off, per repeat

    @property
    def speedup(self) -> float:
        return self.tok_s_on / self.tok_s_off if self.tok_s_off else float("nan")

    def to_json(self) -> dict:
        d = asdict(self)
        d["speedup"] = self.speedup
        return d

    @classmethod
    def from_bench(cls, r: BenchResult) -> "Measurement":
        """The figures of a bench result (:func:`mtpsurgeon.engine.stats.summarize`)."""
        first_on = next(run for run in r.runs if run.speculative and run.repeat == 1)
        first_off = next(run for run in r.runs if not run.speculative and run.repeat == 1)
        return cls(tok_s_on=r.on.decode_tokens_per_second, tok_s_off=r.off.decode_tokens_per_second,
                   success_rate=r.on.success_rate, identical=r.greedy_identical,
                   tokens=sum(p.decode_tokens for p in first_on.prompts),
                   texts_on=[p.text for p in first_on.prompts], texts_off=[p.text for p in first_off.prompts],
                   speedup_per_repeat=list(r.speedup.per_repeat))


def _base_facts(path: Path) -> tuple[int | None, int]:
    """(draft steps G, the engine's context = the base's KV cache length, 128 if it cannot be read)."""
    from mtpsurgeon.analysis import analyze

    try:
        base = analyze(path).base
    except MtpSurgeonError:
        return None, 128
    if base is None:
        return None, 128
    steps = base.verify_len - 1 if base.verify_len else None
    return steps, base.cache_len or 128


def measure(path: str | os.PathLike, prompts: Sequence[str], *, max_tokens: int = 32, repeats: int = 3,
            timeout: float = 600, progress: Callable[[str], None] | None = None) -> Measurement:
    """Greedy decoding of ``prompts`` with MTP off and on, ``repeats`` times each; see the module docstring.

    Raises :class:`~mtpsurgeon.errors.EngineUnavailableError` without ``litert-lm-api`` and
    :class:`~mtpsurgeon.errors.EngineError` when an engine run fails.
    """
    path = Path(path)
    if not engine_available():
        raise EngineUnavailableError(f"tune --search needs the LiteRT-LM engine (litert-lm-api): {INSTALL_HINT}")
    steps, context = _base_facts(path)

    def check(out: WorkerOutput, mode: str) -> None:
        if out.error is not None:
            raise EngineError(f"{path}: the LiteRT-LM engine failed with MTP {mode}: {out.error}")

    runs = alternate_runs(path, prompts, max_tokens=max_tokens, repeats=repeats, max_num_tokens=context,
                          draft_steps=steps, check=check, timeout=timeout, progress=progress)
    return Measurement.from_bench(summarize(str(path), "cpu", steps, max_tokens, runs))
