"""Exact dequantization of stored LiteRT tensors, in pure numpy.

    f = scale * (q - zero_point)

* per-tensor: one scale / zero point;
* per-channel: one per index of ``quantized_dimension``;
* blockwise (``BlockwiseQuantization``, as written by ai-edge-quantizer): a
  FLOAT16 scale tensor shaped ``[out, in / block_size]``; blocks run along the
  last (input) axis of an ``[out, in]`` weight, zero points 0 unless a zero
  point tensor is given;
* INT4 / INT2 / UINT4 are unpacked low bits first and sign-extended;
* sparse constants (``Tensor.sparsity``) are densified first
  (:mod:`mtpsurgeon.formats.tflite.sparsity`), zeros where nothing is stored.

Integers of up to 16 bits are exact in float32, so ``(q - zp) * scale`` is
computed in float32 with a single rounding, the same value LiteRT's reference
DEQUANTIZE produces. Wider integers go through float64 and are rounded once.

Float tensors are never dequantized: quantization parameters on a FLOAT32 /
FLOAT16 / BFLOAT16 tensor (Gemma 4's RMSNorm weights carry them) are spurious,
ignored, and reported in :attr:`DequantResult.note`.

Values are produced in chunks along the first axis (:func:`iter_dequantized`)
so a caller can stream a huge tensor with bounded memory.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

import numpy as np

from mtpsurgeon.errors import MalformedFileError, MtpSurgeonError
from mtpsurgeon.formats.tflite.dtypes import bf16_to_f32, float8_to_f32, unpack_subbyte
from mtpsurgeon.formats.tflite.records import TensorRecord
from mtpsurgeon.formats.tflite.sparsity import densify_tensor

if TYPE_CHECKING:
    from mtpsurgeon.formats.tflite.model import TFLiteModel

#: Default chunk size in elements (16 MiB of float32).
CHUNK_ELEMENTS = 1 << 22

_FLOAT_TYPES = {"FLOAT32", "FLOAT16", "BFLOAT16", "FLOAT64", "FLOAT8_E4M3FN", "FLOAT8_E5M2"}
_INT_TYPES = {"INT2", "INT4", "UINT4", "INT8", "UINT8", "INT16", "UINT16", "INT32", "UINT32", "INT64", "UINT64"}


class DequantizeError(MtpSurgeonError):
    """A tensor cannot be turned into float values."""


@dataclass(frozen=True)
class DequantResult:
    """Float32 values of a tensor, plus a note when something was ignored."""

    values: np.ndarray
    note: str | None = None


def unsupported_reason(t: TensorRecord) -> str | None:
    """Why an integer tensor's quantization cannot be applied exactly (None when it can, or is absent)."""
    q = t.quantization
    if q is None or t.dtype.name not in _INT_TYPES:
        return None
    if q.scheme == "custom":
        return f"{q.details} quantization is not supported"
    if q.scheme == "none" and q.zero_point is not None and len(q.zero_point):
        return f"{len(q.zero_point)} zero point(s) but no scales: the stored integers cannot be turned into values"
    return None


def kind(t: TensorRecord) -> str:
    """'quantized', 'float', 'integer' (unquantized ints / bool) or 'unsupported' (see :func:`unsupported_reason`)."""
    name = t.dtype.name
    if name in _FLOAT_TYPES:
        return "float"
    if name in _INT_TYPES:
        if unsupported_reason(t):
            return "unsupported"
        if t.is_quantized:
            return "quantized" if t.quantization.scheme != "custom" else "unsupported"
        return "integer"
    if name == "BOOL":
        return "integer"
    return "unsupported"


def spurious_note(t: TensorRecord) -> str | None:
    """The report line for a float tensor carrying (ignored) quantization parameters."""
    if not t.has_spurious_quantization:
        return None
    q = t.quantization
    n = 0 if q.scale is None else len(q.scale)
    return (f"'{t.name}' (subgraph {t.subgraph}, tensor {t.index}) is {t.dtype.name} but carries "
            f"{q.scheme} quantization parameters ({n} scale(s)); ignored, values kept as stored")


# -- stored values, chunk by chunk ------------------------------------------------

def _rows(t: TensorRecord) -> tuple[int, int]:
    """(number of rows along axis 0, elements per row); a scalar is one row of one."""
    if not t.shape:
        return 1, 1
    row = 1
    for d in t.shape[1:]:
        row *= max(d, 0)
    return max(t.shape[0], 0), row


