"""Inspecting a > 2 GiB model: mtpsurgeon's zero-copy reader vs ai_edge_litert's flatbuffer_utils.

Generates, in a temporary folder, a .tflite over 2 GiB (the flatbuffer limit),
written by mtpsurgeon's writer, which must switch to offset buffers on its own:
many 8 MiB FLOAT32 / INT8 constants (one random 8 MiB block streamed over and
over, so generation needs no more memory than that) plus one FULLY_CONNECTED
so the model is runnable. Then, each in a fresh subprocess, measures wall
time and peak RSS of

  (i)   ``mtpsurgeon.open_file`` + iterating over every tensor record,
  (ii)  ``ai_edge_litert.tools.flatbuffer_utils.read_model`` (object API; it
        inlines offset buffers, i.e. copies the weights),
  (iii) the LiteRT interpreter loading the file and running it (checks that
        the > 2 GiB offset-buffer file is valid for the runtime; y = 1.024 + 0.5 * ops),

and prints them with the ratios. The file is deleted at the end.

    python bench/bench_inspect.py [--gib 2.25] [--dir /tmp]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BLOCK = 8 << 20  # bytes per big constant

_PRELUDE = """
import json, resource, sys, time
def rss_mib():  # peak resident set size so far
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def vm_rss_mib():  # current resident set size (Linux)
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")
"""

PROBES = {
    "mtpsurgeon open_file + all tensor records": _PRELUDE + """
from mtpsurgeon import open_file
base = rss_mib(); before = vm_rss_mib()
t0 = time.perf_counter()
m = open_file(sys.argv[1])
n = nbytes = 0
for t in m.tensors():
    n += 1
    if t.buffer:
        nbytes += m.buffers[t.buffer].size
wall = time.perf_counter() - t0
print(json.dumps({"wall": wall, "rss": rss_mib(), "base": base, "before": before, "now": vm_rss_mib(), "tensors": n, "bytes": nbytes}))
""",
    "ai_edge_litert flatbuffer_utils.read_model": _PRELUDE + """
from ai_edge_litert.tools import flatbuffer_utils
base = rss_mib(); before = vm_rss_mib()
t0 = time.perf_counter()
m = flatbuffer_utils.read_model(sys.argv[1])
n = sum(len(sg.tensors) for sg in m.subgraphs)
nbytes = sum(len(b.data) for b in m.buffers if b.data is not None)
wall = time.perf_counter() - t0
print(json.dumps({"wall": wall, "rss": rss_mib(), "base": base, "before": before, "now": vm_rss_mib(), "tensors": n, "bytes": nbytes}))
""",
    "LiteRT Interpreter load + allocate + invoke": _PRELUDE + """
import numpy as np
from ai_edge_litert.interpreter import Interpreter
base = rss_mib(); before = vm_rss_mib()
t0 = time.perf_counter()
it = Interpreter(model_path=sys.argv[1])
it.allocate_tensors()
inp = it.get_input_details()[0]
it.set_tensor(inp["index"], np.ones(inp["shape"], np.float32))
it.invoke()
y = it.get_tensor(it.get_output_details()[0]["index"])
wall = time.perf_counter() - t0
print(json.dumps({"wall": wall, "rss": rss_mib(), "base": base, "before": before, "now": vm_rss_mib(), "tensors": len(it.get_tensor_details()),
                  "bytes": 0, "y0": float(y.reshape(-1)[0])}))
