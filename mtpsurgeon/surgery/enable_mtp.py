"""Enable MTP on a base exported without it: add `activations` to `decode` and a `verify` signature.

    from mtpsurgeon.surgery.enable_mtp import enable_mtp
    result = enable_mtp("gemma-4-12B.litertlm", "12B-verify.litertlm", draft_steps=3)

What is added is described in :mod:`mtpsurgeon.surgery.add_verify`: `verify`
is one batched pass (:mod:`mtpsurgeon.surgery.add_batched_verify`) where that
construction is proven, else G + 1 calls of decode's graph, and the outcome's
plan says which and why. The result is gated before it is renamed into place:
in the LiteRT interpreter `verify` over G + 1 tokens must equal G + 1 `decode`
calls (logits, activations, every KV cache; with INT8 caches on the float twin,
see :func:`~mtpsurgeon.surgery.respecialize_verify.verify_equivalence`); every other signature keeps its structural
fingerprint, `decode` changes only by the added output; in a container every
other section is byte-identical (the header is rewritten for the new section
offsets and sizes only: no metadata section or item changes). The base's
weights are never copied in memory: the IR holds views of the input's map and
the container is rewritten by a kernel-level copy.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mtpsurgeon.errors import SurgeryError, UsageError, malformed_model
from mtpsurgeon.formats.litertlm import LiteRTLMContainer
from mtpsurgeon.formats.open import ModelFile, open_file
from mtpsurgeon.formats.tflite import TFLiteModel
from mtpsurgeon.outputs import atomic_output
from mtpsurgeon.surgery.add_batched_verify import add_batched_verify
from mtpsurgeon.surgery.add_verify import ACTIVATIONS, DECODE, VERIFY, VerifyPlan, add_activations, add_verify
from mtpsurgeon.surgery.ir import Model
from mtpsurgeon.surgery.ir.fingerprint import signature_fingerprint
from mtpsurgeon.surgery.respecialize_verify import (
    GATE_XNNPACK_BELOW,
    _file_sha,
    _sha,
    open_for_rewrite,
    verify_equivalence,
    write_rewritten,
)
from mtpsurgeon.surgery.token_blocks import NotLiftable
from mtpsurgeon.surgery.verify_vs_decode import Equivalence, check_verify_matches_decode

PREFILL_DECODE = "tf_lite_prefill_decode"


@dataclass
class EnableOutcome:
    output: Path
    section: int | None
    plan: VerifyPlan
    equivalence: Equivalence
    unchanged_signatures: list[str]
    unchanged_sections: list[int] = field(default_factory=list)


def base_model_of(src: ModelFile) -> tuple[TFLiteModel, int | None]:
    """The prefill/decode model: the file itself, or the container's `tf_lite_prefill_decode` section."""
    if isinstance(src, TFLiteModel):
        return src, None
    sec = src.find(PREFILL_DECODE)
    if sec is None:
        raise UsageError(f"{src.path}: no '{PREFILL_DECODE}' section (nothing to add MTP to)")
    return src.model(sec.index), sec.index


def needs_mtp(model: TFLiteModel) -> bool:
    """True when `decode` exists but `verify` or decode's `activations` is missing."""
    sigs = {s.key: s for s in model.signatures}
    dec = sigs.get(DECODE)
    return dec is not None and (VERIFY not in sigs or ACTIVATIONS not in {n for n, _ in dec.outputs})


def enable_mtp(base: str | os.PathLike | ModelFile, out: str | os.PathLike, *, draft_steps: int = 3,
               force: bool = False, seed: int = 0, batched: bool = True) -> EnableOutcome:
    """Write ``base`` with `activations` and a `verify` over ``draft_steps`` + 1 tokens, gated (module docstring).

    ``batched``: try the one-pass construction first (:mod:`~mtpsurgeon.surgery.add_batched_verify`);
    where it cannot be proven or fails the gate, the unbatched one is written and the plan says why.
    """
    src, out = open_for_rewrite(base, draft_steps, out, force)
    model, section = base_model_of(src)
    if VERIFY in {s.key for s in model.signatures}:
        raise UsageError(f"{src.path}: the base already has a '{VERIFY}' signature (use `mtpsurgeon tune` to change "
                         "its draft steps)")
    with malformed_model(model.path, f"reading {model.label or 'the base model'} into the IR"):
        ir = Model.from_tflite(model)
    before = {s.key: signature_fingerprint(ir, s.key) for s in ir.signatures}
    decode_outputs = list(ir.signature(DECODE).outputs) if ir.signature(DECODE) else []
    reason = "" if batched else "asked for (--unbatched, batched=False)"
    with atomic_output(out, force) as tmp:
        with tempfile.TemporaryDirectory(prefix=".enable-mtp-", dir=tmp.parent) as work:
            fresh: Model | None = ir  # the first attempt edits the IR read above; a fallback re-reads it
            for attempt in ((True, False) if batched else (False,)):
                given, fresh = fresh, None
                try:
                    ir, plan = _enabled_ir(src, model, draft_steps, attempt, given)
                except NotLiftable as exc:
                    reason = f"the batched construction cannot be proven: {exc}"
                    continue
                base_path = write_rewritten(ir, model, src, section, tmp, Path(work))
                try:
                    outcome = _gate(src, section, base_path, tmp, before, decode_outputs, plan, seed, Path(work))
                except SurgeryError as exc:
                    if not attempt:
                        raise
                    reason = f"the batched verify failed the gate: {exc}"
                    continue
                break
            if reason:
                plan.unbatched_reason = reason
                plan.notes.append(f"not batched: {reason}")
        outcome.output = out
    return outcome


