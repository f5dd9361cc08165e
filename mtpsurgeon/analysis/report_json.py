"""Report → plain JSON-able dicts (the documented, stable --json schema)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from mtpsurgeon.analysis import stats
from mtpsurgeon.analysis.model_analysis import ModelAnalysis
from mtpsurgeon.formats.litertlm import LiteRTLMContainer
from mtpsurgeon.formats.tflite.records import TensorRecord

if TYPE_CHECKING:
    from mtpsurgeon.analysis.report import Report


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
    row = {
        "section": ma.section_index,
        "subgraph": t.subgraph,
        "index": t.index,
        "name": t.name,
        "shape": list(t.shape),
        "dtype": t.dtype.name,
        "buffer": t.buffer,
        "bytes": m.buffers[t.buffer].size if t.buffer else 0,
        "storage": m.buffers[t.buffer].storage if t.buffer else "none",
        "constant": m.has_data(t),
        "quantization": None if t.quantization is None or t.quantization.scheme == "none" else _jsonable(t.quantization.to_json()),
    }
    if t.has_spurious_quantization:
        row["spurious_quantization"] = True
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
        "orphans": {
            "tensors": LazyRows(ma.orphans.tensors, lambda t: tensor_json(ma, t, mtp_keys)),
            "buffers": ma.orphans.buffers,
            "subgraphs": [vars(s) for s in ma.orphans.subgraphs],
            "operator_codes": ma.orphans.operator_codes,
        },
    }


def report_to_json(r: "Report", lazy: bool = False) -> dict:
    """The --json document. With ``lazy``, tensor listings are :class:`LazyRows` (for streaming writers)."""
    from mtpsurgeon.analysis.report import SCHEMA_VERSION

    f = r.file
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "file": str(f.path),
        "size": f.source.size,
        "format": "litertlm" if r.is_container else "tflite",
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
             "end": s.end, "size": s.size, "aligned": s.aligned, "items": dict(s.items)}
            for s in f.sections
        ]
    models = [model_json(ma) for ma in r.models]
    out["models"] = models
    out["orphans"] = {
        key: [dict(item, section=m["section"]) if isinstance(item, dict) else {"section": m["section"], "index": item}
              for m in models for item in m["orphans"][key]]
        for key in ("buffers", "subgraphs", "operator_codes")
    }
    by_tensor = [(ma, keys, t) for ma, keys in ((ma, ma.mtp_tensor_keys()) for ma in r.models) for t in ma.orphans.tensors]
    out["orphans"] = {"tensors": LazyRows(by_tensor, lambda x: tensor_json(x[0], x[2], x[1])), **out["orphans"]}
    out["base"] = None if r.base is None else r.base.to_json()
    out["mtp"] = {**r.verdict.to_json(), "findings": [x.to_json() for x in r.findings]}
    return _jsonable(out, lazy)
