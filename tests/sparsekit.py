"""Encode dense arrays in TFLite's sparsity format, and build DENSIFY models around them.

Test scaffolding, written independently of mtpsurgeon's densifier: it walks the
levels breadth-first over an explicitly blocked and transposed copy of the
array, keeping every position of a DENSE level and the non-zero subtrees of a
SPARSE_CSR level. The LiteRT interpreter's DENSIFY operator is the oracle that
decides whether an encoding means what the densifier says it means.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as fb

import modelkit

D, S = "D", "S"  #: DENSE, SPARSE_CSR
_VEC = {"i32": (fb.SparseIndexVector.Int32Vector, fb.Int32VectorT, np.int32),
        "u16": (fb.SparseIndexVector.Uint16Vector, fb.Uint16VectorT, np.uint16),
        "u8": (fb.SparseIndexVector.Uint8Vector, fb.Uint8VectorT, np.uint8)}


@dataclass
class Encoding:
    values: np.ndarray  #: kept values in storage order
    sparsity: fb.SparsityParametersT


def expanded(dense: np.ndarray, traversal: list[int], block_map: list[int], block_sizes: list[int]) -> np.ndarray:
    """The array with blocked dims split (block dims appended) and transposed to traversal order."""
    n = dense.ndim
    shape, axes_outer, axes_inner = [], [], []
    for d in range(n):
        if d in block_map:
            b = block_sizes[block_map.index(d)]
            axes_outer.append(len(shape))
            shape += [dense.shape[d] // b, b]
            axes_inner.append((block_map.index(d), len(shape) - 1))
        else:
            axes_outer.append(len(shape))
            shape.append(dense.shape[d])
    split = dense.reshape(shape)
    block_axes = [ax for _, ax in sorted(axes_inner)]
    canonical = split.transpose(axes_outer + block_axes)  # dims 0..n-1 blocked, then block dims n..n+k-1
    return canonical.transpose(traversal)


def encode(dense: np.ndarray, formats: list[str], traversal: list[int] | None = None,
           block_map: list[int] | None = None, block_sizes: list[int] | None = None,
           index_types: tuple[str, str] = ("i32", "i32")) -> Encoding:
    """Sparse encoding of ``dense``; ``formats`` per traversal level ('D' or 'S')."""
    block_map, block_sizes = block_map or [], block_sizes or []
    traversal = traversal if traversal is not None else list(range(dense.ndim + len(block_map)))
    e = expanded(dense, traversal, block_map, block_sizes)
    nodes: list[tuple[int, ...]] = [()]
    dims = []
    for level, fmt in enumerate(formats):
        size = e.shape[level]
        dm = fb.DimensionMetadataT()
        if fmt == D:
            dm.format, dm.denseSize = fb.DimensionType.DENSE, size
            nodes = [p + (i,) for p in nodes for i in range(size)]
        else:
            segments, indices, children = [0], [], []
            for p in nodes:
                for i in range(size):
                    if np.any(e[p + (i,)] != 0):
                        indices.append(i)
                        children.append(p + (i,))
                segments.append(len(indices))
            dm.format = fb.DimensionType.SPARSE_CSR
            for attr, data, kind in (("arraySegments", segments, index_types[0]), ("arrayIndices", indices, index_types[1])):
                code, cls, dt = _VEC[kind]
                vec = cls()
                vec.values = np.asarray(data, dtype=dt)
                setattr(dm, attr + "Type", code)
                setattr(dm, attr, vec)
            nodes = children
        dims.append(dm)
    sp = fb.SparsityParametersT()
    sp.traversalOrder = list(traversal)
    sp.blockMap = list(block_map) if block_map else None
    sp.dimMetadata = dims
    values = np.array([e[p] for p in nodes], dtype=dense.dtype)
    return Encoding(values, sp)


def densify_model(path: Path, dense: np.ndarray, enc: Encoding, ttype: int, *, dequantize_scale: float | None = None,
                  name: str = "w_sparse") -> Path:
    """A signature-less model: sparse constant → DENSIFY (→ DEQUANTIZE) → output."""
    k = modelkit.Kit()
    sg = k.subgraph("main")
    q = {} if dequantize_scale is None else {"scale": dequantize_scale, "zero_point": 3}
    w = k.tensor(sg, name, dense.shape, ttype, enc.values.tobytes(), **q)
    sg.tensors[w].sparsity = enc.sparsity
    dense_out = k.tensor(sg, "w_dense", dense.shape, ttype, **q)
    k.op(sg, modelkit.OP.DENSIFY, [w], [dense_out], fb.BuiltinOptions.DensifyOptions, fb.DensifyOptionsT())
    out = dense_out
    if dequantize_scale is not None:
        out = k.tensor(sg, "w_float", dense.shape, modelkit.T.FLOAT32)
        k.op(sg, modelkit.OP.DEQUANTIZE, [dense_out], [out])
    sg.outputs = [out]
    return k.save(path)


def run_interpreter(path: Path) -> np.ndarray:
    """The model's single output, computed by the LiteRT interpreter (no delegates)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"]).copy()


def sparse_array(rng: np.random.Generator, shape, dtype, density: float = 0.3) -> np.ndarray:
    """Random values with about ``1 - density`` of them zero, never all zero."""
    vals = rng.standard_normal(shape).astype(np.float32)
    if np.dtype(dtype).kind == "i":
        vals = rng.integers(-100, 100, size=shape)
    keep = rng.random(shape) < density
    keep.flat[0] = True
    out = np.where(keep, vals, 0).astype(dtype)
    out.flat[0] = out.flat[0] or 1
    return out
