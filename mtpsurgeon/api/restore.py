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
from mtpsurgeon.errors import NothingToRestore, SurgeryError
from mtpsurgeon.extract.dump import dump_safetensors
from mtpsurgeon.formats.safetensors.check import check_complete
from mtpsurgeon.outputs import OutputSet
from mtpsurgeon.surgery.plan import plan_restore
from mtpsurgeon.surgery.recipe.format import builtin_recipes
from mtpsurgeon.surgery.restore import RelinkedWeights, execute
from mtpsurgeon.surgery.verify import SignatureRun
from mtpsurgeon.inputs import accepts_weights_dir

PathLike = str | os.PathLike


def default_output(path: PathLike) -> Path:
    """``MODEL-restored.EXT`` beside the model."""
    p = Path(path)
    return p.with_name(f"{p.stem}-restored{p.suffix}")


def _dump_path(out: Path, dump: PathLike | Literal["auto"] | None) -> Path | None:
    if dump is None or dump is False:
        return None
    return out.with_suffix(".safetensors") if dump == "auto" else Path(dump)


@accepts_weights_dir
def restore(path: PathLike, out: PathLike | None = None, *, drafter: PathLike | None = None,
            base: PathLike | None = None, recipe: str | None = None, signature_name: str | None = None,
            dry_run: bool = False, verify: bool = True, dump: PathLike | Literal["auto"] | None = "auto",
            dtype: str = "raw", force: bool = False, accept_link_failures: bool = False,
            progress: Callable[[int], None] | None = None,
            on_plan: Callable[[RestoreResult], None] | None = None, hash_input: bool = False,
            config: PathLike | None = None) -> RestoreResult:
    """Undo what hides the MTP drafter of ``path``; write the patched model to ``out``.

    ``drafter``: a drafter to graft into a container that has none (a
    ``.tflite``, or a ``.litertlm`` holding one); ``base``: the base model of a
    standalone drafter. A pruned drafter is rebuilt from its stored weights,
    placed by their recognised roles, through the same emitter as
    ``build-drafter``; ``config``: the assistant's ``config.json``, whose
    epsilon, soft-cap, sliding window and RoPE override what the file's
    leftover constants say; ``recipe``: a built-in recipe name or JSON file
    describing the layout instead. Explicit inputs are used or refused with the
    reason (:class:`~mtpsurgeon.errors.UsageError`), never ignored. The plan is
    decided first (``on_plan`` is called with it, status ``'planned'``, with its
    link checks and any refusal; ``dry_run`` stops there). A plan whose drafter
    fails link checks is refused (:class:`~mtpsurgeon.errors.SurgeryError`)
    unless ``accept_link_failures``; one whose KV inputs the base does not
    provide is always refused (the engine aborts on it). ``force`` only
    overwrites existing outputs, never an input. The model is written under a
    temporary name, every changed signature is run in the LiteRT interpreter
    (``verify``), and the model and its dump are renamed into place together
    (default ``MODEL-restored.EXT``). ``dump``: ``'auto'`` writes the re-linked
    weights to ``OUT.safetensors`` (``dtype`` as for extract), a path writes
    them there, None writes none. Sections a container edit leaves alone are
    copied by the kernel and not hashed; each dump records the sha256 of its
    model's bytes (taken while the section was written when it was), and the
    input's own sha256 only with ``hash_input`` (also in ``input_sha256``). A model whose MTP is already ready returns
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
                                recipe=recipe, accept_link_failures=accept_link_failures,
                                config=None if config is None else str(config))
        except NothingToRestore as exc:
            if exc.exit_code != 0:
                raise
            return RestoreResult(str(path), "nothing-to-do", None, None, [], message=str(exc))
        target = Path(out) if out is not None else default_output(path)
        dump_path = _dump_path(target, dump)
        planned = RestoreResult(str(path), "planned", str(target), str(dump_path) if dump_path else None, plan.lines(),
                                checks=[c.to_json() for c in plan.checks], refused=plan.refusal)
        if on_plan is not None:
            on_plan(planned)
        if dry_run:
            plan.ensure_allowed()  # a refused plan is an error, after it was shown
            return planned
        drafter_path = plan.drafter.model.path if plan.drafter is not None else None
        outs = OutputSet(force=force, inputs=[analysis.file.path, drafter_path, base, recipe_file(recipe), config])
        outs.check(target)  # refuse early, before any work
        if dump_path is not None:
            outs.check(dump_path)
            if os.path.abspath(dump_path) == os.path.abspath(target):
                raise SurgeryError(f"{target}: the model and its dump cannot be the same file")
        with outs:
            patched = execute(plan, target, outs, verify=verify)
            input_sha = analysis.file.source.sha256() if hash_input else None
            dumps = [] if dump_path is None else write_dump(outs, patched.weights, dump_path, dtype=dtype,
                                                            progress=progress, source=str(path), source_sha256=input_sha)
        return RestoreResult(
            str(path), "restored", str(patched.output), planned.dump, planned.plan, relinked_tensors=patched.relinked,
            binding=list(patched.notes), verify=[_verify_run(r) for r in patched.runs], checks=planned.checks,
            dumps=[str(p) for p in dumps], removed_stale=[str(p) for p in outs.cleaned], input_sha256=input_sha)


def recipe_file(recipe: str | None) -> Path | None:
    """The file behind ``recipe`` (None for a built-in recipe name): an input no output may replace."""
    if recipe is None or recipe in builtin_recipes():
        return None
    return Path(recipe)


def _verify_run(run: SignatureRun) -> VerifyRun:
    return VerifyRun(run.label, run.signature, run.ok, run.detail)


def write_dump(outs: OutputSet, weights: list[RelinkedWeights], path: Path, *, dtype: str,
               progress: Callable[[int], None] | None, source: str, source_sha256: str | None = None) -> list[Path]:
    """The re-linked weights as safetensors, into ``outs``: one file (several models: ``PATH.N.safetensors`` each).

    ``source_sha256`` (the input's hash, ``hash_input`` only) is recorded in
    dumps of models read from the input; a section hashed while it was written
    is not read again.
    """
    paths = [Path(path)] if len(weights) == 1 else [path.with_name(f"{path.stem}.{i}{path.suffix}")
                                                    for i in range(len(weights))]
    for p, w in zip(paths, weights):
        from_input = Path(w.model.source.path) == Path(source)
        dump_safetensors(w.model, w.tensors, outs.add(p, check_complete), dtype=dtype, force=True, progress=progress, section=w.section,
                         source_sha256=source_sha256 if from_input else None, section_sha256=w.section_sha256,
                         extra_metadata={"mtpsurgeon.restored_from": source})
    return paths
