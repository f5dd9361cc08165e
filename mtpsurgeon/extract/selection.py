"""Which tensors and models `extract` writes, resolved from an analysis report."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from mtpsurgeon.analysis.model_analysis import ModelAnalysis
from mtpsurgeon.analysis.report import Report
from mtpsurgeon.errors import UsageError
from mtpsurgeon.extract.section_out import section_index
from mtpsurgeon.formats.litertlm import LiteRTLMContainer
from mtpsurgeon.formats.litertlm.schema import MTP_DRAFTER
from mtpsurgeon.formats.tflite import TFLiteModel
from mtpsurgeon.formats.tflite.records import TensorRecord


@dataclass
class Selection:
    """Tensors of one model to dump, and standalone models to write from it."""

    analysis: ModelAnalysis
    tensors: list[TensorRecord]
    section_files: list[int] = field(default_factory=list)  #: container sections to copy out as .tflite
    subgraph_files: list[tuple[int, str | None]] = field(default_factory=list)  #: (subgraph, signature key to give it)

    @property
    def model(self) -> TFLiteModel:
        return self.analysis.model


def resolve_section(report: Report, section: str) -> int:
    """'3', 'mtp_drafter' or 'tf_lite_mtp_drafter' → a section index."""
    file = report.file
    if not isinstance(file, LiteRTLMContainer):
        raise UsageError(f"{file.path}: --section needs a .litertlm container")
    return section_index(file, section)


def _constants(ma: ModelAnalysis, subgraph: int | None = None) -> list[TensorRecord]:
    return [t for t in ma.model.tensors() if ma.model.has_data(t) and (subgraph is None or t.subgraph == subgraph)]


def _mtp_selection(ma: ModelAnalysis, report: Report) -> Selection | None:
    keys = ma.mtp_tensor_keys()
    tensors = [t for t in ma.model.tensors() if (t.subgraph, t.index) in keys]
    sel = Selection(ma, tensors)
    for f in report.findings:
        if f.section != ma.section_index or f.drafter is None:
            continue
        if f.kind == "no_signature":
            sel.subgraph_files.append((f.subgraph, "mtp_drafter"))
        elif ma.section is not None:
            sel.section_files.append(ma.section.index)
    return sel if (sel.tensors or sel.section_files or sel.subgraph_files) else None


def select(report: Report, *, orphans: bool = False, everything: bool = False, section: str | None = None,
           subgraph: int | None = None, signature: str | None = None, pattern: str | None = None) -> list[Selection]:
    """Resolve extract's options to concrete selections (default: the MTP findings)."""
    models = report.models
    scoped = section is not None or subgraph is not None or signature is not None
    if section is not None:
        index = resolve_section(report, section)
        models = [ma for ma in models if ma.section_index == index]
        if not models:
            raise UsageError(f"{report.file.path}: section {index} is not a TFLite model")
    out: list[Selection] = []
    for ma in models:
        sg = subgraph
        if signature is not None:
            sig = ma.model.signature(signature)
            if sig is None:
                continue
            sg = sig.subgraph
        if sg is not None and sg >= len(ma.model.subgraphs):
            raise UsageError(f"{report.file.path}: {ma.where} has no subgraph {sg}")
        if orphans:
            sel = Selection(ma, [t for t in ma.orphans.tensors if sg is None or t.subgraph == sg])
        elif everything or scoped:
            sel = Selection(ma, _constants(ma, sg))
            if scoped and sg is not None:
                sel.subgraph_files.append((sg, signature))
            elif scoped and ma.section is not None:
                sel.section_files.append(ma.section.index)
        else:
            found = _mtp_selection(ma, report)
            if found is None:
                continue
            sel = found
        if pattern:
            sel.tensors = [t for t in sel.tensors if fnmatch.fnmatchcase(t.name, pattern)]
        if sel.tensors or sel.section_files or sel.subgraph_files:
            out.append(sel)
    if signature is not None and not out:
        raise UsageError(f"{report.file.path}: no model has a signature '{signature}'")
    if not out:
        what = "orphaned tensors" if orphans else "tensors matching the selection" if (pattern or scoped or everything) else "MTP weights"
        hint = "" if orphans or everything else " (try --all or --orphans)"
        raise UsageError(f"{report.file.path}: no {what} to extract{hint}")
    return out


__all__ = ["Selection", "select", "resolve_section", "MTP_DRAFTER"]
