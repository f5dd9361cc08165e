"""TFLite tensor sparsity: parse ``Tensor.sparsity`` and densify stored values exactly.

A sparse constant stores only its kept values, in the order of a walk over
``n + k`` levels (``n`` = rank of the dense tensor, ``k`` = number of block
dimensions):

* ``traversal_order`` lists the dimension each level walks: a permutation of
  the original dimensions ``0..n-1`` first, then the block dimensions
  ``n..n+k-1``;
* ``block_map[j]`` is the original dimension that block dimension ``n + j``
  splits; that dimension is walked in ``shape / block_size`` blocks;
* ``dim_metadata[level]`` is DENSE (``dense_size`` positions, all present) or
  SPARSE_CSR (``array_segments`` / ``array_indices``: the children of the
  parent position ``p`` are ``array_indices[array_segments[p]:array_segments[p+1]]``);
  a DENSE block level's ``dense_size`` is the block size.

This is the layout LiteRT's DENSIFY operator reads (``FormatConverter``);
positions no walk reaches are zero. Layouts the runtime cannot read either
(block dimensions that are themselves sparse, block dimensions listed before
original ones, a block_map out of increasing order) raise :class:`SparsityError`
naming what is unsupported.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from mtpsurgeon.errors import MtpSurgeonError
from mtpsurgeon.formats.flatbuf import vector_len


class _Stored(Protocol):
    """What densify_tensor needs of a model (a TFLiteModel; not imported: records import this module)."""

    def tensor_bytes(self, t: Any) -> memoryview: ...

DENSE, SPARSE_CSR = 0, 1
#: SparseIndexVector union type → element dtype.
_INDEX_TYPES = {1: np.dtype("<i4"), 2: np.dtype("<u2"), 3: np.dtype("u1")}
_INDEX_NAMES = {0: "none", 1: "int32", 2: "uint16", 3: "uint8"}


class SparsityError(MtpSurgeonError):
    """A sparse tensor whose layout cannot be densified (unsupported or inconsistent).

    ``reason`` is the problem alone, without the tensor's name.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


@dataclass(frozen=True)
class DimMetadata:
    """One level of the walk: DENSE with ``dense_size``, or SPARSE_CSR with its vectors."""

    format: int  #: DENSE or SPARSE_CSR
    dense_size: int = 0
    segments: np.ndarray | None = None  #: SPARSE_CSR only; a view into the file
    indices: np.ndarray | None = None

    @property
    def format_name(self) -> str:
        return "DENSE" if self.format == DENSE else "SPARSE_CSR" if self.format == SPARSE_CSR else f"format {self.format}"

    def to_json(self) -> dict:
        if self.format == DENSE:
            return {"format": "DENSE", "dense_size": self.dense_size}
        return {"format": self.format_name,
                "segments": None if self.segments is None else f"{self.segments.dtype.name}[{len(self.segments)}]",
                "indices": None if self.indices is None else f"{self.indices.dtype.name}[{len(self.indices)}]"}


@dataclass(frozen=True)
class Sparsity:
    """A tensor's SparsityParameters, as stored."""

    traversal_order: tuple[int, ...]
    block_map: tuple[int, ...]
    dim_metadata: tuple[DimMetadata, ...]

    def to_json(self) -> dict:
        """Summary for --json output and safetensors provenance."""
        return {"traversal_order": list(self.traversal_order), "block_map": list(self.block_map),
                "dim_metadata": [d.to_json() for d in self.dim_metadata]}


def parse_sparsity(sp: object, where: str) -> Sparsity | None:
    """Read an ``fb.SparsityParameters`` table (None when absent), checking vector bounds.

    Unknown dimension formats or index vector types are kept as found and
    refused later by :func:`densify`, so inspecting such a file still works.
    """
    if sp is None:
        return None
    order = tuple(int(x) for x in sp.TraversalOrderAsNumpy()) if vector_len(sp, 0, 4, f"{where} traversal_order") else ()
    bmap = tuple(int(x) for x in sp.BlockMapAsNumpy()) if vector_len(sp, 1, 4, f"{where} block_map") else ()
    dims = []
    for i in range(vector_len(sp, 2, 4, f"{where} dim_metadata")):
        dm = sp.DimMetadata(i)
        if dm.Format() != SPARSE_CSR:
            dims.append(DimMetadata(dm.Format(), dm.DenseSize()))
            continue
        segments = _index_vector(dm.ArraySegmentsType(), dm.ArraySegments(), f"{where} level {i} array_segments")
        indices = _index_vector(dm.ArrayIndicesType(), dm.ArrayIndices(), f"{where} level {i} array_indices")
        dims.append(DimMetadata(SPARSE_CSR, dm.DenseSize(), segments, indices))
    return Sparsity(order, bmap, tuple(dims))


