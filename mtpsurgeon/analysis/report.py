"""The full analysis of one file, and its stable JSON form.

JSON schema (``schema_version`` 1), top-level keys:
  file, size, format ('tflite' | 'litertlm'), container (litertlm only),
  sections (litertlm only), models, orphans, base, mtp.
See docs/how-it-works.md, "The --json schema (version 1)", for every field.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from mtpsurgeon.analysis import stats
from mtpsurgeon.analysis.dims import BaseDims, base_dims
from mtpsurgeon.analysis.findings import Finding
from mtpsurgeon.analysis.model_analysis import ModelAnalysis, analyze_model
from mtpsurgeon.analysis.mtp import Verdict, collect_findings, verdict
from mtpsurgeon.analysis.mtp_addable import addable_finding
from mtpsurgeon.analysis.report_json import SCHEMA_VERSION, report_to_json
from mtpsurgeon.formats.litertlm import LiteRTLMContainer
from mtpsurgeon.formats.litertlm.schema import EMBEDDER, PREFILL_DECODE
from mtpsurgeon.formats.open import ModelFile, open_file
from mtpsurgeon.formats.tflite import TFLiteModel


@dataclass
class Report:
    """Analysis of one file: per-model analyses, base dims, findings, verdict."""

    file: ModelFile
    models: list[ModelAnalysis]
    base: BaseDims | None
    findings: list[Finding]
    verdict: Verdict

    @property
    def is_container(self) -> bool:
        return isinstance(self.file, LiteRTLMContainer)

    def to_json(self, lazy: bool = False) -> dict[str, Any]:
        """The documented ``inspect --json`` dict (schema ``SCHEMA_VERSION``).

        ``lazy``: tensor listings as :class:`~mtpsurgeon.analysis.report_json.LazyRows`
        (made as they are read, for streaming writers) instead of lists.
        """
        return report_to_json(self.file, self.models, self.base, self.findings, self.verdict, lazy)


def _find_base(file: ModelFile) -> tuple[TFLiteModel | None, TFLiteModel | None, str]:
    """(base model, embedder model, label) of a file."""
    if isinstance(file, TFLiteModel):
        keys = {s.key for s in file.signatures}
        return (file, None, "model") if keys & {"decode", "prefill", "verify"} else (None, None, "")
    base_sec = file.find(PREFILL_DECODE)
    emb_sec = file.find(EMBEDDER)
    embedder = file.model(emb_sec.index) if emb_sec is not None else None
    if base_sec is None:
        return None, embedder, ""
    return file.model(base_sec.index), embedder, f"section {base_sec.index} ({PREFILL_DECODE})"


def analyze(file: ModelFile | str | os.PathLike, base: ModelFile | str | os.PathLike | None = None) -> Report:
    """Analyse a .tflite or .litertlm file (opened here if given as a path).

    ``base`` supplies the base model for a standalone drafter's link checks.
    """
    if not isinstance(file, (TFLiteModel, LiteRTLMContainer)):
        file = open_file(file)
    base_file = base if base is None or isinstance(base, (TFLiteModel, LiteRTLMContainer)) else open_file(base)
    base_model, embedder, label = _find_base(base_file if base_file is not None else file)
    dims = base_dims(base_model, label, embedder) if base_model is not None else None
    if isinstance(file, LiteRTLMContainer):
        models = [analyze_model(file.model(s.index), s, dims) for s in file.tflite_sections()]
    else:
        models = [analyze_model(file, None, dims)]
    addable = addable_finding(base_model, dims) if base_model is not None and dims is not None else None
    findings = collect_findings(models, dims, isinstance(file, LiteRTLMContainer), addable)
    return Report(file, models, dims, findings, verdict(findings, str(file.path), isinstance(file, LiteRTLMContainer)))


__all__ = ["Report", "analyze", "SCHEMA_VERSION", "stats"]
