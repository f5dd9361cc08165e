"""Carry out a restore plan: patch, write atomically, verify, dump re-linked weights."""
from __future__ import annotations

import os
import threading
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
    dumps: list[Path] = field(default_factory=list)  #: every safetensors file written
    input_sha256: str | None = None  #: the input file's sha256 (``hash_input`` only)


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
            keys.append(expose_subgraph(ir, f.subgraph, step.signature_name).key)
            relinked += [(t.subgraph, t.index) for t in weight_tensors(model, f.subgraph)]
        elif step.kind == "rebuild":
            from mtpsurgeon.surgery.rebuild_ops import rebuild

            keys.extend(rebuild(ir, model, f, step.recipe, base, report=notes))
            relinked += [(t.subgraph, t.index) for t in f.tensors]
    return ir, keys, relinked


def execute(plan: RestorePlan, out: str | os.PathLike, *, force: bool = False, dump: str | os.PathLike | None = None,
            dump_dtype: str = "raw", verify: bool = True, progress: Callable[[int], None] | None = None,
            hash_input: bool = False) -> RestoreResult:
    """Write the patched model (and the dump) atomically; the input is never touched.

    Sections a container edit leaves alone are copied by the kernel and not
    hashed; the dumps record the hash of each section written, taken while it
    was written. The input's own sha256 is computed only with ``hash_input``.
    """
    report = plan.report
    src = report.file
    out = Path(out)
    if same_file(out, src.path):
        raise SurgeryError(f"{out}: refusing to overwrite the input file")
    check_writable(out, force)
    if dump is not None:
        check_writable(dump, force)
    result = RestoreResult(out, Path(dump) if dump is not None else None)
    dumps: list[tuple[TFLiteModel, list[TensorRecord], int | None, int | None]] = []  # + output section index
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
                    dumps.append((d, weight_tensors(d), None, len(src.sections)))  # appended last
                elif step.kind == "retag":
                    edits.append(retag_edit(f.section))
                    to_run.append((src.section_bytes(f.section), f"section {f.section}", None))
                    m = src.model(f.section)
                    dumps.append((m, weight_tensors(m), f.section, f.section))
                else:
                    by_section.setdefault(f.section, []).append(step)
            for index, steps in by_section.items():
                model = src.model(index)
                ir, keys, relinked = _patch_model(model, steps, report.base, result.notes)
                data = tflite_bytes(ir)
                edits.append(Replace(index, data))
                to_run.append((data, f"section {index}", keys))
                dumps.append((model, [model.tensor(sg, i) for sg, i in relinked], index, None))  # bytes replaced
            # The copy runs in the kernel (GIL released) while verification runs here, on the other core.
            writing = _Background(lambda: rewrite_container(src, edits, tmp, force=True))
        else:
            writing = None
            ir, keys, relinked = _patch_model(src, plan.steps, report.base, result.notes)
            write_tflite(ir, tmp, force=True)
            to_run = [(tmp.read_bytes(), "model", keys)]
            dumps.append((src, [src.tensor(sg, i) for sg, i in relinked], None, None))
        try:
            if verify:
                for data, label, keys in to_run:
                    result.runs.extend(run_signatures(data, label, keys))
        finally:
            written = writing.result() if writing is not None else None  # joined before any cleanup
        if written is not None:
            dumps = [(m, ts, sec, written.section_sha256[o] if o is not None else None) for m, ts, sec, o in dumps]
        failed = [r for r in result.runs if not r.ok]
        if failed:
            raise SurgeryError(f"{out}: the patched model failed verification: "
                               + "; ".join(f"{r.label} '{r.signature}': {r.detail}" for r in failed))
    if hash_input:
        result.input_sha256 = src.source.sha256()
    if dump is not None:
        result.dumps = _write_dump(dumps, Path(dump), dump_dtype, force, progress, str(src.path), result.input_sha256)
    result.relinked = sum(len(ts) for _, ts, _, _ in dumps)
    return result


class _Background:
    """Run ``fn`` in a thread; ``result()`` joins it and returns its value or raises its exception."""

    def __init__(self, fn) -> None:
        self._value = self._error = None
        self._thread = threading.Thread(target=self._run, args=(fn,), name="mtpsurgeon-writer", daemon=True)
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


def _write_dump(dumps, path: Path, dtype: str, force: bool, progress, source: str, source_sha: str | None) -> list[Path]:
    """One file for one model; several (e.g. retag + rebuild) get ``STEM.N.safetensors`` each. Returns them all."""
    from mtpsurgeon.extract.dump import dump_safetensors

    paths = [path] if len(dumps) == 1 else [path.with_name(f"{path.stem}.{i}{path.suffix}") for i in range(len(dumps))]
    for p, (model, tensors, section, section_sha) in zip(paths, dumps):
        dump_safetensors(model, tensors, p, dtype=dtype, force=force, progress=progress, section=section,
                         source_sha256=source_sha if model.source.path == Path(source) else None,
                         section_sha256=section_sha, extra_metadata={"mtpsurgeon.restored_from": source})
    return paths
