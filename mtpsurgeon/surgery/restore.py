"""Carry out a restore plan: patch, write atomically, verify, dump re-linked weights."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from mtpsurgeon.analysis.weights import weight_tensors
from mtpsurgeon.errors import SurgeryError, malformed_model
from mtpsurgeon.formats.litertlm import LiteRTLMContainer
from mtpsurgeon.formats.litertlm.writer import Edit, Replace, rewrite_container
from mtpsurgeon.formats.tflite import TFLiteModel
from mtpsurgeon.formats.tflite.records import TensorRecord
from mtpsurgeon.formats.tflite.writer import tflite_bytes, write_tflite
from mtpsurgeon.outputs import OutputSet
from mtpsurgeon.surgery.expose_signature import expose_subgraph
from mtpsurgeon.surgery.graft_drafter import graft_edit
from mtpsurgeon.surgery.ir import Model
from mtpsurgeon.surgery.plan import RestorePlan
from mtpsurgeon.surgery.retag_section import retag_edit
from mtpsurgeon.surgery.verify import SignatureRun, run_signatures


@dataclass
class RestoreResult:
    output: Path
    dump: Path | None
    runs: list[SignatureRun] = field(default_factory=list)
    relinked: int = 0
    notes: list[str] = field(default_factory=list)  #: how recipes bound the orphan weights
    dumps: list[Path] = field(default_factory=list)  #: every dump file written
    cleaned: list[Path] = field(default_factory=list)  #: stale temporary files of killed runs, removed


def _patch_model(model: TFLiteModel, steps, base, notes: list[str]) -> tuple[Model, list[str], list[tuple[int, int]]]:
    """Apply expose/rebuild steps to one TFLite model; return IR, changed signatures, re-linked tensors.

    Binding evidence from recipe rebuilds is appended to ``notes``.
    """
    with malformed_model(model.path, f"reading {model.label or 'the model'} into the IR"):
        ir = Model.from_tflite(model)
    keys: list[str] = []
    relinked: list[tuple[int, int]] = []
    for step in steps:
        f = step.finding
        if step.kind == "expose":
            keys.append(expose_subgraph(ir, f.subgraph, step.signature_name).key)
            relinked += [(t.subgraph, t.index) for t in weight_tensors(model, f.subgraph)]
        elif step.kind == "rebuild":
            from mtpsurgeon.surgery.rebuild_ops import rebuild

            keys.extend(rebuild(ir, model, f, step.recipe, base, report=notes))
            relinked += [(t.subgraph, t.index) for t in f.tensors]
    return ir, keys, relinked


def execute(plan: RestorePlan, out: str | os.PathLike, *, force: bool = False, dump: str | os.PathLike | None = None,
            dump_dtype: str = "raw", verify: bool = True, progress: Callable[[int], None] | None = None,
            inputs: Iterable[str | os.PathLike | None] = ()) -> RestoreResult:
    """Write the patched model and its dump as one output set; the input is never touched.

    Every file is written under a temporary name; only when the model is
    written and verified and the dump is complete are they all renamed into
    place (:class:`~mtpsurgeon.outputs.OutputSet`). ``inputs`` lists further
    input files (drafter, base, recipe) that no output may replace.
    """
    plan.ensure_allowed()
    report = plan.report
    src = report.file
    out = Path(out)
    drafter_path = plan.drafter.model.path if plan.drafter is not None else None
    outs = OutputSet(force=force, inputs=[src.path, drafter_path, *inputs])
    outs.check(out)  # refuse early, before any work
    if dump is not None:
        outs.check(dump)
        if os.path.abspath(dump) == os.path.abspath(out):
            raise SurgeryError(f"{out}: the model and its --dump cannot be the same file")
    result = RestoreResult(out, Path(dump) if dump is not None else None)
    dumps: list[tuple[TFLiteModel, list[TensorRecord], int | None]] = []
    with outs:
        tmp = outs.add(out)
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
                    dumps.append((d, weight_tensors(d), None))
                elif step.kind == "retag":
                    edits.append(retag_edit(f.section))
                    to_run.append((src.section_bytes(f.section), f"section {f.section}", None))
                    m = src.model(f.section)
                    dumps.append((m, weight_tensors(m), f.section))
                else:
                    by_section.setdefault(f.section, []).append(step)
            for index, steps in by_section.items():
                model = src.model(index)
                ir, keys, relinked = _patch_model(model, steps, report.base, result.notes)
                with malformed_model(src.path, f"encoding patched section {index}"):
                    data = tflite_bytes(ir)
                edits.append(Replace(index, data))
                to_run.append((data, f"section {index}", keys))
                dumps.append((model, [model.tensor(sg, i) for sg, i in relinked], index))
            with malformed_model(src.path, "encoding the patched container"):
                rewrite_container(src, edits, tmp, force=True)
        else:
            ir, keys, relinked = _patch_model(src, plan.steps, report.base, result.notes)
            with malformed_model(src.path, "encoding the patched model"):
                write_tflite(ir, tmp, force=True)
            to_run = [(tmp.read_bytes(), "model", keys)]
            dumps.append((src, [src.tensor(sg, i) for sg, i in relinked], None))
        if verify:
            for data, label, keys in to_run:
                result.runs.extend(run_signatures(data, label, keys))
            failed = [r for r in result.runs if not r.ok]
            if failed:
                raise SurgeryError(f"{out}: the patched model failed verification: "
                                   + "; ".join(f"{r.label} '{r.signature}': {r.detail}" for r in failed))
        if dump is not None:
            result.dumps = _write_dump(outs, dumps, Path(dump), dump_dtype, progress, str(src.path))
    result.cleaned = list(outs.cleaned)
    result.relinked = sum(len(ts) for _, ts, _ in dumps)
    return result


def _write_dump(outs: OutputSet, dumps, path: Path, dtype: str, progress, source: str) -> list[Path]:
    """The dump file(s), written into ``outs``; returns their final paths."""
    from mtpsurgeon.extract.dump import dump_safetensors
    from mtpsurgeon.formats.safetensors.check import check_complete

    if len(dumps) != 1:
        # One model is the common case; several (e.g. retag + rebuild) get one file each.
        written = []
        for i, (model, tensors, section) in enumerate(dumps):
            p = path.with_name(f"{path.stem}.{i}{path.suffix}")
            dump_safetensors(model, tensors, outs.add(p, check_complete), dtype=dtype, force=True, progress=progress,
                             section=section)
            written.append(p)
        return written
    model, tensors, section = dumps[0]
    dump_safetensors(model, tensors, outs.add(path, check_complete), dtype=dtype, force=True, progress=progress, section=section,
                     extra_metadata={"mtpsurgeon.restored_from": source})
    return [path]