def _enabled_ir(src: ModelFile, model: TFLiteModel, draft_steps: int, batched: bool,
                ir: Model | None = None) -> tuple[Model, VerifyPlan]:
    """The base's IR (``ir``, or read anew) with `activations` and `verify` added (batched: raises
    NotLiftable where unproven, leaving ``ir`` half-built)."""
    ir, plan = ir if ir is not None else Model.from_tflite(model), VerifyPlan(draft_steps + 1)
    try:
        add_activations(ir, plan)
        mask = ir.signature(DECODE).inputs.get("mask")
        if mask is not None and plan.tokens >= mask.shape[-1]:
            raise UsageError(f"--draft-steps {draft_steps}: {plan.tokens} tokens do not fit the KV cache "
                             f"({mask.shape[-1]})")
        (add_batched_verify if batched else add_verify)(ir, draft_steps, plan)
    except NotLiftable:
        raise
    except SurgeryError as exc:
        raise SurgeryError(f"{src.path}: cannot add MTP: {exc}") from None
    return ir, plan


def _gate(src: ModelFile, section: int | None, base_path: Path, tmp: Path, before: dict[str, str],
          decode_outputs: list[str], plan: VerifyPlan, seed: int, work: Path) -> EnableOutcome:
    """Every check the written file must pass; raises (nothing is renamed into place) on a failure."""
    written = open_file(tmp)
    new_base, _ = base_model_of(written)
    if section is not None and _sha(written.section_bytes(section)) != _file_sha(base_path):
        raise SurgeryError(f"{tmp}: the written base section differs from the rewritten model")
    new_ir = Model.from_tflite(new_base)
    unchanged = [k for k in before if k != DECODE]
    changed = [k for k in unchanged if new_ir.signature(k) is None or signature_fingerprint(new_ir, k) != before[k]]
    if changed:
        raise SurgeryError(f"adding MTP changed other signatures: {changed}")
    dec = new_ir.signature(DECODE)
    added = [n for n in dec.outputs if n not in decode_outputs]
    if [n for n in decode_outputs if n not in dec.outputs] or added not in ([], [ACTIVATIONS]):
        raise SurgeryError(f"'{DECODE}' outputs became {sorted(dec.outputs)}; only '{ACTIVATIONS}' may be added")
    if added:  # decode minus the new output must be the decode that was read
        dec.graph.outputs = [t for t in dec.graph.outputs if t is not dec.outputs[ACTIVATIONS]]
        del dec.outputs[ACTIVATIONS]
        if signature_fingerprint(new_ir, DECODE) != before[DECODE]:
            raise SurgeryError(f"'{DECODE}' changed beyond the added '{ACTIVATIONS}' output")
    same_sections: list[int] = []
    if isinstance(src, LiteRTLMContainer):
        if len(written.sections) != len(src.sections):
            raise SurgeryError(f"{tmp}: {len(written.sections)} sections written, {len(src.sections)} read")
        for sec in src.sections:
            if sec.index == section:
                continue
            if _sha(src.section_bytes(sec.index)) != _sha(written.section_bytes(sec.index)):
                raise SurgeryError(f"section {sec.index} changed although only section {section} was rewritten")
            same_sections.append(sec.index)
    kernels = "xnnpack" if base_path.stat().st_size < GATE_XNNPACK_BELOW else "builtin"
    eq = check_verify_matches_decode(base_path, seed=seed, kernels=kernels)
    if not eq.ok() and plan.batched:  # INT8 caches: rows written within one call stay float, as an exporter's verify
        direct = eq.describe()
        eq, notes = verify_equivalence(base_path, work, seed, kernels)
        if notes:
            plan.notes.extend([*notes, f"compared directly (caches re-quantized after each decode call): {direct}"])
    if not eq.ok():
        raise SurgeryError(f"the added '{VERIFY}' does not match repeated '{DECODE}': {eq.describe()}")
    return EnableOutcome(Path(tmp), section, plan, eq, sorted(unchanged), same_sections)
