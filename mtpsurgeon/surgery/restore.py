"""Carry out a restore plan: patch, write atomically, verify.

The re-linked weights are returned (:class:`RelinkedWeights`), not dumped here:
writing them as safetensors is the caller's job (``mtpsurgeon.api.restore``), so
surgery never depends on the extract layer above it.
"""
from __future__ import annotations

import contextvars
import functools
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from mtpsurgeon.analysis.weights import weight_tensors
from mtpsurgeon.errors import SurgeryError, malformed_model
from mtpsurgeon.formats.litertlm import LiteRTLMContainer
from mtpsurgeon.formats.litertlm.schema import MTP_DRAFTER
from mtpsurgeon.formats.litertlm.writer import Add, Edit, Replace, SectionSpec, rewrite_container
from mtpsurgeon.formats.tflite import TFLiteModel
from mtpsurgeon.formats.tflite.records import TensorRecord
from mtpsurgeon.formats.tflite.writer import tflite_bytes, write_tflite
from mtpsurgeon.outputs import OutputSet
from mtpsurgeon.surgery.expose_signature import expose_subgraph
from mtpsurgeon.surgery.graft_drafter import graft_edit
from mtpsurgeon.surgery.ir import Model
from mtpsurgeon.surgery.plan import RestorePlan, holds_only_weights
from mtpsurgeon.surgery.retag_section import retag_edit
from mtpsurgeon.surgery.verify import SignatureRun, run_signatures


@dataclass
class RelinkedWeights:
    """Weights one restore step put back in use, in the model they live in."""

    model: TFLiteModel
    tensors: list[TensorRecord]
    section: int | None  #: container section of ``model`` (None: a .tflite or a grafted drafter)
    section_sha256: str | None = None  #: sha256 of ``model``'s bytes, taken while the output was written


@dataclass
class PatchResult:
    """What :func:`execute` wrote and checked."""

    output: Path
    runs: list[SignatureRun] = field(default_factory=list)
    weights: list[RelinkedWeights] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  #: how recipes bound the orphan weights
    dumps: list[Path] = field(default_factory=list)  #: every dump file written
    cleaned: list[Path] = field(default_factory=list)  #: stale temporary files of killed runs, removed

    @property
    def relinked(self) -> int:
        """Number of re-linked weight tensors."""
        return sum(len(w.tensors) for w in self.weights)


def _patch_model(model: TFLiteModel, steps, base, notes: list[str],
                 config: dict | None = None) -> tuple[Model, list[str], list[tuple[int, int]]]:
    """Apply expose/rebuild steps to one TFLite model; return IR, changed signatures, re-linked tensors.

    Binding evidence from recipe rebuilds is appended to ``notes``.
    """
    semantic = [s for s in steps if s.kind == "rebuild" and s.roles is not None]
    if semantic:
        return _rebuild_drafter(model, semantic[0], steps, base, notes, config)
    with malformed_model(model.path, f"reading {model.label or 'the model'} into the IR"):
        ir = Model.from_tflite(model)
    keys: list[str] = []
    relinked: list[tuple[int, int]] = []
    for step in steps:
        f = step.finding
        if step.kind == "expose":
            io = None if f.drafter is None else ({n: t.index for n, t in f.drafter.io.inputs.items()},
                                                 {n: t.index for n, t in f.drafter.io.outputs.items()})
            keys.append(expose_subgraph(ir, f.subgraph, step.signature_name, io).key)
            relinked += [(t.subgraph, t.index) for t in weight_tensors(model, f.subgraph)]
        elif step.kind == "rebuild":
            from mtpsurgeon.surgery.rebuild_ops import rebuild

            keys.extend(rebuild(ir, model, f, step.recipe, base, report=notes))
            relinked += [(t.subgraph, t.index) for t in f.tensors]
    return ir, keys, relinked


def _rebuild_drafter(model: TFLiteModel, step, steps, base, notes: list[str],
                     config: dict | None) -> tuple[Model, list[str], list[tuple[int, int]]]:
    """A pruned drafter model replaced by the emitter's graph over its stored weights."""
    from mtpsurgeon.surgery.drafter.emit import SIGNATURE
    from mtpsurgeon.surgery.drafter.from_roles import rebuild_from_roles

    if not step.new_section and (len(steps) > 1 or not holds_only_weights(model)):  # the plan decided; make sure
        raise SurgeryError(f"{model.path}: the pruned drafter at {step.finding.where} shares its model with other "
                           "subgraphs, operators or steps; rebuild it with a recipe (--recipe FILE) instead")
    try:
        ir, used, more = rebuild_from_roles(model, step.roles, base, config)
    except SurgeryError as exc:
        raise SurgeryError(f"{model.path}: {step.finding.where}: {exc}") from None
    notes.extend(more)
    notes.append(f"re-used {len(used)} stored weights as they are (same bytes and quantization)")
    return ir, [SIGNATURE], [(t.subgraph, t.index) for t in used]