def _index_vector(kind: int, table: object, what: str) -> np.ndarray | None:
    """The values of an Int32/Uint16/Uint8Vector union member (a view), or None."""
    dtype = _INDEX_TYPES.get(kind)
    if dtype is None or table is None:
        return None
    from mtpsurgeon.formats.tflite.schema import fb

    vec = {1: fb.Int32Vector, 2: fb.Uint16Vector, 3: fb.Uint8Vector}[kind]()
    vec.Init(table.Bytes, table.Pos)
    n = vector_len(vec, 0, dtype.itemsize, what)
    if n == 0:
        return np.zeros(0, dtype=dtype)
    start = vec._tab.Vector(vec._tab.Offset(4))
    return np.frombuffer(table.Bytes, dtype=dtype, count=n, offset=start)


@dataclass(frozen=True)
class _Layout:
    level_sizes: tuple[int, ...]  #: positions per level (a DENSE level's dense_size; a sparse level's dim size)
    block_sizes: tuple[int, ...]  #: per block dimension j
    blocked_shape: tuple[int, ...]  #: original dims divided by their block size


def _layout(sp: Sparsity, shape: tuple[int, ...]) -> _Layout:
    n, k = len(shape), len(sp.block_map)
    if len(sp.traversal_order) != n + k or len(sp.dim_metadata) != n + k:
        raise SparsityError(f"sparsity has {len(sp.traversal_order)} traversal levels and {len(sp.dim_metadata)} "
                            f"dim_metadata entries for a rank-{n} tensor with {k} block dimension(s)")
    if sorted(sp.traversal_order[:n]) != list(range(n)) or sorted(sp.traversal_order[n:]) != list(range(n, n + k)):
        raise SparsityError(f"traversal_order {list(sp.traversal_order)} is not the original dimensions followed by "
                            f"the block dimensions (unsupported, as in LiteRT's DENSIFY)")
    if len(set(sp.block_map)) != k or any(not 0 <= b < n for b in sp.block_map):
        raise SparsityError(f"block_map {list(sp.block_map)} does not name distinct dimensions of a rank-{n} tensor")
    if list(sp.block_map) != sorted(sp.block_map):
        raise SparsityError(f"block_map {list(sp.block_map)} is not in increasing order (unsupported, as in LiteRT's DENSIFY)")
    for level, dm in enumerate(sp.dim_metadata):
        if dm.format not in (DENSE, SPARSE_CSR):
            raise SparsityError(f"level {level}: unsupported dimension format {dm.format}")
        if dm.format == SPARSE_CSR and (dm.segments is None or dm.indices is None):
            raise SparsityError(f"level {level}: SPARSE_CSR without segment/index vectors of a supported type "
                                f"(int32, uint16, uint8)")
    block_sizes = []
    for j in range(k):
        level = sp.traversal_order.index(n + j)
        dm = sp.dim_metadata[level]
        if dm.format != DENSE:
            raise SparsityError(f"block dimension {n + j} is SPARSE_CSR (unsupported, as in LiteRT's DENSIFY)")
        if dm.dense_size <= 0 or shape[sp.block_map[j]] % dm.dense_size:
            raise SparsityError(f"block size {dm.dense_size} does not divide dimension {sp.block_map[j]} "
                                f"of size {shape[sp.block_map[j]]}")
        block_sizes.append(dm.dense_size)
    blocked = list(shape)
    for j, d in enumerate(sp.block_map):
        blocked[d] //= block_sizes[j]
    expanded = blocked + block_sizes
    sizes = []
    for level, dim in enumerate(sp.traversal_order):
        dm = sp.dim_metadata[level]
        if dm.format == DENSE and dm.dense_size != expanded[dim]:
            raise SparsityError(f"level {level} (dimension {dim}) is DENSE of size {dm.dense_size}, "
                                f"expected {expanded[dim]}")
        sizes.append(expanded[dim])
    return _Layout(tuple(sizes), tuple(block_sizes), tuple(blocked))


