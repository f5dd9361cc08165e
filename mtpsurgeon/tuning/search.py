"""Search the draft length: build each variant, measure it, keep the fastest.

    result = search_draft_steps("gemma4-mini.litertlm", range(1, 5), "tuned.litertlm", prompts)
    result.winner            # the Variant written to OUT, or None if MTP never pays off
"""
from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from mtpsurgeon.engine.call_timing import ENGINE_CPU_THREADS, ROLES, CallTime, time_engine_calls
from mtpsurgeon.engine.cost import from_calls
from mtpsurgeon.errors import MtpSurgeonError, UsageError
from mtpsurgeon.formats.litertlm import LiteRTLMContainer
from mtpsurgeon.formats.open import open_file
from mtpsurgeon.inputs import SideFileRefused
from mtpsurgeon.outputs import atomic_output, check_writable, same_file
from mtpsurgeon.surgery.respecialize_verify import tune_draft_steps
from mtpsurgeon.tuning.measure import Measurement, measure

#: Used when no --prompts file is given: short, generic, greedy-friendly.
DEFAULT_PROMPTS = ("The capital of France is", "def fibonacci(n):", "Once upon a time",
                   "1, 2, 3, 4, 5,", "Translate to German: good morning")


@dataclass
class Variant:
    draft_steps: int
    measurement: Measurement | None = None
    error: str | None = None
    source: bool = False  #: the input's own draft length
    predicted_speedup: float | None = None  #: the cost model (``bench``'s) at the measured success rate
    break_even_success_rate: float | None = None

    def to_json(self) -> dict:
        return {"draft_steps": self.draft_steps, "source": self.source, "error": self.error,
                **({} if self.measurement is None else self.measurement.to_json()),
                "predicted_speedup": self.predicted_speedup, "break_even_success_rate": self.break_even_success_rate}


def predict_variant(v: Variant, path: Path, shared: list[CallTime]) -> None:
    """Fill ``v``'s cost-model prediction. Only `verify` changes with G, so decode, the drafter step and the
    embedder are timed once (into ``shared``, on the first variant) and `verify` on every variant."""
    m = v.measurement
    if m is None:
        return
    try:
        calls = time_engine_calls(path, roles=["verify"] if shared else ROLES)
        if not shared:
            shared.extend(c for c in calls if c.role != "verify")
        calls = [*(c for c in calls if c.role == "verify"), *shared]
    except MtpSurgeonError:
        return  # the prediction is informative only; the measurement stands
    off_ms = 1000 / m.tok_s_off if m.tok_s_off else None
    cost = from_calls(calls, v.draft_steps, threads=ENGINE_CPU_THREADS, engine_decode_ms=off_ms,
                      success_rate=m.success_rate, measured_speedup=m.speedup, engine_on_tokens_per_second=m.tok_s_on)
    v.predicted_speedup, v.break_even_success_rate = cost.predicted_speedup, cost.break_even_success_rate


@dataclass
class SearchResult:
    variants: list[Variant]
    baseline_tok_s: float  #: MTP off (median over the variants; the base model does not change)
    winner: Variant | None
    output: Path | None
    message: str
    notes: list[str] = field(default_factory=list)  #: per-variant remarks (e.g. greedy text changed)
    hint: str | None = None  #: what to do when MTP never pays off

    def to_json(self) -> dict:
        return {"variants": [v.to_json() for v in self.variants], "baseline_tok_s_off": self.baseline_tok_s,
                "winner": None if self.winner is None else self.winner.draft_steps,
                "output": None if self.output is None else str(self.output), "message": self.message,
                "notes": self.notes, "hint": self.hint}


def parse_steps(text: str) -> list[int]:
    """'1-4' or '1,2,4' -> [1, 2, 3, 4] / [1, 2, 4]; every value >= 1."""
    out: list[int] = []
    try:
        for part in text.split(","):
            a, _, b = part.strip().partition("-")
            out.extend(range(int(a), int(b) + 1) if b else [int(a)])
    except ValueError:
        raise UsageError(f"--search {text!r}: expected a range like 1-4 or a list like 1,2,4") from None
    if not out or min(out) < 1:
        raise UsageError(f"--search {text!r}: draft steps must be >= 1 (0 drafts nothing)")
    return sorted(set(out))


