"""Carry out an extraction: standalone models and safetensors dumps into a folder."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mtpsurgeon.analysis.report import Report
from mtpsurgeon.extract.dump import DumpReport, dump_safetensors
from mtpsurgeon.extract.selection import Selection
from mtpsurgeon.extract.standalone import extract_subgraph, write_section
from mtpsurgeon.formats.litertlm import LiteRTLMContainer


@dataclass
class ExtractResult:
    """Everything one extraction wrote."""

    models: list[dict] = field(default_factory=list)  #: {path, sha256, kind, source}
    dumps: list[DumpReport] = field(default_factory=list)
    source_sha256: str | None = None  #: the input file's sha256, with ``hash_input`` only


def _stem(sel: Selection, base: str, multi: bool) -> str:
    if not multi:
        return base
    return f"{base}.section{sel.analysis.section_index}" if sel.analysis.section_index is not None else base


def run_extract(report: Report, selections: list[Selection], out_dir: Path, *, dtype: str = "raw", names: str = "original",
                models: bool = True, force: bool = False, progress: Callable[[int], None] | None = None,
                hash_input: bool = False) -> ExtractResult:
    """Write each selection's standalone models and one safetensors dump per model.

    Each section copied out is hashed while it is copied, and that hash is
    reused for the dump's provenance; the whole input file is hashed only
    with ``hash_input`` (then recorded as ``mtpsurgeon.source_sha256``).
    """
    file = report.file
    out_dir.mkdir(parents=True, exist_ok=True)
    base = Path(file.path).stem
    multi = len(selections) > 1
    source_sha = file.source.sha256() if hash_input else None
    result = ExtractResult(source_sha256=source_sha)
    section_sha: dict[int, str] = {}
    for sel in selections:
        stem = _stem(sel, base, multi)
        if models and isinstance(file, LiteRTLMContainer):
            for index in sel.section_files:
                s = file.sections[index]
                path = out_dir / f"{base}.section{index}.{(s.model_type or 'untagged').removeprefix('tf_lite_')}.tflite"
                digest = section_sha[index] = write_section(file, index, path, force)
                result.models.append({"path": str(path), "sha256": digest, "kind": "section", "source": f"section {index}",
                                      "section_sha256": digest})
        if models:
            for sg, key in sel.subgraph_files:
                path = out_dir / f"{stem}.subgraph{sg}.tflite"
                sm = extract_subgraph(sel.model, sg, path, force, signature_key=key)
                result.models.append({"path": str(sm.path), "sha256": sm.sha256, "kind": "subgraph",
                                      "source": f"{sel.analysis.where} subgraph {sg}", "signatures": list(sm.signatures)})
        if sel.tensors:
            suffix = "" if dtype == "raw" else f".{dtype}"
            path = out_dir / f"{stem}{suffix}.safetensors"
            result.dumps.append(dump_safetensors(
                sel.model, sel.tensors, path, dtype=dtype, names=names, force=force, progress=progress,
                section=sel.analysis.section_index, source_sha256=source_sha,
                section_sha256=section_sha.get(sel.analysis.section_index),
                config_path=(out_dir / "config.json") if names == "hf" else None))
    return result
