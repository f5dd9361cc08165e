"""The cost model of speculative decoding: when does MTP pay off, from the cost of each model call?

With MTP off the LiteRT-LM engine makes, per token, one embedder call (E), one
``decode`` (D) and its own per-step work (O). With MTP on, one cycle makes G
drafter steps (d) and one ``verify`` over G + 1 tokens (V), embeds G drafted
tokens for the drafter and G + 1 tokens for verify (2G + 1 embedder calls;
the per-layer embedder P, when there is one, runs for verify's G + 1 tokens
only), does its per-step work once, and yields 1 + G·r tokens, r being the
engine's success rate (accepted drafts / drafted tokens). So::

    step  = D + E + P + O                       (ms per token, MTP off)
    cycle = V + G·d + (2G + 1)·E + (G + 1)·P + O
    speed-up(r) = (1 + G·r) · step / cycle
    break-even r* = (cycle / step − 1) / G      (r* > 1: MTP cannot pay off here)
    ceiling = speed-up(1) = (1 + G) · step / cycle

O is estimated from the engine's own MTP-off decode time minus the
interpreter's D + E + P (clamped at 0: the interpreter's kernels may be slower
than the engine's), and counted once per step on both sides.

>>> c = predict(3, decode_ms=84.0, verify_ms=106.0, draft_step_ms=2.0, success_rate=0.08)
>>> round(c.break_even_success_rate, 3), round(c.ceiling_speedup, 2), round(c.predicted_speedup, 2)
(0.111, 3.0, 0.93)
>>> c.explanation
'verify costs 1.26 decodes and 3 drafts 0.07; MTP pays off above a success rate of 0.11; measured 0.08: predicted 0.93×'
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from mtpsurgeon.engine.call_timing import CallTime
from mtpsurgeon.jsonrecord import JsonRecord


@dataclass(frozen=True)
class CostModel(JsonRecord):
    """What ``bench --json`` prints under ``cost`` (times in ms per call, medians)."""

    _nested = {"calls": CallTime}
    threads: int | None
    draft_steps: int  #: G
    decode_ms: float  #: D, base ``decode`` (T = 1)
    verify_ms: float  #: V, base ``verify`` over G + 1 tokens
    draft_step_ms: float  #: d, one drafter call (signature 0)
    embedder_ms: float  #: E, one embedder call (0: the base embeds tokens itself)
    per_layer_embedder_ms: float  #: P (0: no per-layer embedder)
    overhead_ms: float  #: O, the engine's own work per step (MTP-off engine time − D − E − P, ≥ 0)
    engine_decode_ms: float | None  #: the engine's measured ms per token, MTP off
    decode_step_ms: float  #: D + E + P + O
    cycle_ms: float  #: V + G·d + (2G+1)·E + (G+1)·P + O
    engine_cycle_ms: float | None  #: the engine's measured ms per cycle, MTP on: (1 + G·r) / tokens per ms
    unexplained_cycle_ms: float | None  #: engine_cycle_ms − cycle_ms: the engine's MTP work the calls do not account for
    break_even_success_rate: float
    ceiling_speedup: float
    success_rate: float | None  #: the engine's, MTP on
    predicted_speedup: float | None  #: at ``success_rate``
    measured_speedup: float | None  #: the engine's, median over repeats
    explanation: str
    calls: list[CallTime] = field(default_factory=list)

    def speedup_at(self, success_rate: float) -> float:
        """Predicted decode speed-up at another success rate (e.g. one prompt's)."""
        return (1 + self.draft_steps * success_rate) * self.decode_step_ms / self.cycle_ms


def predict(draft_steps: int, *, decode_ms: float, verify_ms: float, draft_step_ms: float, embedder_ms: float = 0.0,
            per_layer_embedder_ms: float = 0.0, overhead_ms: float = 0.0, success_rate: float | None = None,
            measured_speedup: float | None = None, engine_decode_ms: float | None = None,
            engine_cycle_ms: float | None = None, threads: int | None = None,
            calls: list[CallTime] | None = None) -> CostModel:
    """The cost model from per-call times (see the module docstring); a pure function."""
    g = draft_steps
    if g < 1 or decode_ms <= 0 or verify_ms <= 0 or draft_step_ms < 0:
        raise ValueError("the cost model needs G >= 1 and positive decode and verify times")
    step = decode_ms + embedder_ms + per_layer_embedder_ms + overhead_ms
    cycle = verify_ms + g * draft_step_ms + (2 * g + 1) * embedder_ms + (g + 1) * per_layer_embedder_ms + overhead_ms
    model = CostModel(threads, g, decode_ms, verify_ms, draft_step_ms, embedder_ms, per_layer_embedder_ms, overhead_ms,
                      engine_decode_ms, step, cycle, engine_cycle_ms,
                      None if engine_cycle_ms is None else engine_cycle_ms - cycle, (cycle / step - 1) / g,
                      (1 + g) * step / cycle,
                      success_rate, None, measured_speedup, "", list(calls or []))
    predicted = None if success_rate is None else model.speedup_at(success_rate)
    return replace(model, predicted_speedup=predicted, explanation=explain(replace(model, predicted_speedup=predicted)))


def explain(c: CostModel) -> str:
    """One sentence: what verify and the drafts cost in decodes, the break-even rate, and the measured one.

    It also names the engine's per-step work when it exceeds a quarter of a
    decode, and the engine's measured cycle time when it is more than 25 % off
    the calls' prediction (then the engine's own MTP work, not the models,
    decides the speed-up).
    """
    d = c.decode_ms
    parts = [f"verify costs {c.verify_ms / d:.2f} decodes and {c.draft_steps} drafts "
             f"{c.draft_steps * c.draft_step_ms / d:.2f}"]
    if c.overhead_ms > SIGNIFICANT * d:
        parts.append(f"the engine adds {c.overhead_ms:.3g} ms per step ({c.overhead_ms / d:.1f} decodes)")
    if c.break_even_success_rate >= 1:
        parts.append(f"MTP cannot pay off here even if every draft is accepted (at most {c.ceiling_speedup:.2f}×)")
    else:
        parts.append(f"MTP pays off above a success rate of {c.break_even_success_rate:.2f}")
    if c.success_rate is not None and c.predicted_speedup is not None:
        measured = f", measured {c.measured_speedup:.2f}×" if c.measured_speedup is not None else ""
        parts.append(f"measured {c.success_rate:.2f}: predicted {c.predicted_speedup:.2f}×{measured}")
    text = "; ".join(parts)
    if c.engine_cycle_ms is not None and not (1 - SIGNIFICANT) * c.cycle_ms <= c.engine_cycle_ms <= (1 + SIGNIFICANT) * c.cycle_ms:
        text += (f" (the engine's cycle takes {c.engine_cycle_ms:.3g} ms where its calls predict "
                 f"{c.cycle_ms:.3g} ms)")
    return text


#: Fraction from which the sentence names the engine's own work (of a decode) or a cycle-time mismatch.
SIGNIFICANT = 0.25


def from_calls(calls: list[CallTime], draft_steps: int, *, threads: int | None, engine_decode_ms: float | None,
               success_rate: float | None, measured_speedup: float | None,
               engine_on_tokens_per_second: float | None) -> CostModel:
    """The cost model from timed calls and the engine's measured figures."""
    ms = {c.role: c.median_ms for c in calls}
    extra = ms.get("embedder", 0.0) + ms.get("per_layer_embedder", 0.0)
    overhead = max(0.0, engine_decode_ms - ms["decode"] - extra) if engine_decode_ms else 0.0
    cycle = None
    if success_rate is not None and engine_on_tokens_per_second:
        cycle = (1 + draft_steps * success_rate) * 1000.0 / engine_on_tokens_per_second
    return predict(draft_steps, decode_ms=ms["decode"], verify_ms=ms["verify"], draft_step_ms=ms["draft_step"],
                   embedder_ms=ms.get("embedder", 0.0), per_layer_embedder_ms=ms.get("per_layer_embedder", 0.0),
                   overhead_ms=overhead, success_rate=success_rate, measured_speedup=measured_speedup,
                   engine_decode_ms=engine_decode_ms, engine_cycle_ms=cycle, threads=threads, calls=calls)
