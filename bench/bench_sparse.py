"""Densifying sparse constants (TFLite sparsity): time and memory on large tensors.

    python bench/bench_sparse.py

Builds, in a temporary directory, a .tflite with one FLOAT16 [4096, 4096]
constant stored sparse at 10 % density in two layouts, each behind a DENSIFY
operator: CSR (rows DENSE, columns SPARSE_CSR with uint16 indices) and 1x4
block-sparse (block_map [1], blocks of 4 along the columns). Then, each in a
fresh process so peak RSS is its own:

* ``densify``: ``TFLiteModel.tensor_array`` on both tensors (the library call);
* ``dump``: ``dump_safetensors(dtype='f32')`` of both (what ``extract --all``
  does: check, densify, convert, write 128 MiB of float32);
* ``interpreter``: the LiteRT interpreter allocating and running both DENSIFY
  operators.

Prints seconds (imports and opening not counted), Melem/s of dense output and
peak RSS (whole process, imports included) from one run.
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

N, DENSITY = 4096, 0.10


def _vector(cls, values):
    v = cls()
    v.values = values
    return v


def build(path: Path) -> None:
    from ai_edge_litert import schema_py_generated as fb

    import modelkit

    rng = np.random.default_rng(0)
    k = modelkit.Kit()
    sg = k.subgraph("main")
    outs = []
    # CSR: keep ~10 % of the entries of every row
    keep = rng.random((N, N)) < DENSITY
    dense = np.where(keep, rng.standard_normal((N, N)), 0).astype(np.float16)
    nz = dense != 0
    csr = fb.SparsityParametersT()
    csr.traversalOrder = [0, 1]
    d0, d1 = fb.DimensionMetadataT(), fb.DimensionMetadataT()
    d0.format, d0.denseSize = fb.DimensionType.DENSE, N
    d1.format = fb.DimensionType.SPARSE_CSR
    d1.arraySegmentsType, d1.arraySegments = fb.SparseIndexVector.Int32Vector, _vector(
        fb.Int32VectorT, np.concatenate(([0], np.cumsum(nz.sum(1)))).astype(np.int32))
    d1.arrayIndicesType, d1.arrayIndices = fb.SparseIndexVector.Uint16Vector, _vector(
        fb.Uint16VectorT, np.nonzero(nz)[1].astype(np.uint16))
    csr.dimMetadata = [d0, d1]
    # 1x4 blocks along the columns: keep ~10 % of the blocks of every row
    blocks = rng.random((N, N // 4)) < DENSITY
    bdense = (np.repeat(blocks, 4, axis=1) * rng.standard_normal((N, N))).astype(np.float16)
    blk = fb.SparsityParametersT()
    blk.traversalOrder, blk.blockMap = [0, 1, 2], [1]
    b0, b1, b2 = fb.DimensionMetadataT(), fb.DimensionMetadataT(), fb.DimensionMetadataT()
    b0.format, b0.denseSize = fb.DimensionType.DENSE, N
    b1.format = fb.DimensionType.SPARSE_CSR
    b1.arraySegmentsType, b1.arraySegments = fb.SparseIndexVector.Int32Vector, _vector(
        fb.Int32VectorT, np.concatenate(([0], np.cumsum(blocks.sum(1)))).astype(np.int32))
    b1.arrayIndicesType, b1.arrayIndices = fb.SparseIndexVector.Uint16Vector, _vector(
        fb.Uint16VectorT, np.nonzero(blocks)[1].astype(np.uint16))
    b2.format, b2.denseSize = fb.DimensionType.DENSE, 4
    blk.dimMetadata = [b0, b1, b2]
    bvals = bdense.reshape(N, N // 4, 4)[blocks]
    for name, values, sp in (("csr", dense[nz], csr), ("block1x4", bvals.reshape(-1), blk)):
        w = k.tensor(sg, name, [N, N], modelkit.T.FLOAT16, values.tobytes())
        sg.tensors[w].sparsity = sp
        o = k.tensor(sg, name + "_dense", [N, N], modelkit.T.FLOAT16)
        k.op(sg, modelkit.OP.DENSIFY, [w], [o], fb.BuiltinOptions.DensifyOptions, fb.DensifyOptionsT())
        outs.append(o)
    sg.outputs = outs
    k.save(path)


def child(mode: str, path: str) -> None:
    """One measurement in this process: imports and opening the file are not timed."""
    if mode == "build":
        build(Path(path))
        return
    if mode in ("densify", "dump"):
        from mtpsurgeon import open_file
        from mtpsurgeon.extract.dump import dump_safetensors

        m = open_file(path)
        sparse = [t for t in m.subgraphs[0].tensors if t.sparsity is not None]
        t0 = time.perf_counter()
        if mode == "densify":
            for t in sparse:
                m.tensor_array(t)
        else:
            dump_safetensors(m, sparse, Path(path).with_suffix(".f32.safetensors"), dtype="f32", force=True)
    else:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        it = Interpreter(model_path=path, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        t0 = time.perf_counter()
        it.allocate_tensors()
        it.invoke()
    dt = time.perf_counter() - t0
    print(json.dumps({"seconds": dt, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main() -> None:
    if len(sys.argv) == 3:
        child(sys.argv[1], sys.argv[2])
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sparse.tflite"
        # built in a child too: a child's peak RSS would otherwise start at this process's
        subprocess.run([sys.executable, __file__, "build", str(path)], check=True)
        size = path.stat().st_size
        dense_elems = 2 * N * N
        print(f"model: 2 x FLOAT16[{N}, {N}] at {DENSITY:.0%} density, {size / 2**20:.1f} MiB "
              f"(dense: {2 * dense_elems / 2**20:.0f} MiB)")
        print(f"{'':14}{'seconds':>9}{'Melem/s':>10}{'peak RSS':>11}")
        for mode in ("densify", "dump", "interpreter"):
            out = subprocess.run([sys.executable, __file__, mode, str(path)], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{mode:14}{r['seconds']:9.2f}{dense_elems / r['seconds'] / 1e6:10.0f}{r['peak_rss_mb']:8.0f} MB")


if __name__ == "__main__":
    main()
