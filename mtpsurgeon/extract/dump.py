"""Dump selected tensors of a TFLite model to one safetensors file, streaming.

``dtype``:

* ``raw``: the stored payload, byte for byte. INT4 / INT2 / UINT4 go out as U8
  ``[nbytes]`` (packed, low bits first); a quantized tensor's scales and zero
  points go beside it as ``<name>.scale`` (F32), ``<name>.zero_point`` (I64) and,
  for blockwise quantization, ``<name>.block_scale`` (F16 ``[out, in/block]``)
  and ``<name>.block_zero_point``.
* ``f32`` / ``f16`` / ``bf16``: quantized tensors dequantized exactly
  (:mod:`dequantize`), then cast with round-to-nearest-even. Float tensors are
  converted as stored, never dequantized (spurious quantization is reported).
  Unquantized integer tensors keep their integer type.

Sparse constants (TFLite sparsity) are written dense in both modes: the stored
type and the tensor's own shape, zeros where the layout stores nothing, and
their sparsity parameters recorded under ``sparsity``. A layout that cannot be
densified is skipped and reported by name with the reason.

``__metadata__`` carries provenance and, under ``mtpsurgeon.tensors``, a JSON
object describing every written tensor (original name, subgraph, index, stored
type and shape, quantization, packing, companions).

Tensors are read one chunk at a time through the memory map and written under
a temporary name that is renamed into place only when complete.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np

from mtpsurgeon.errors import MalformedFileError, MtpSurgeonError, UsageError
from mtpsurgeon.extract.dequantize import (
    CHUNK_ELEMENTS,
    DequantizeError,
    describe,
    iter_dequantized,
    iter_stored,
    kind,
    raw_companions,
    spurious_note,
    unsupported_reason,
    validate,
)
from mtpsurgeon.extract.hf_names import map_hf_names
from mtpsurgeon.extract.naming import NameAllocator, original_names
from mtpsurgeon.formats.safetensors.writer import DTYPE_SIZES, NUMPY_DTYPES, SafetensorsWriter
from mtpsurgeon.formats.tflite.records import TensorRecord
from mtpsurgeon.formats.tflite.sparsity import SparsityError, densify_tensor
from mtpsurgeon.outputs import atomic_output, check_writable

if TYPE_CHECKING:
    from mtpsurgeon.analysis.roles.model import RoleMap
    from mtpsurgeon.formats.tflite.model import TFLiteModel


class PartialMappingError(MtpSurgeonError):
    """``--names hf`` could not name every selected tensor (exit 1; nothing written)."""

    def __init__(self, path: Path, unmapped: list, mapped: int) -> None:
        listing = "; ".join(f"'{t.name}' ({why})" for t, why in unmapped[:8]) + (" …" if len(unmapped) > 8 else "")
        super().__init__(f"{path}: --names hf mapped {mapped} of {mapped + len(unmapped)} tensors; not mapped: "
                         f"{listing or 'nothing recognisable'} (nothing written; --allow-partial writes the mapped ones)")
        self.unmapped = unmapped


class UnfaithfulConfigError(MtpSurgeonError):
    """``--names hf``: the drafter's graph computes something no ``gemma4_assistant`` config expresses (exit 1)."""

    def __init__(self, path: Path, what: list[str]) -> None:
        super().__init__(f"{path}: no gemma4_assistant config.json computes what this drafter computes: "
                         f"{'; '.join(what)} (nothing written; --allow-partial writes the nearest config, "
                         "with this noted)")
        self.what = what


DTYPES = ("raw", "f32", "f16", "bf16")
NAMINGS = ("original", "hf")

