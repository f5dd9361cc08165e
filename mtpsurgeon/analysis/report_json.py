"""Analysis results → plain JSON-able dicts (the documented, stable --json schema).

Depends only on the parts of a report (models, dims, findings, verdict), never
on :mod:`mtpsurgeon.analysis.report`, which calls it: the arrow runs one way.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

from mtpsurgeon.analysis import stats
from mtpsurgeon.analysis.dims import BaseDims
from mtpsurgeon.analysis.findings import Finding
from mtpsurgeon.analysis.model_analysis import ModelAnalysis
from mtpsurgeon.analysis.mtp import Verdict
from mtpsurgeon.analysis.section_roles import BACKEND_KEY, backends, drafter_backends, section_role
from mtpsurgeon.formats.litertlm import LiteRTLMContainer
from mtpsurgeon.formats.open import ModelFile
from mtpsurgeon.formats.tflite.records import TensorRecord

SCHEMA_VERSION = 1


class LazyRows:
    """A JSON list whose rows are made on demand from ``items``.

    Long listings (e.g. 200,000 orphan tensors) are never held as dicts all
    at once: ``len`` is free, slicing makes only the rows asked for, and
    iterating makes one row at a time (the JSON writer streams them).
    """

    def __init__(self, items: Sequence[Any], make: Callable[[Any], dict]) -> None:
        self.items = items
        self.make = make

    def __len__(self) -> int:
        return len(self.items)

    def __bool__(self) -> bool:
        return len(self.items) > 0

    def __iter__(self) -> Iterator[dict]:
        return (self.make(x) for x in self.items)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self.make(x) for x in self.items[index]]
        return self.make(self.items[index])

    def to_list(self) -> list[dict]:
        return list(self)


def _jsonable(v: Any, lazy: bool = False) -> Any:
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, LazyRows):
        return v if lazy else v.to_list()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x, lazy) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x, lazy) for k, x in v.items()}
    if hasattr(v, "item"):
        return v.item()
    return str(v)


def tensor_json(ma: ModelAnalysis, t: TensorRecord, mtp_keys: set | None = None, orphan_keys: set | None = None) -> dict:
    """One tensor row (used by orphans and by --tensors), JSON-ready."""
    m = ma.model
    b = m.buffers[t.buffer] if t.buffer > 0 else None  # one record per row: buffers are made on access
    row = {
        "section": ma.section_index,
        "subgraph": t.subgraph,
        "index": t.index,
        "name": t.name,
        "shape": list(t.shape),
        "dtype": t.dtype.name,
        "buffer": t.buffer,
        "bytes": b.size if b is not None else 0,
        "storage": b.storage if b is not None else "none",
        "constant": t.external_buffer != 0 or (b is not None and b.size > 0),
        "quantization": None if t.quantization is None or t.quantization.scheme == "none" else _jsonable(t.quantization.to_json()),
    }
    if t.has_spurious_quantization:
        row["spurious_quantization"] = True
    role = ma.role_of(t)
    if role is not None:
        row["role"] = role.to_json()
    if t.sparsity is not None:
        row["sparsity"] = t.sparsity.to_json()
    if mtp_keys is not None:
        row["mtp"] = (t.subgraph, t.index) in mtp_keys
    if orphan_keys is not None:
        row["orphan"] = (t.subgraph, t.index) in orphan_keys
    return row


def _io(tensors, pairs) -> list[dict]:
    return [{"name": n, "tensor": i, "shape": list(tensors[i].shape), "dtype": tensors[i].dtype.name} for n, i in pairs]


def model_json(ma: ModelAnalysis) -> dict:
    m = ma.model
    mtp_keys = ma.mtp_tensor_keys()
    return {
        "section": ma.section_index,
        "label": ma.where,
        "offset": m.offset,
        "size": m.length,
        "version": m.records.version,
        "description": m.records.description,
        "subgraphs": [
            {"index": sg.index, "name": sg.name, "tensors": len(sg.tensors), "operators": len(sg.operators),
             "inputs": list(sg.inputs), "outputs": list(sg.outputs), "reached_by": ma.reached.get(sg.index)}
            for sg in m.subgraphs
        ],
        "signatures": [
            {"key": s.key, "subgraph": s.subgraph,
             "inputs": _io(m.subgraphs[s.subgraph].tensors, s.inputs),
             "outputs": _io(m.subgraphs[s.subgraph].tensors, s.outputs)}
            for s in m.signatures
        ],
        "operator_codes": len(m.operator_codes),
        "op_histogram": stats.op_histogram(m),
        "params_by_dtype": stats.params_by_dtype(m),
        "quantization": stats.quantization_schemes(m),
        "buffers": {"count": len(m.buffers), **stats.buffer_storage(m)},
        "metadata": [name for name, _ in m.records.metadata],
        "metadata_buffer": list(m.records.metadata_buffer),
        "sparse_tensors": sum(1 for t in m.tensors() if t.sparsity is not None),
        "orphans": {
            "tensors": LazyRows(ma.orphans.tensors, lambda t: tensor_json(ma, t, mtp_keys)),
            "buffers": ma.orphans.buffers,
            "subgraphs": [vars(s) for s in ma.orphans.subgraphs],
            "operator_codes": ma.orphans.operator_codes,
        },
    }


def _finding_json(analyses: list[ModelAnalysis], f: Finding) -> dict:
    """A finding, with the roles of its drafter's weights when they were recognised."""
    out = f.to_json()
    ma = next((m for m in analyses if m.section_index == f.section), None)
    rm = None if ma is None or f.drafter is None else ma.roles.get(f.drafter.io.subgraph)
    if rm is not None:
        tensors = ma.model.subgraphs[rm.subgraph].tensors
        out["roles"] = {**rm.to_json(), "weights": [
            {"index": i, "name": tensors[i].name, **role.to_json()} for i, role in sorted(rm.roles.items())]}
    return out