def execute(plan: RestorePlan, out: str | os.PathLike, outs: OutputSet, *, verify: bool = True) -> PatchResult:
    """Write the patched model into the caller's output set; the input is never touched.

    The model goes to a temporary name of ``outs`` and every changed signature
    runs in the LiteRT interpreter (``verify``) before the caller commits the
    set, so the patched model and any files written beside it (the dump) land
    together or not at all (:class:`~mtpsurgeon.outputs.OutputSet`).

    Sections a container edit leaves alone are copied by the kernel
    (``formats.copy``) and not hashed; that copy runs in a background thread
    (the kernel releases the GIL) while verification runs here. Each
    :class:`RelinkedWeights` of a written section carries the sha256 taken
    while it was written, so its dump needs no second read.
    """
    plan.ensure_allowed()
    report = plan.report
    src = report.file
    out = Path(out)
    result = PatchResult(out)
    weights = result.weights
    tmp = outs.add(out)
    writing: _Background | None = None
    out_sections: list[int | None] = []  # per weights entry: its section index in the output (hashed when written)
    if isinstance(src, LiteRTLMContainer):
        edits: list[Edit] = []
        to_run: list[tuple[bytes | memoryview, str, list[str] | None]] = []
        by_section: dict[int, list] = {}
        for step in plan.steps:
            f = step.finding
            if step.kind == "graft":
                edits.append(graft_edit(plan.drafter))
                to_run.append((plan.drafter.data, "grafted drafter", [plan.drafter.match.io.signature_key]))
                d = plan.drafter.model
                weights.append(RelinkedWeights(d, weight_tensors(d), None))
                out_sections.append(len(src.sections))  # appended last
            elif step.kind == "retag":
                edits.append(retag_edit(f.section))
                to_run.append((src.section_bytes(f.section), f"section {f.section}", None))
                m = src.model(f.section)
                weights.append(RelinkedWeights(m, weight_tensors(m), f.section))
                out_sections.append(f.section)  # same bytes, new header entry: hashed while written
            elif step.kind == "rebuild" and step.new_section:
                model = src.model(f.section)
                ir, keys, used = _rebuild_drafter(model, step, [step], report.base, result.notes, plan.config)
                with malformed_model(src.path, f"encoding the drafter rebuilt from section {f.section}"):
                    data = tflite_bytes(ir)
                edits.append(Add(SectionSpec.tflite(memoryview(data), MTP_DRAFTER)))
                to_run.append((data, "new drafter section", keys))
                weights.append(RelinkedWeights(model, [model.tensor(sg, i) for sg, i in used], f.section))
                out_sections.append(None)  # the dump reads the weights where they are, in the unchanged section
            else:
                by_section.setdefault(f.section, []).append(step)
        for index, steps in by_section.items():
            model = src.model(index)
            ir, keys, relinked = _patch_model(model, steps, report.base, result.notes, plan.config)
            with malformed_model(src.path, f"encoding patched section {index}"):
                data = tflite_bytes(ir)
            edits.append(Replace(index, data))
            to_run.append((data, f"section {index}", keys))
            weights.append(RelinkedWeights(model, [model.tensor(sg, i) for sg, i in relinked], index))
            out_sections.append(None)  # the dump reads the original section, whose bytes were replaced

        def _write():
            with malformed_model(src.path, "encoding the patched container"):
                return rewrite_container(src, edits, tmp, force=True)

        writing = _Background(_write)
    else:
        ir, keys, relinked = _patch_model(src, plan.steps, report.base, result.notes, plan.config)
        with malformed_model(src.path, "encoding the patched model"):
            write_tflite(ir, tmp, force=True)
        to_run = [(tmp.read_bytes(), "model", keys)]
        weights.append(RelinkedWeights(src, [src.tensor(sg, i) for sg, i in relinked], None))
        out_sections.append(None)
    try:
        if verify:
            for data, label, keys in to_run:
                result.runs.extend(run_signatures(data, label, keys))
    finally:
        written = writing.result() if writing is not None else None  # joined before the set can clean up
    if written is not None:
        for w, o in zip(weights, out_sections):
            if o is not None and o < len(written.section_sha256):
                w.section_sha256 = written.section_sha256[o]
    failed = [r for r in result.runs if not r.ok]
    if failed:
        raise SurgeryError(f"{out}: the patched model failed verification: "
                           + "; ".join(f"{r.label} '{r.signature}': {r.detail}" for r in failed))
    return result


class _Background:
    """Run ``fn`` in a thread; ``result()`` joins it and returns its value or raises its exception."""

    def __init__(self, fn) -> None:
        self._value = self._error = None
        run = contextvars.copy_context().run  # models opened in the thread keep the caller's --weights-dir
        self._thread = threading.Thread(target=self._run, args=(functools.partial(run, fn),), name="mtpsurgeon-writer",
                                        daemon=True)
        self._thread.start()

    def _run(self, fn) -> None:
        try:
            self._value = fn()
        except BaseException as exc:  # handed to the caller in result()
            self._error = exc

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value
