"""``mtpsurgeon.restore``: re-link a hidden MTP drafter, write a patched model and a dump.

The orchestration layer: surgery plans and writes the patched model
(:mod:`mtpsurgeon.surgery`), then this module writes the safetensors dump of
the re-linked weights with the extract layer's dump writer.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Literal

from mtpsurgeon.api.inspect import analysed
from mtpsurgeon.api.results import RestoreResult, VerifyRun
from mtpsurgeon.errors import NothingToRestore
from mtpsurgeon.extract.dump import dump_safetensors
from mtpsurgeon.outputs import check_writable
from mtpsurgeon.surgery.plan import plan_restore
from mtpsurgeon.surgery.restore import RelinkedWeights, execute
from mtpsurgeon.surgery.verify import SignatureRun

PathLike = str | os.PathLike


def default_output(path: PathLike) -> Path:
    """``MODEL-restored.EXT`` beside the model."""
    p = Path(path)
    return p.with_name(f"{p.stem}-restored{p.suffix}")


def _dump_path(out: Path, dump: PathLike | Literal["auto"] | None) -> Path | None:
    if dump is None or dump is False:
        return None
    return out.with_suffix(".safetensors") if dump == "auto" else Path(dump)


def restore(path: PathLike, out: PathLike | None = None, *, drafter: PathLike | None = None,
            base: PathLike | None = None, recipe: str | None = None, signature_name: str | None = None,
            dry_run: bool = False, verify: bool = True, dump: PathLike | Literal["auto"] | None = "auto",
            dtype: str = "raw", force: bool = False, progress: Callable[[int], None] | None = None,
            on_plan: Callable[[RestoreResult], None] | None = None) -> RestoreResult:
    """Undo what hides the MTP drafter of ``path``; write the patched model to ``out``.

    ``drafter``: a drafter to graft into a container that has none (a
    ``.tflite``, or a ``.litertlm`` holding one); ``base``: the base model of a
    standalone drafter; ``recipe``: a built-in recipe name or JSON file for
    rebuilding pruned operators. The plan is decided first (``on_plan`` is
    called with it, status ``'planned'``; ``dry_run`` stops there); link-check
    failures raise :class:`~mtpsurgeon.errors.SurgeryError` unless ``force``.
    The model is written under a temporary name, every changed signature is run
    in the LiteRT interpreter (``verify``), and only then renamed to ``out``
    (default ``MODEL-restored.EXT``). ``dump``: ``'auto'`` writes the re-linked
    weights to ``OUT.safetensors`` (``dtype`` as for extract), a path writes
    them there, None writes none. A model whose MTP is already ready returns
    status ``'nothing-to-do'``; one with nothing hidden raises
    :class:`~mtpsurgeon.errors.NothingToRestore`.

    >>> import mtpsurgeon, tempfile, os
    >>> out = os.path.join(tempfile.mkdtemp(), "fixed.litertlm")
    >>> result = mtpsurgeon.restore("fixtures/hidden/untagged-drafter.litertlm", out)
    >>> result.status, result.plan[0]
    ('restored', "1. re-tag section 5 (untagged) as 'tf_lite_mtp_drafter'")
    >>> [(v.signature, v.ok) for v in result.verify]
    [('mtp_drafter', True)]
    >>> mtpsurgeon.inspect(out).verdict
    'ready'
    """
    with analysed(path, base) as analysis:
        try:
            plan = plan_restore(analysis, drafter=None if drafter is None else str(drafter), signature_name=signature_name,
                                recipe=recipe, force=force)
        except NothingToRestore as exc:
            if exc.exit_code != 0:
                raise
            return RestoreResult(str(path), "nothing-to-do", None, None, [], message=str(exc))
        target = Path(out) if out is not None else default_output(path)
        dump_path = _dump_path(target, dump)
        planned = RestoreResult(str(path), "planned", str(target), str(dump_path) if dump_path else None, plan.lines())
        if on_plan is not None:
            on_plan(planned)
        if dry_run:
            return planned
        if dump_path is not None:
            check_writable(dump_path, force)
        patched = execute(plan, target, force=force, verify=verify)
        if dump_path is not None:
            write_dump(patched.weights, dump_path, dtype=dtype, force=force, progress=progress, source=str(path))
        return RestoreResult(
            str(path), "restored", str(patched.output), planned.dump, planned.plan, relinked_tensors=patched.relinked,
            binding=list(patched.notes), verify=[_verify_run(r) for r in patched.runs])


def _verify_run(run: SignatureRun) -> VerifyRun:
    return VerifyRun(run.label, run.signature, run.ok, run.detail)


def write_dump(weights: list[RelinkedWeights], path: Path, *, dtype: str, force: bool,
               progress: Callable[[int], None] | None, source: str) -> None:
    """One safetensors file for the re-linked weights (several models: ``PATH.N.safetensors`` each)."""
    if len(weights) != 1:
        for i, w in enumerate(weights):
            p = path.with_name(f"{path.stem}.{i}{path.suffix}")
            dump_safetensors(w.model, w.tensors, p, dtype=dtype, force=force, progress=progress, section=w.section)
        return
    w = weights[0]
    dump_safetensors(w.model, w.tensors, path, dtype=dtype, force=force, progress=progress, section=w.section,
                     extra_metadata={"mtpsurgeon.restored_from": source})