def report_to_json(f: ModelFile, analyses: list[ModelAnalysis], base: BaseDims | None, findings: list[Finding],
                   verdict: Verdict, lazy: bool = False) -> dict:
    """The whole report of file ``f`` as the documented --json dict.

    With ``lazy``, the orphan tensor listings stay :class:`LazyRows` (rows
    made as a streaming writer reads them) instead of lists.
    """
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "file": str(f.path),
        "size": f.source.size,
        "format": "litertlm" if isinstance(f, LiteRTLMContainer) else "tflite",
    }
    if isinstance(f, LiteRTLMContainer):
        out["container"] = {
            "version": ".".join(map(str, f.version)),
            "header_end": f.header_end,
            "system_metadata": dict(f.system_metadata),
            "llm_metadata": f.llm_metadata,
        }
        out["sections"] = [
            {"index": s.index, "data_type": s.data_type_name, "model_type": s.model_type, "begin": s.begin,
             "end": s.end, "size": s.size, "aligned": s.aligned, "items": dict(s.items),
             "backend_constraint": list(backends(s.item(BACKEND_KEY)) or []) or None, "role": section_role(s)}
            for s in f.sections
        ]
    models = [model_json(ma) for ma in analyses]
    out["models"] = models
    out["orphans"] = {
        key: [dict(item, section=m["section"]) if isinstance(item, dict) else {"section": m["section"], "index": item}
              for m in models for item in m["orphans"][key]]
        for key in ("buffers", "subgraphs", "operator_codes")
    }
    by_tensor = [(ma, keys, t) for ma, keys in ((ma, ma.mtp_tensor_keys()) for ma in analyses) for t in ma.orphans.tensors]
    out["orphans"] = {"tensors": LazyRows(by_tensor, lambda x: tensor_json(x[0], x[2], x[1])), **out["orphans"]}
    out["base"] = None if base is None else base.to_json()
    out["mtp"] = {**verdict.to_json(), "findings": [_finding_json(analyses, x) for x in findings]}
    if isinstance(f, LiteRTLMContainer):
        out["mtp"]["backends"] = drafter_backends(f.sections)
    return _jsonable(out, lazy)