""",
}


def generate(path: Path, total: int, ops: int) -> tuple[int, bool, float]:
    """Write a model of about ``total`` weight bytes with mtpsurgeon's writer.

    Besides the big constants (INT8 ones per-channel quantized, as in real
    LLM exports), a chain of ``ops`` ADD operators gives the flatbuffer a
    realistic amount of metadata. Returns (constants, offset mode, seconds).
    """
    from mtpsurgeon.formats.tflite.schema import fb
    from mtpsurgeon.formats.tflite.writer import write_tflite
    from mtpsurgeon.surgery.ir import Model

    rng = np.random.default_rng(0)
    block = rng.integers(-127, 128, BLOCK, dtype=np.int8)  # reused for every constant
    t0 = time.perf_counter()
    m = Model()
    g = m.add_graph("main")
    x = g.add_tensor("x", [1, 1024], "FLOAT32")
    y = g.add_tensor("y", [1, 2048], "FLOAT32")
    n = max(1, total // BLOCK)
    fc = g.add_constant("layer0.w_f32", np.full((2048, 1024), 0.001, np.float32))  # y = 1.024 everywhere
    g.add_node("FULLY_CONNECTED", [x, fc, None], [y], fb.FullyConnectedOptionsT())
    for i in range(1, n):  # unused weights, alternately FLOAT32 and INT8 (raw bytes: no copies)
        if i % 2 == 0:
            g.add_constant(f"layer{i}.w_f32", memoryview(block), "FLOAT32", shape=[2048, 1024])
        else:
            q = fb.QuantizationParametersT()
            q.scale = rng.uniform(1e-3, 1e-2, 4096).astype(np.float32)
            q.zeroPoint = np.zeros(4096, np.int64)
            g.add_constant(f"layer{i}.w_i8", memoryview(block), "INT8", shape=[4096, 2048], quantization=q)
    bias = g.add_constant("chain.bias", np.full((1, 2048), 0.5, np.float32))
    h = y
    for i in range(ops):
        nxt = g.add_tensor(f"chain.{i}", [1, 2048], "FLOAT32")
        g.add_node("ADD", [h, bias], [nxt], fb.AddOptionsT())
        h = nxt
    g.inputs, g.outputs = [x], [h]
    m.add_signature("serving_default", g)
    result = write_tflite(m, path)
    assert result.offset_buffers or result.size < 2**31, "a > 2 GiB model must be written with offset buffers"
    return n, result.offset_buffers, time.perf_counter() - t0


def probe(name: str, path: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    proc = subprocess.run([sys.executable, "-c", PROBES[name], str(path)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gib", type=float, default=2.25, help="weight bytes to generate, in GiB (default 2.25)")
    ap.add_argument("--dir", default=None, help="scratch folder (default: the system temp folder)")
    ap.add_argument("--ops", type=int, default=4000, help="ADD operators in the chain (default 4000)")
    ap.add_argument("--no-interpreter", action="store_true", help="skip probe (iii)")
    args = ap.parse_args()
    total = int(args.gib * (1 << 30))
    scratch = Path(tempfile.mkdtemp(prefix="mtpsurgeon-bench-", dir=args.dir))
    free = shutil.disk_usage(scratch).free
    if free < total * 1.2 + (256 << 20):
        shutil.rmtree(scratch)
        sys.exit(f"not enough disk in {scratch.parent}: {free / 2**30:.1f} GiB free, need {total * 1.2 / 2**30:.1f} GiB")
    path = scratch / "big.tflite"
    try:
        n, off, gen_s = generate(path, total, args.ops)
        size = path.stat().st_size
        print(f"generated {path.name}: {size / 2**30:.2f} GiB, {n} big constants, {args.ops} ops, {'offset' if off else 'inline'} buffers, in {gen_s:.1f} s")
        names = list(PROBES)[: 2 if args.no_interpreter else 3]
        results = {name: probe(name, path) for name in names}
        print(f"\n{'':48s} {'wall s':>9s} {'peak RSS MiB':>13s} {'RSS before':>11s} {'RSS after':>10s} {'tensors':>8s}")
        for name, r in results.items():
            if "error" in r:
                print(f"{name:48s} FAILED: {r['error']}")
                continue
            print(f"{name:48s} {r['wall']:9.3f} {r['rss']:13.0f} {r['before']:11.0f} {r['now']:10.0f} {r['tensors']:8d}")
        ours, theirs = results[names[0]], results[names[1]]
        if "error" not in ours and "error" not in theirs:
            grow_o, grow_t = ours["now"] - ours["before"], theirs["now"] - theirs["before"]
            print(f"\nflatbuffer_utils / mtpsurgeon: wall x{theirs['wall'] / max(ours['wall'], 1e-9):.2f}, "
                  f"peak RSS x{theirs['rss'] / ours['rss']:.2f} "
                  f"(RSS growth while reading: {grow_t:.0f} MiB vs {grow_o:.0f} MiB)")
            if max(grow_o, grow_t) < size / 2**20 / 10:
                print("neither reader copies the weights (peak RSS is set by imports); the installed "
                      "flatbuffer_utils maps the file and slices offset buffers as memoryviews")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