def adaptive_note() -> str:
    """Whether the installed engine has the runtime's ADAPTIVE speculative-decoding mode."""
    try:
        import litert_lm
        from importlib.metadata import version

        names = " ".join(f"{n} {' '.join(dir(getattr(litert_lm, n, None)))}" for n in dir(litert_lm))
        v = version("litert-lm-api")
    except Exception:  # noqa: BLE001 - the note is informative only
        return "The LiteRT-LM runtime's newer builds have an ADAPTIVE mode that switches MTP off when it does not pay"
    if "ADAPTIVE" in names.upper():
        return f"The installed engine (litert-lm-api {v}) has an ADAPTIVE mode: let it switch MTP on and off"
    return (f"The installed engine (litert-lm-api {v}) has no ADAPTIVE mode; newer LiteRT-LM builds do "
            "(it switches MTP on or off at run time, it does not change G)")


def search_draft_steps(model: str | os.PathLike, steps: Iterable[int], out: str | os.PathLike,
                       prompts: Sequence[str] = DEFAULT_PROMPTS, *, force: bool = False, max_tokens: int = 32,
                       repeats: int = 3, progress: Callable[[str], None] | None = None,
                       measure_fn: Callable[..., Measurement] = measure, predict: bool = True) -> SearchResult:
    """Build `verify` for every G in ``steps`` in a temporary folder, measure each, write the fastest to ``out``.

    ``predict`` adds the cost model's predicted speed-up at each variant's measured success rate
    (:func:`predict_variant`; the engine's default thread count).
    """
    src = open_file(model)
    if not isinstance(src, LiteRTLMContainer):
        raise UsageError(f"{src.path}: --search measures with the LiteRT-LM engine, which runs .litertlm "
                         "containers; use --draft-steps G for a .tflite")
    out = Path(out)
    if same_file(out, src.path):
        raise UsageError(f"{out}: refusing to overwrite the input file")
    check_writable(out, force)
    variants: list[Variant] = []
    shared: list[CallTime] = []
    with tempfile.TemporaryDirectory(prefix="mtpsurgeon-tune-") as work:
        for g in steps:
            v = Variant(g)
            variants.append(v)
            path = Path(work) / f"g{g}.litertlm"
            if progress:
                progress(f"G={g}: building")
            try:
                r = tune_draft_steps(src, g, path)
                v.source = r.source_draft_steps == g
                if progress:
                    progress(f"G={g}: measuring")
                step = (lambda msg, g=g: progress(f"G={g}: {msg}")) if progress else None
                v.measurement = measure_fn(path, prompts, max_tokens=max_tokens, repeats=repeats, progress=step)
                if predict:
                    if progress:
                        progress(f"G={g}: cost model")
                    predict_variant(v, path, shared)
            except SideFileRefused:
                raise  # the input itself is refused (mtpsurgeon.inputs): no variant could differ
            except MtpSurgeonError as exc:
                v.error = str(exc)
        ok = [v for v in variants if v.measurement is not None]
        if not ok:
            raise MtpSurgeonError(f"{src.path}: no variant could be built and measured: "
                                  + "; ".join(f"G={v.draft_steps}: {v.error}" for v in variants))
        baseline = statistics.median(v.measurement.tok_s_off for v in ok)
        good = [v for v in ok if v.measurement.identical]
        best = max(good, key=lambda v: v.measurement.tok_s_on, default=None)
        notes = [f"G={v.draft_steps}: greedy text with MTP on differs from off; not a candidate"
                 for v in ok if not v.measurement.identical]
        if best is None or best.measurement.tok_s_on <= baseline:
            return SearchResult(variants, baseline, None, None,
                                f"MTP does not pay off at any G here (best MTP-on "
                                f"{max(v.measurement.tok_s_on for v in ok):.0f} tok/s vs {baseline:.0f} tok/s off); "
                                "nothing written", notes, adaptive_note())
        with atomic_output(out, force) as tmp:
            shutil.copyfile(Path(work) / f"g{best.draft_steps}.litertlm", tmp)
    return SearchResult(variants, baseline, best, out,
                        f"fastest: G={best.draft_steps} at {best.measurement.tok_s_on:.0f} tok/s with MTP "
                        f"({best.measurement.tok_s_on / baseline:.2f}x MTP off)", notes)