def _walk(sp: Sparsity, layout: _Layout) -> list[np.ndarray]:
    """Per level, the coordinate of every stored value (in storage order)."""
    parents = np.zeros(1, dtype=np.int64)  #: position of each node in its level (the CSR parent index)
    coords: list[np.ndarray] = []
    for level, dm in enumerate(sp.dim_metadata):
        size = layout.level_sizes[level]
        if dm.format == DENSE:
            coords = [np.repeat(c, size) for c in coords]
            here = np.tile(np.arange(size, dtype=np.int64), len(parents))
            parents = np.repeat(parents, size) * size + here
        else:
            seg = dm.segments.astype(np.int64)
            if len(parents) and len(seg) < int(parents.max()) + 2:
                raise SparsityError(f"level {level}: {len(seg)} array_segments for {len(parents)} parent positions")
            start, stop = seg[parents], seg[parents + 1]
            counts = stop - start
            if np.any(counts < 0) or (len(seg) and (seg[0] < 0 or int(stop.max(initial=0)) > len(dm.indices))):
                raise SparsityError(f"level {level}: array_segments are not a non-decreasing range within "
                                    f"{len(dm.indices)} array_indices")
            coords = [np.repeat(c, counts) for c in coords]
            total = int(counts.sum())
            # position i of every child: start of its parent's segment + rank within the segment
            offsets = np.repeat(start - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
            parents = offsets + np.arange(total, dtype=np.int64)
            here = dm.indices[parents].astype(np.int64)
            if total and (int(here.min()) < 0 or int(here.max()) >= size):
                raise SparsityError(f"level {level}: array_indices outside [0, {size})")
        coords.append(here)
    return coords


def densify(values: np.ndarray, sp: Sparsity, shape: tuple[int, ...]) -> np.ndarray:
    """The dense tensor of ``shape`` whose kept values are ``values`` (1-D, storage order)."""
    shape = tuple(int(d) for d in shape)
    layout = _layout(sp, shape)
    coords = _walk(sp, layout)
    n = len(shape)
    count = len(coords[-1]) if coords else 1
    if values.size != count:
        raise SparsityError(f"the sparse layout holds {count} values, the buffer has {values.size}")
    orig = [None] * n
    for level, dim in enumerate(sp.traversal_order[:n]):
        orig[dim] = coords[level]
    for level in range(n, n + len(sp.block_map)):
        j = sp.traversal_order[level] - n
        d = sp.block_map[j]
        orig[d] = orig[d] * layout.block_sizes[j] + coords[level]
    out = np.zeros(shape, dtype=values.dtype)
    if n == 0:
        return values.reshape(())
    out[tuple(orig)] = values.reshape(-1)
    return out


def densify_tensor(model: _Stored, t: Any) -> np.ndarray:
    """A sparse constant's dense values (stored type, shaped like the tensor); a new array.

    ``t`` is a :class:`~mtpsurgeon.formats.tflite.records.TensorRecord` of ``model``.

    Raises :class:`SparsityError` naming the tensor when its layout or value
    type cannot be densified (sub-byte and variable-size types are refused).
    """
    where = f"sparse tensor '{t.name}' (subgraph {t.subgraph}, index {t.index})"
    if t.sparsity is None:
        raise SparsityError(f"{where}: has no sparsity parameters")
    dt = t.dtype
    if dt.numpy is None or dt.packed:
        raise SparsityError(f"{where}: sparse {dt.name} values are not supported",
                            f"sparse {dt.name} values are not supported")
    raw = model.tensor_bytes(t)
    item = np.dtype(dt.numpy).itemsize
    if len(raw) % item:
        problem = f"buffer of {len(raw)} bytes is not a whole number of {dt.name} values"
        raise SparsityError(f"{where}: {problem}", problem)
    try:
        return densify(np.frombuffer(raw, dtype=np.dtype(dt.numpy)), t.sparsity, t.shape)
    except SparsityError as exc:
        raise SparsityError(f"{where}: {exc}", str(exc)) from None