#: TFLite type → safetensors dtype for raw payloads (sub-byte types: U8 bytes).
RAW_DTYPES = {
    "FLOAT32": "F32", "FLOAT16": "F16", "BFLOAT16": "BF16", "FLOAT64": "F64",
    "INT8": "I8", "UINT8": "U8", "INT16": "I16", "UINT16": "U16", "INT32": "I32", "UINT32": "U32",
    "INT64": "I64", "UINT64": "U64", "BOOL": "BOOL", "COMPLEX64": "C64",
    "FLOAT8_E4M3FN": "F8_E4M3", "FLOAT8_E5M2": "F8_E5M2",
    "INT4": "U8", "UINT4": "U8", "INT2": "U8",
}
_FLOAT_OUT = {"f32": ("F32", 4), "f16": ("F16", 2), "bf16": ("BF16", 2)}


@dataclass
class DumpReport:
    """What a dump wrote."""

    path: Path
    dtype: str
    names: str
    tensors: int = 0  #: model tensors written (companions and defaults not counted)
    companions: int = 0
    parameters: int = 0  #: elements of the written model tensors
    bytes_in: int = 0  #: stored payload bytes read
    bytes_out: int = 0  #: size of the safetensors file
    written: dict[str, tuple[int, int]] = field(default_factory=dict)  #: output name → (subgraph, index)
    skipped: list[tuple[TensorRecord, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    config_path: Path | None = None
    unfaithful: list[str] = field(default_factory=list)  #: graph features the written config does not express
    parity: "object | None" = None  #: a ParityResult when --check-parity ran


def f32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 → bfloat16 words, round to nearest even; NaN stays NaN (quiet)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((bits + (np.uint32(0x7FFF) + ((bits >> 16) & 1))) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        rounded[nan] = ((bits[nan] >> 16) | 0x0040).astype(np.uint16)
    return rounded


def total_input_bytes(model: "TFLiteModel", tensors: Iterable[TensorRecord]) -> int:
    """Stored bytes of the tensors that carry data (the progress total)."""
    seen, total = set(), 0
    for t in tensors:
        if (t.subgraph, t.index) not in seen and model.has_data(t) and t.dtype.bits:
            seen.add((t.subgraph, t.index))
            total += t.dtype.nbytes(t.num_elements)
    return total


@dataclass
class _Planned:
    tensor: TensorRecord | None
    name: str
    st_dtype: str
    shape: tuple[int, ...]
    source: Callable[[], Iterator]
    info: dict


def dump_safetensors(model: "TFLiteModel", tensors: Iterable[TensorRecord], out_path: str | os.PathLike,
                     dtype: str = "raw", names: str = "original", force: bool = False,
                     progress: Callable[[int], None] | None = None, extra_metadata: dict[str, str] | None = None,
                     *, section: int | str | None = None, source_sha256: str | None = None,
                     section_sha256: str | None = None,
                     config_path: str | os.PathLike | None = None, num_key_value_heads: int | None = None,
                     hf_config_overrides: dict | None = None, roles: "RoleMap | None" = None,
                     allow_partial: bool = False, chunk_elements: int = CHUNK_ELEMENTS) -> DumpReport:
    """Write ``tensors`` of ``model`` to ``out_path`` as safetensors; see the module doc.

    ``progress(nbytes)`` is called with stored bytes read as the dump advances.
    With ``names='hf'`` a ``config.json`` is written beside the file (or to
    ``config_path``; ``hf_config_overrides`` sets fields the weights cannot
    tell, e.g. ``sliding_window``); ``roles`` (the drafter's recognised roles)
    decides the names, and a tensor left unmapped stops the dump
    (:class:`PartialMappingError`) unless ``allow_partial``; so does a graph feature no
    ``gemma4_assistant`` config expresses (:class:`UnfaithfulConfigError`). ``section`` records the container section the model came
    from. Provenance hashes: the model's own bytes are always recorded
    (``mtpsurgeon.section_sha256`` for a section, ``mtpsurgeon.source_sha256``
    for a standalone .tflite), hashed here unless passed in
    (``section_sha256``); a container's own sha256 only when passed as
    ``source_sha256`` — hashing a multi-GB file is the caller's choice.
    """
    if dtype not in DTYPES:
        raise UsageError(f"unknown dtype '{dtype}' (choose from {', '.join(DTYPES)})")
    if names not in NAMINGS:
        raise UsageError(f"unknown naming '{names}' (choose from {', '.join(NAMINGS)})")
    if names == "hf" and dtype == "raw":
        raise UsageError("--names hf writes a transformers checkpoint: pick a dequantized --dtype (f32, f16, bf16)")
    out_path = Path(out_path)
    check_writable(out_path, force)
    if names == "hf":
        config_path = Path(config_path) if config_path else out_path.parent / "config.json"
        check_writable(config_path, force)

    report = DumpReport(out_path, dtype, names)
    selected = _select(model, tensors, report)
    alloc = NameAllocator()
    if names == "hf":
        mapping = map_hf_names(selected, model, num_key_value_heads, hf_config_overrides, roles)
        if mapping.unmapped and not allow_partial:
            raise PartialMappingError(model.path, mapping.unmapped, len(mapping.names))
        if not mapping.names:
            raise PartialMappingError(model.path, mapping.unmapped, 0)
        if mapping.unfaithful and not allow_partial:
            raise UnfaithfulConfigError(model.path, mapping.unfaithful)
        report.unfaithful = list(mapping.unfaithful)
        for t, reason in mapping.unmapped:
            report.skipped.append((t, f"not mapped to a gemma4_assistant name: {reason}"))
        report.notes.extend(mapping.notes)
        chosen = [t for t in selected if (t.subgraph, t.index) in mapping.names]
        out_names = {k: alloc.take(v) for k, v in mapping.names.items()}
        shapes = mapping.shapes
        factors = mapping.factors
    else:
        chosen = selected
        out_names = original_names(chosen, alloc)
        shapes, factors = {}, {}

    plan: list[_Planned] = []
    companions: list[tuple[_Planned, dict[str, np.ndarray]]] = []
    for t in chosen:
        key = (t.subgraph, t.index)
        item = _plan_tensor(model, t, out_names[key], shapes.get(key, tuple(t.shape)), dtype, report,
                            progress, chunk_elements, factors.get(key))
        if item is None:
            continue
        plan.append(item)
        if dtype == "raw":
            comp = raw_companions(model, t)
            if comp:
                companions.append((item, comp))
    for item, comp in companions:  # after every primary name is taken
        item.info["companions"] = {}
        for role, arr in comp.items():
            cname = alloc.take(f"{item.name}.{role}")
            arr = np.ascontiguousarray(arr)
            plan.append(_Planned(None, cname, NUMPY_DTYPES[arr.dtype.name], arr.shape, lambda a=arr: iter((a,)),
                                 {"companion_of": item.name, "role": role}))
            item.info["companions"][role] = cname
            report.companions += 1
    if names == "hf":
        for hname, arr in mapping.extra.items():
            plan.append(_Planned(None, alloc.take(hname), _FLOAT_OUT[dtype][0], arr.shape,
                                 lambda a=arr: iter((_cast(a, dtype),)), {"default": mapping.extra_origin.get(hname, "")}))

    plan.sort(key=lambda p: -DTYPE_SIZES[p.st_dtype])  # widest first: every tensor naturally aligned
    metadata = _metadata(model, plan, dtype, names, section, source_sha256, section_sha256, extra_metadata)
    with atomic_output(out_path, force) as tmp:
        writer = SafetensorsWriter(tmp)
        for p in plan:
            writer.add(p.name, p.st_dtype, p.shape, None, p.source)
        report.bytes_out = writer.write(metadata)
    for p in plan:
        if p.tensor is not None:
            report.tensors += 1
            report.parameters += p.tensor.num_elements
            report.bytes_in += (len(model.tensor_bytes(p.tensor)) if p.tensor.has_sparsity
                                else p.tensor.dtype.nbytes(p.tensor.num_elements))
            report.written[p.name] = (p.tensor.subgraph, p.tensor.index)
    if names == "hf":
        with atomic_output(config_path, force) as tmp:
            cfg = dict(mapping.config, dtype={"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[dtype])
            tmp.write_text(json.dumps(cfg, indent=2) + "\n")
        report.config_path = config_path
    dense = sum(1 for p in plan if p.tensor is not None and p.tensor.has_sparsity)
    if dense:
        report.notes.append(f"{dense} sparse tensor(s) (TFLite sparsity) written dense: zeros where nothing is stored")
    for t, reason in report.skipped:
        report.notes.append(f"skipped '{t.name}' (subgraph {t.subgraph}, tensor {t.index}): {reason}")
    return report


def _select(model: "TFLiteModel", tensors: Iterable[TensorRecord], report: DumpReport) -> list[TensorRecord]:
    """Distinct tensors that carry data, in the given order."""
    out, seen = [], set()
    for t in tensors:
        key = (t.subgraph, t.index)
        if key in seen:
            continue
        seen.add(key)
        if not model.has_data(t):
            report.skipped.append((t, "no constant data (an activation or input)"))
        elif t.dtype.bits == 0 or t.dtype.name == "COMPLEX128":
            report.skipped.append((t, f"type {t.dtype.name} has no safetensors form"))
        else:
            out.append(t)
    return out


def _cast(x: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "f16":
        return x.astype(np.float16)
    if dtype == "bf16":
        return f32_to_bf16_bits(x)
    return x


def _tracked(t: TensorRecord, chunks: Iterator[tuple[int, int, np.ndarray]],
             progress: Callable[[int], None] | None) -> Iterator[tuple[int, int, np.ndarray]]:
    """Pass chunks through, reporting stored bytes consumed."""
    row = t.num_elements // max(t.shape[0], 1) if t.shape else 1
    done = 0
    for r0, r1, vals in chunks:
        yield r0, r1, vals
        if progress is not None:
            now = t.dtype.nbytes(r1 * row)
            progress(now - done)
            done = now


def _plan_tensor(model: "TFLiteModel", t: TensorRecord, name: str, shape: tuple[int, ...], dtype: str,
                 report: DumpReport, progress: Callable[[int], None] | None, chunk_elements: int,
                 factor: float | None = None) -> _Planned | None:
    """How one tensor is written; ``factor`` multiplies dequantized values (an unfolded constant)."""
    k = kind(t)
    info = {"name": t.name, "subgraph": t.subgraph, "index": t.index, "dtype": t.dtype.name,
            "shape": list(t.shape), "quantization": describe(t)}
    note = spurious_note(t)
    if note:
        report.notes.append(note)
    if t.has_sparsity:
        if dtype == "raw" or k == "integer":  # the dequantized path checks it in validate()
            try:
                densify_tensor(model, t)  # refuse an unsupported layout before anything is written
            except (SparsityError, MalformedFileError) as exc:
                reason = exc.reason if isinstance(exc, SparsityError) else str(exc)
                report.skipped.append((t, f"sparse tensor that cannot be densified: {reason}"))
                return None
        info["sparsity"] = t.sparsity.to_json()
        info["densified"] = "stored values placed by the sparsity layout, zeros elsewhere"
    if dtype == "raw" and t.has_sparsity:
        st = RAW_DTYPES[t.dtype.name]  # densify_tensor refused the sub-byte types
        info["stored_as"] = st
        src = lambda: (v for _, _, v in _tracked(t, iter_stored(model, t, chunk_elements), progress))
        return _Planned(t, name, st, shape, src, info)
    if dtype == "raw":
        st = RAW_DTYPES.get(t.dtype.name)
        if st is None:
            report.skipped.append((t, f"type {t.dtype.name} has no safetensors form"))
            return None
        nbytes = t.dtype.nbytes(t.num_elements)
        if len(model.tensor_bytes(t)) < nbytes:
            report.skipped.append((t, f"{t.dtype.name}{list(t.shape)} needs {nbytes} bytes, its buffer has "
                                      f"{len(model.tensor_bytes(t))}"))
            return None
        out_shape = (nbytes,) if t.dtype.packed else shape
        info["stored_as"] = st
        return _Planned(t, name, st, out_shape, lambda: _raw_chunks(model, t, nbytes, progress, chunk_elements), info)
    if k == "unsupported":
        report.skipped.append((t, f"{t.dtype.name} cannot be dequantized exactly: {unsupported_reason(t) or 'unsupported quantization'}"))
        return None
    if k == "integer":
        np_dtype = np.dtype(t.dtype.numpy) if not t.dtype.packed else np.dtype(np.int8 if t.dtype.signed else np.uint8)
        st = NUMPY_DTYPES[np_dtype.name]
        info["stored_as"] = st
        info["values"] = "integers, not quantized: kept as integers" + (" (unpacked)" if t.dtype.packed else "")
        src = lambda: (v for _, _, v in _tracked(t, iter_stored(model, t, chunk_elements), progress))
        return _Planned(t, name, st, shape, src, info)
    try:
        validate(model, t)
    except SparsityError as exc:
        report.skipped.append((t, f"sparse tensor that cannot be densified: {exc.reason}"))
        return None
    except (MalformedFileError, DequantizeError) as exc:
        report.skipped.append((t, f"cannot be dequantized: {exc}"))
        return None
    if t.dtype.name == "FLOAT64":
        report.notes.append(f"'{t.name}' is FLOAT64; rounded to {dtype}")
    st = _FLOAT_OUT[dtype][0]
    info["stored_as"] = st
    info["values"] = "dequantized" if k == "quantized" else "float, converted as stored"
    if factor is not None:
        info["unfolded_factor"] = factor
        info["values"] += f", then multiplied by {factor:g} (a constant the exporter folded into it)"
    f16_overflow = []

    def src() -> Iterator[np.ndarray]:
        try:
            for _, _, vals in _tracked(t, iter_dequantized(model, t, chunk_elements), progress):
                if factor is not None:
                    vals = vals * np.float32(factor)
                out = _cast(vals, dtype)
                if dtype == "f16" and not f16_overflow and np.isinf(out).sum() > np.isinf(vals).sum():
                    f16_overflow.append(True)
                    report.notes.append(f"'{t.name}': values beyond float16 range became inf")
                yield out
        except DequantizeError as exc:  # validated in planning; here only as a safety net
            raise UsageError(str(exc)) from exc

    return _Planned(t, name, st, shape, src, info)


def _raw_chunks(model: "TFLiteModel", t: TensorRecord, nbytes: int, progress: Callable[[int], None] | None,
                chunk_elements: int) -> Iterator[memoryview]:
    raw = model.tensor_bytes(t)  # length checked when planned
    step = max(1, chunk_elements * 4)
    for start in range(0, nbytes, step):
        part = raw[start : min(nbytes, start + step)]
        yield part
        if progress is not None:
            progress(len(part))


def _metadata(model: "TFLiteModel", plan: list[_Planned], dtype: str, names: str, section: int | str | None,
              source_sha256: str | None, section_sha256: str | None, extra: dict[str, str] | None) -> dict[str, str]:
    from mtpsurgeon._version import __version__

    whole_file = model.offset == 0 and model.length == model.source.size
    if source_sha256 is None and whole_file:
        source_sha256 = section_sha256 or model.sha256()
    meta = {
        "format": "np",
        "mtpsurgeon.version": __version__,
        "mtpsurgeon.source": model.path.name,
        **({"mtpsurgeon.source_sha256": source_sha256} if source_sha256 else {}),
        "mtpsurgeon.dtype": dtype,
        "mtpsurgeon.names": names,
    }
    if section is not None:
        meta["mtpsurgeon.section"] = str(section)
    if section is not None or (section_sha256 and not whole_file):
        meta["mtpsurgeon.section_sha256"] = (source_sha256 if whole_file else None) or section_sha256 or model.sha256()
    if model.label:
        meta["mtpsurgeon.model"] = model.label
    meta["mtpsurgeon.tensors"] = json.dumps({p.name: p.info for p in plan}, separators=(",", ":"))
    meta.update(extra or {})
    return meta
