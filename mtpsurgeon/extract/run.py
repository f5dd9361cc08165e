"""Carry out an extraction: standalone models and safetensors dumps into a folder, as one output set."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from mtpsurgeon.analysis.report import Report
from mtpsurgeon.errors import OutputError, malformed_model
from mtpsurgeon.extract.dump import DumpReport, dump_safetensors
from mtpsurgeon.extract.hf_card import model_card
from mtpsurgeon.extract.section_out import section_file_name, write_section
from mtpsurgeon.extract.selection import Selection
from mtpsurgeon.extract.standalone import extract_subgraph
from mtpsurgeon.formats.litertlm import LiteRTLMContainer
from mtpsurgeon.formats.litertlm.side_copies import check_copies_find_side_files
from mtpsurgeon.formats.safetensors.check import check_complete
from mtpsurgeon.outputs import OutputSet


@dataclass
class ExtractResult:
    """Everything one extraction wrote."""

    models: list[dict] = field(default_factory=list)  #: {path, sha256, kind, source}
    dumps: list[DumpReport] = field(default_factory=list)
    cleaned: list[Path] = field(default_factory=list)  #: stale temporary files of killed runs, removed
    notes: list[str] = field(default_factory=list)
    source_sha256: str | None = None  #: the input file's sha256, with ``hash_input`` only


def _stem(sel: Selection, base: str, multi: bool) -> str:
    if not multi:
        return base
    return f"{base}.section{sel.analysis.section_index}" if sel.analysis.section_index is not None else base


def _drafter_roles(sel: Selection):
    """The recognised roles of the drafter whose weights ``sel`` holds, if any."""
    subgraphs = {t.subgraph for t in sel.tensors}
    if len(subgraphs) != 1:
        return None
    return sel.analysis.roles.get(subgraphs.pop())


def run_extract(report: Report, selections: list[Selection], out_dir: Path, *, dtype: str = "raw", names: str = "original",
                models: bool = True, force: bool = False, progress: Callable[[int], None] | None = None,
                inputs: Iterable[str | os.PathLike | None] = (), allow_partial: bool = False,
                check_parity: bool = False, hash_input: bool = False) -> ExtractResult:
    """Write each selection's standalone models and one safetensors dump per model, all or nothing.

    Every file goes through one :class:`~mtpsurgeon.outputs.OutputSet`: written
    under a temporary name, renamed into ``out_dir`` only when all are complete.
    Each section copied out is hashed while it is copied, and that hash is
    reused for the dump's provenance; the whole input file is hashed only
    with ``hash_input`` (then recorded as ``mtpsurgeon.source_sha256``).
    """
    file = report.file
    out_dir = Path(out_dir)
    if os.path.lexists(out_dir) and not out_dir.is_dir():
        raise OutputError(out_dir, "exists and is not a directory")
    base = Path(file.path).stem  # the user's own file name: kept as given
    multi = len(selections) > 1
    source_sha = file.source.sha256() if hash_input else None
    result = ExtractResult(source_sha256=source_sha)
    section_sha: dict[int, str] = {}  # sections hashed while copied out, reused by their dumps
    with OutputSet(force=force, inputs=[file.path, *inputs]) as outs:
        for sel in selections:
            stem = _stem(sel, base, multi)
            if models and isinstance(file, LiteRTLMContainer):
                for index in sel.section_files:
                    s = file.sections[index]
                    path = out_dir / section_file_name(base, index, s.model_type)
                    check_copies_find_side_files(file, [index], path)
                    digest = section_sha[index] = write_section(file, index, outs.add(path), True)
                    result.models.append({"path": str(path), "sha256": digest, "kind": "section", "source": f"section {index}",
                                          "section_sha256": digest})
            if models:
                for sg, key in sel.subgraph_files:
                    path = out_dir / f"{stem}.subgraph{sg}.tflite"
                    with malformed_model(file.path, f"extracting {sel.analysis.where} subgraph {sg}"):
                        sm = extract_subgraph(sel.model, sg, outs.add(path), True, signature_key=key)
                    result.models.append({"path": str(path), "sha256": sm.sha256, "kind": "subgraph",
                                          "source": f"{sel.analysis.where} subgraph {sg}", "signatures": list(sm.signatures)})
            if sel.tensors and names == "hf":
                # A folder transformers loads as is: model.safetensors + config.json + README.md.
                folder = out_dir / stem if multi else out_dir
                path, config, card = folder / "model.safetensors", folder / "config.json", folder / "README.md"
                d = dump_safetensors(sel.model, sel.tensors, outs.add(path, check_complete), dtype=dtype, names=names, force=True,
                                     progress=progress, section=sel.analysis.section_index, source_sha256=source_sha,
                                     section_sha256=section_sha.get(sel.analysis.section_index),
                                     config_path=outs.add(config), roles=_drafter_roles(sel), allow_partial=allow_partial)
                model_sha = section_sha.get(sel.analysis.section_index) or sel.model.sha256()
                outs.add(card).write_text(model_card(d, Path(file.path).name, source_sha, sel.analysis.where, model_sha))
                d.path, d.config_path = path, config
                result.dumps.append(d)
            elif sel.tensors:
                suffix = "" if dtype == "raw" else f".{dtype}"
                path = out_dir / f"{stem}{suffix}.safetensors"
                d = dump_safetensors(sel.model, sel.tensors, outs.add(path, check_complete), dtype=dtype, names=names, force=True,
                                     progress=progress, section=sel.analysis.section_index, source_sha256=source_sha,
                                     section_sha256=section_sha.get(sel.analysis.section_index))
                d.path = path
                result.dumps.append(d)
    result.cleaned = list(outs.cleaned)
    if check_parity:
        _check_parity(report, selections, result)
    return result


def _check_parity(report: Report, selections: list[Selection], result: ExtractResult) -> None:
    """Run each written hf checkpoint against its LiteRT drafter (see :mod:`mtpsurgeon.extract.parity`)."""
    from mtpsurgeon.extract.parity import check_parity, parity_available

    hf = [(sel, d) for sel, d in zip([s for s in selections if s.tensors], result.dumps) if d.names == "hf"]
    if not hf:
        result.notes.append("--check-parity: no --names hf checkpoint was written, nothing to compare")
        return
    if not parity_available():
        result.notes.append("--check-parity: torch and transformers are not importable here, parity not checked "
                            "(pip install torch transformers)")
        return
    for sel, d in hf:
        roles = _drafter_roles(sel)
        sig = next((f.drafter.io.signature_key for f in report.findings if f.drafter is not None
                    and f.section == sel.analysis.section_index and roles is not None
                    and f.drafter.io.subgraph == roles.subgraph), None)
        if roles is None or roles.method != "dataflow" or sig is None:
            d.notes.append("--check-parity needs a drafter the LiteRT interpreter can run through a signature "
                           "(restore it first); not checked")
            continue
        m = sel.model
        tensors = m.subgraphs[roles.subgraph].tensors
        quantized = {r.hf_name for i, r in roles.roles.items() if r.hf_name and tensors[i].is_quantized}
        d.parity = check_parity(d.path.parent, _runnable_bytes(m), roles, signature=sig,
                                emulate_quantized=quantized)


def _runnable_bytes(model) -> bytes:
    """The model's bytes for the LiteRT interpreter, which reads no side files: external weights inlined."""
    if not model.records.external_buffers:
        return bytes(model.source.view[model.offset:model.offset + model.length])
    import io

    from mtpsurgeon.formats.tflite.writer import write_tflite
    from mtpsurgeon.surgery.ir import Model

    out = io.BytesIO()
    write_tflite(Model.from_tflite(model), out)
    return out.getvalue()
