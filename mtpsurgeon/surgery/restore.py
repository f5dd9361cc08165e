"""Carry out a restore plan: patch, write atomically, verify, dump re-linked weights."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mtpsurgeon.analysis.weights import weight_tensors
from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.formats.litertlm import LiteRTLMContainer
from mtpsurgeon.formats.litertlm.writer import Edit, Replace, rewrite_container
from mtpsurgeon.formats.tflite import TFLiteModel
from mtpsurgeon.formats.tflite.records import TensorRecord
from mtpsurgeon.formats.tflite.writer import tflite_bytes, write_tflite
from mtpsurgeon.outputs import atomic_output, check_writable, same_file
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


def _patch_model(model: TFLiteModel, steps, base, notes: list[str]) -> tuple[Model, list[str], list[tuple[int, int]]]:
    """Apply expose/rebuild steps to one TFLite model; return IR, changed signatures, re-linked tensors.

    Binding evidence from recipe rebuilds is appended to ``notes``.
    """
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


def execute(plan: RestorePlan, out: str | os.PathLike, *, force: bool = False, dump: str | os.PathLike | None = None,
            dump_dtype: str = "raw", verify: bool = True, progress: Callable[[int], None] | None = None) -> RestoreResult:
    """Write the patched model (and the dump) atomically; the input is never touched."""
    report = plan.report
    src = report.file
    out = Path(out)
    if same_file(out, src.path):
        raise SurgeryError(f"{out}: refusing to overwrite the input file")
    check_writable(out, force)
    if dump is not None:
        check_writable(dump, force)
    result = RestoreResult(out, Path(dump) if dump is not None else None)
    dumps: list[tuple[TFLiteModel, list[TensorRecord], int | None]] = []
    with atomic_output(out, force) as tmp:
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
                data = tflite_bytes(ir)
                edits.append(Replace(index, data))
                to_run.append((data, f"section {index}", keys))
                dumps.append((model, [model.tensor(sg, i) for sg, i in relinked], index))
            rewrite_container(src, edits, tmp, force=True)
        else:
            ir, keys, relinked = _patch_model(src, plan.steps, report.base, result.notes)
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
        _write_dump(dumps, Path(dump), dump_dtype, force, progress, str(src.path))
    result.relinked = sum(len(ts) for _, ts, _ in dumps)
    return result


def _write_dump(dumps, path: Path, dtype: str, force: bool, progress, source: str) -> None:
    from mtpsurgeon.extract.dump import dump_safetensors

    if len(dumps) != 1:
        # One model is the common case; several (e.g. retag + rebuild) get one file each.
        for i, (model, tensors, section) in enumerate(dumps):
            p = path.with_name(f"{path.stem}.{i}{path.suffix}")
            dump_safetensors(model, tensors, p, dtype=dtype, force=force, progress=progress, section=section)
        return
    model, tensors, section = dumps[0]
    dump_safetensors(model, tensors, path, dtype=dtype, force=force, progress=progress, section=section,
                     extra_metadata={"mtpsurgeon.restored_from": source})