def _chunk_rows(t: TensorRecord, chunk_elements: int) -> int:
    _, row = _rows(t)
    return max(1, chunk_elements // max(row, 1))


def _payload(model: "TFLiteModel", t: TensorRecord) -> memoryview:
    raw = model.tensor_bytes(t)
    need = t.dtype.nbytes(t.num_elements)
    if t.dtype.numpy is None:
        raise DequantizeError(f"tensor '{t.name}' has type {t.dtype.name}, which has no fixed-size elements")
    if t.has_sparsity:
        return raw  # stores only the kept values; densify_tensor checks them
    if len(raw) < need:
        raise MalformedFileError(model.path, f"tensor '{t.name}': {t.dtype.name}{list(t.shape)} needs {need} bytes, "
                                             f"buffer has {len(raw)}")
    return raw


def iter_stored(model: "TFLiteModel", t: TensorRecord, chunk_elements: int = CHUNK_ELEMENTS
                ) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(row0, row1, values)`` with values shaped ``[row1-row0, *shape[1:]]``.

    Values are the stored integers/words, one per element (sub-byte types
    unpacked and sign-extended); byte-aligned types are views into the map.
    A sparse tensor is densified whole first (raises ``SparsityError`` when it cannot be).
    """
    raw = _payload(model, t)
    dt = t.dtype
    nrows, row = _rows(t)
    tail = tuple(t.shape[1:]) if t.shape else ()
    step = _chunk_rows(t, chunk_elements)
    if t.has_sparsity:
        full = densify_tensor(model, t).reshape(-1)
    elif dt.packed:
        per_byte = 8 // dt.bits
    else:
        full = np.frombuffer(raw, dtype=np.dtype(dt.numpy), count=t.num_elements)
    for r0 in range(0, nrows, step):
        r1 = min(nrows, r0 + step)
        e0, e1 = r0 * row, r1 * row
        if dt.packed and not t.has_sparsity:
            b0, b1 = e0 // per_byte, -(-e1 // per_byte)
            vals = unpack_subbyte(raw[b0:b1], dt.bits, dt.signed, (b1 - b0) * per_byte)
            skip = e0 - b0 * per_byte
            vals = vals[skip : skip + (e1 - e0)]
        else:
            vals = full[e0:e1]
        yield r0, r1, vals.reshape((r1 - r0,) + tail)


def _float_chunk(t: TensorRecord, vals: np.ndarray) -> np.ndarray:
    name = t.dtype.name
    if name == "BFLOAT16":
        return bf16_to_f32(vals)
    if name.startswith("FLOAT8"):
        return float8_to_f32(vals, name)
    return vals.astype(np.float32)


# -- quantization parameters --------------------------------------------------------

@dataclass(frozen=True)
class _Params:
    scheme: str
    scale: np.ndarray  #: float32 (per-tensor: shape [1]; blockwise: [outer, nblocks])
    zero_point: np.ndarray | None  #: int64, same layout, None when all zero / absent
    axis: int = 0
    block_size: int = 0


def _fail(model: "TFLiteModel", t: TensorRecord, problem: str) -> MalformedFileError:
    return MalformedFileError(model.path, f"tensor '{t.name}' (subgraph {t.subgraph}, index {t.index}): {problem}")


def _check_finite(model: "TFLiteModel", t: TensorRecord, scale: np.ndarray) -> None:
    """NaN / Inf scales would write NaN / Inf values that are not in the model: refuse the tensor."""
    bad = int(np.count_nonzero(~np.isfinite(scale)))
    if bad:
        raise _fail(model, t, f"{bad} of {scale.size} scales are NaN or infinite")


def _zero_or_none(zp: np.ndarray | None) -> np.ndarray | None:
    if zp is None or len(zp) == 0 or not np.any(zp):
        return None
    return zp.astype(np.int64)


def _params(model: "TFLiteModel", t: TensorRecord) -> _Params:
    q = t.quantization
    scheme = q.scheme
    if scheme == "blockwise":
        return _block_params(model, t)
    scale = np.asarray(q.scale, dtype=np.float32)
    _check_finite(model, t, scale)
    zp = q.zero_point
    if scheme == "per-tensor":
        if zp is not None and len(zp) not in (0, 1):
            raise _fail(model, t, f"{len(zp)} zero points for a single scale")
        return _Params(scheme, scale, _zero_or_none(zp))
    if scheme != "per-channel":
        raise DequantizeError(f"tensor '{t.name}': {q.details} quantization is not supported")
    axis = q.quantized_dimension
    if not 0 <= axis < len(t.shape):
        raise _fail(model, t, f"quantized_dimension {axis} is out of range for shape {list(t.shape)}")
    if len(scale) != t.shape[axis]:
        raise _fail(model, t, f"{len(scale)} scales for dimension {axis} of size {t.shape[axis]}")
    if zp is not None and len(zp) not in (0, 1, len(scale)):
        raise _fail(model, t, f"{len(zp)} zero points for {len(scale)} channels")
    zp = _zero_or_none(zp)
    if zp is not None and len(zp) == 1:
        zp = np.full(len(scale), zp[0], dtype=np.int64)
    return _Params(scheme, scale, zp, axis=axis)


def _block_params(model: "TFLiteModel", t: TensorRecord) -> _Params:
    q = t.quantization
    if q.block_size <= 0 or not t.shape:
        raise _fail(model, t, f"blockwise quantization with block size {q.block_size}")
    inner = t.shape[-1]
    if inner % q.block_size:
        raise _fail(model, t, f"last dimension {inner} is not a multiple of block size {q.block_size}")
    outer = t.num_elements // max(inner, 1)
    nblocks = inner // q.block_size
    svals, side = _side_tensor(model, t, q.block_scales_tensor, "scales", outer * nblocks)
    scale = _float_chunk(side, svals.reshape(-1)).reshape(outer, nblocks)
    _check_finite(model, t, scale)
    zp = None
    if _has_block_zero_points(model, t, outer * nblocks):
        zvals, _ = _side_tensor(model, t, q.block_zero_points_tensor, "zero points", outer * nblocks)
        zp = _zero_or_none(zvals.reshape(-1).astype(np.int64))
        zp = None if zp is None else zp.reshape(outer, nblocks)
    return _Params("blockwise", scale, zp, axis=len(t.shape) - 1, block_size=q.block_size)


def _has_block_zero_points(model: "TFLiteModel", t: TensorRecord, count: int) -> bool:
    """Whether ``zero_points`` names a tensor: -1 (ai-edge-quantizer) means none.

    The field's flatbuffer default is 0, which cannot be told apart from an
    explicit tensor 0; 0 therefore counts only when tensor 0 fits (integer,
    ``count`` values).
    """
    index = t.quantization.block_zero_points_tensor
    if index < 0:
        return False
    if index == 0:
        z = model.subgraphs[t.subgraph].tensors[0] if model.subgraphs[t.subgraph].tensors else None
        return (z is not None and z.num_elements == count and not z.dtype.is_float
                and z.dtype.numpy is not None and model.has_data(z))
    return True


def _side_tensor(model: "TFLiteModel", t: TensorRecord, index: int, what: str, count: int
                 ) -> tuple[np.ndarray, TensorRecord]:
    """A blockwise scale / zero point tensor's stored values and record, checked."""
    sg = model.subgraphs[t.subgraph]
    if not 0 <= index < len(sg.tensors):
        raise _fail(model, t, f"blockwise {what} tensor {index} does not exist")
    side = sg.tensors[index]
    if not model.has_data(side):
        raise _fail(model, t, f"blockwise {what} tensor '{side.name}' has no data")
    if side.num_elements != count:
        raise _fail(model, t, f"blockwise {what} tensor '{side.name}' has {side.num_elements} values, "
                              f"{count} expected")
    if what == "scales" and side.dtype.name not in ("FLOAT16", "FLOAT32", "BFLOAT16"):
        raise _fail(model, t, f"blockwise scales tensor '{side.name}' is {side.dtype.name}, not a float type")
    return model.tensor_array(side, unpack=side.dtype.packed), side


def _apply(p: _Params, t: TensorRecord, r0: int, r1: int, q: np.ndarray) -> np.ndarray:
    wide = q.dtype.itemsize > 2  # > 16-bit integers are not exact in float32
    ctype = np.float64 if wide else np.float32
    x = q.astype(ctype)
    if p.scheme == "per-tensor":
        if p.zero_point is not None:
            x -= ctype(p.zero_point[0])
        x *= ctype(p.scale[0])
        return x.astype(np.float32, copy=False)
    if p.scheme == "per-channel":
        bshape = [1] * x.ndim
        scale, zp = p.scale, p.zero_point
        if p.axis == 0:
            scale = scale[r0:r1]
            zp = None if zp is None else zp[r0:r1]
        bshape[p.axis] = len(scale)
        if zp is not None:
            x -= zp.astype(ctype).reshape(bshape)
        x *= scale.astype(ctype).reshape(bshape)
        return x.astype(np.float32, copy=False)
    # blockwise: view as [outer rows, nblocks, block]
    nblocks = p.scale.shape[1]
    inner = nblocks * p.block_size
    row = x.size // max(r1 - r0, 1)
    o0, o1 = r0 * row // inner, r1 * row // inner  # chunks hold whole outer rows
    xb = x.reshape(o1 - o0, nblocks, p.block_size)
    if p.zero_point is not None:
        xb -= p.zero_point[o0:o1, :, None].astype(ctype)
    xb *= p.scale[o0:o1, :, None].astype(ctype)
    return x.astype(np.float32, copy=False)


# -- public API ---------------------------------------------------------------------

def iter_dequantized(model: "TFLiteModel", t: TensorRecord, chunk_elements: int = CHUNK_ELEMENTS
                     ) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(row0, row1, float32 values)`` chunks along axis 0 (see :func:`iter_stored`)."""
    k = kind(t)
    if k == "float":
        if t.dtype.name.startswith("COMPLEX"):
            raise DequantizeError(f"tensor '{t.name}' is {t.dtype.name}; complex values have no float32 form")
        for r0, r1, vals in iter_stored(model, t, chunk_elements):
            yield r0, r1, _float_chunk(t, vals)
        return
    if k != "quantized":
        what = "not quantized" if k == "integer" else f"of type {t.dtype.name} with {t.quantization.details if t.quantization else 'no'} quantization"
        raise DequantizeError(f"tensor '{t.name}' is {what}; nothing to dequantize")
    p = _params(model, t)
    if p.scheme == "blockwise" and len(t.shape) == 1:
        chunk_elements = max(chunk_elements, t.num_elements)  # blocks run along axis 0: one chunk
    for r0, r1, vals in iter_stored(model, t, chunk_elements):
        yield r0, r1, _apply(p, t, r0, r1, vals)


def validate(model: "TFLiteModel", t: TensorRecord) -> None:
    """Raise if a quantized tensor's parameters do not fit it (before anything is written)."""
    if kind(t) == "quantized":
        _params(model, t)
    _payload(model, t)
    if t.has_sparsity:
        densify_tensor(model, t)


def dequantize(model: "TFLiteModel", t: TensorRecord, chunk_elements: int = CHUNK_ELEMENTS) -> DequantResult:
    """The tensor's float32 values, whole; ``note`` reports ignored spurious quantization."""
    out = np.empty(t.shape, dtype=np.float32)
    flat = out.reshape((_rows(t)[0],) + tuple(t.shape[1:])) if t.shape else out.reshape(1)
    for r0, r1, vals in iter_dequantized(model, t, chunk_elements):
        flat[r0:r1] = vals
    return DequantResult(out, spurious_note(t))


def raw_companions(model: "TFLiteModel", t: TensorRecord) -> dict[str, np.ndarray]:
    """Quantization parameters of a quantized tensor as arrays, keyed by suffix.

    ``scale`` (float32) and ``zero_point`` (int64) as stored in the flatbuffer;
    for blockwise tensors also ``block_scale`` (the scale tensor's stored
    FLOAT16 values, shaped ``[out, in / block_size]``) and ``block_zero_point``.
    Float tensors get none: their parameters are spurious.
    """
    if kind(t) != "quantized":
        return {}
    q = t.quantization
    out: dict[str, np.ndarray] = {}
    if q.scale is not None and len(q.scale):
        out["scale"] = np.asarray(q.scale, dtype=np.float32)
    if q.zero_point is not None and len(q.zero_point):
        out["zero_point"] = np.asarray(q.zero_point, dtype=np.int64)
    if q.scheme == "blockwise":
        p = _block_params(model, t)  # validates shapes
        sg = model.subgraphs[t.subgraph]
        side = sg.tensors[q.block_scales_tensor]
        stored = model.tensor_array(side)
        out["block_scale"] = stored.reshape(p.scale.shape) if side.dtype.name != "BFLOAT16" else p.scale
        if _has_block_zero_points(model, t, p.scale.size):
            z = sg.tensors[q.block_zero_points_tensor]
            out["block_zero_point"] = np.asarray(model.tensor_array(z, unpack=True)).reshape(p.scale.shape)
    return out


def describe(t: TensorRecord) -> dict:
    """Quantization and packing facts for provenance metadata."""
    q = t.quantization
    d: dict = {"scheme": "none" if q is None else q.scheme}
    if t.dtype.packed:
        d["packing"] = (f"{t.dtype.name.lower()}: {8 // t.dtype.bits} per byte, low bits first, "
                        f"{'sign-extended' if t.dtype.signed else 'unsigned'}")
    if q is None or q.scheme == "none":
        return d
    if t.has_spurious_quantization:
        d["spurious"] = "float tensor: quantization parameters ignored"
    d["quantized_dimension"] = q.quantized_dimension
    d["scale_count"] = 0 if q.scale is None else int(len(q.scale))
    if q.scale is not None and len(q.scale) <= 4:
        d["scale"] = [float(s) for s in q.scale]
    if q.zero_point is not None and len(q.zero_point) <= 4:
        d["zero_point"] = [int(z) for z in q.zero_point]
    if q.scheme == "blockwise":
        d.update(block_size=q.block_size, block_axis=len(t.shape) - 1,
                 block_scales_tensor=q.block_scales_tensor, block_zero_points_tensor=q.block_zero_points_tensor)
    return d
