"""``mtpsurgeon.enable_mtp``: add `activations` and `verify` to a base exported without MTP."""
from __future__ import annotations

import os

from mtpsurgeon.api.results import EnableResult
from mtpsurgeon.inputs import accepts_weights_dir
from mtpsurgeon.surgery.enable_mtp import EnableOutcome
from mtpsurgeon.surgery.enable_mtp import enable_mtp as _enable

PathLike = str | os.PathLike

__all__ = ["enable_mtp", "outcome_result"]


def outcome_result(base: PathLike, outcome: EnableOutcome) -> EnableResult:
    """The public record of one :func:`~mtpsurgeon.surgery.enable_mtp.enable_mtp` run."""
    p, eq = outcome.plan, outcome.equivalence
    return EnableResult.from_json({
        "base": str(base), "output": str(outcome.output), "section": outcome.section,
        "draft_steps": p.tokens - 1, "verify_tokens": p.tokens, "activations": p.activations, "hidden": p.hidden,
        "lm_head": p.lm_head, "token_inputs": p.token_inputs, "state": p.state,
        "equivalence": {"ok": eq.ok(), "bit_identical": eq.bit_identical, "max_abs_diff": eq.max_abs_diff,
                        "kernels": eq.kernels, "detail": eq.describe()},
        "unchanged_signatures": outcome.unchanged_signatures, "unchanged_sections": outcome.unchanged_sections,
        "notes": p.notes, "batched": p.batched, "unbatched_reason": p.unbatched_reason})


@accepts_weights_dir
def enable_mtp(base: PathLike, out: PathLike, *, draft_steps: int = 3, force: bool = False,
               seed: int = 0, batched: bool = True) -> EnableResult:
    """Write ``base`` (a .litertlm or a prefill/decode .tflite exported without MTP) to ``out`` with
    decode's ``activations`` output and a ``verify`` signature over ``draft_steps`` + 1 tokens.

    Gated before ``out`` is renamed into place (verify vs repeated decode in the LiteRT interpreter,
    other signatures and sections unchanged); raises :class:`~mtpsurgeon.errors.SurgeryError` naming
    what cannot be added, and writes nothing then. ``verify`` is one batched pass over the tokens where
    that construction is proven (``batched=False``: never), else G + 1 decode calls; the result's
    ``batched`` and ``unbatched_reason`` say which and why.
    """
    return outcome_result(base, _enable(base, out, draft_steps=draft_steps, force=force, seed=seed, batched=batched))
