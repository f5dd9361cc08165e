"""`mtpsurgeon enable-mtp` on a large base: time and peak memory vs base size.

Generates, in a temporary folder, a .tflite of about --mib MiB shaped like a base
exported without MTP: one signature `decode` (1 token: `embeddings`, `input_pos`,
`mask`, one KV cache in and out) over pairs of 8 MiB FULLY_CONNECTED matrices,
a final RMS-style MUL and a constant [V, H] LM head producing `logits` (no
`activations`, no `verify`). Then, each in a fresh subprocess, for each size:

  (i)  add `activations` + the batched `verify` in the IR and stream the base out (no gate),
  (ii) the whole `enable_mtp` (adds the interpreter gate: verify vs 4 decode calls,
       reference kernels above 256 MiB, which hold no copy of the weights),

and prints wall time, peak RSS and peak anonymous memory (sampled). RSS also
counts page-cache pages of the memory-mapped input the streamed write reads
(the kernel can drop them); anonymous memory is what the process holds.

    python bench/bench_enable_mtp.py [--mib 256,1024] [--dir /tmp]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import memprobe  # bench/memprobe.py, beside this script

REPO = Path(__file__).resolve().parents[1]
H, F, V, C = 256, 8192, 4096, 64


def build(path: Path, mib: int) -> int:
    from mtpsurgeon.formats.tflite.schema import fb
    from mtpsurgeon.formats.tflite.writer import write_tflite
    from mtpsurgeon.surgery.ir import Buffer, Model

    rng = np.random.default_rng(0)
    up = (rng.standard_normal((F, H)) * 0.01).astype(np.float32)
    down = (rng.standard_normal((H, F)) * 0.01).astype(np.float32)
    m = Model()
    g = m.add_graph("decode")
    x = g.add_tensor("embeddings", [1, 1, H])
    pos = g.add_tensor("input_pos", [1], "INT32")
    mask = g.add_tensor("mask", [1, 1, 1, C])
    kv = g.add_tensor("kv_cache_k_0", [1, 1, C, H])
    o = fb.FullyConnectedOptionsT()
    o.keepNumDims = True
    h = x
    for i in range(max(1, mib // 16)):
        wu = g.add_tensor(f"layer{i}.up", [F, H]); wu.buffer = Buffer(up)
        wd = g.add_tensor(f"layer{i}.down", [H, F]); wd.buffer = Buffer(down)
        mid, out = g.add_tensor(f"mid{i}", [1, 1, F]), g.add_tensor(f"h{i}", [1, 1, H])
        g.add_node("FULLY_CONNECTED", [h, wu, None], [mid], o)
        g.add_node("FULLY_CONNECTED", [mid, wd, None], [out], o)
        h = out
    normed = g.add_tensor("final_norm", [1, 1, H])
    g.add_node("MUL", [h, g.add_constant("norm.weight", np.ones((H,), np.float32))], [normed], fb.MulOptionsT())
    logits = g.add_tensor("logits", [1, 1, V])
    head = g.add_constant("lm_head", (rng.standard_normal((V, H)) * 0.01).astype(np.float32))
    g.add_node("FULLY_CONNECTED", [normed, head, None], [logits], o)
    kv_out = g.add_tensor("kv_cache_k_0_out", [1, 1, C, H])
    row = g.add_tensor("row", [1, 1, 1, H])
    g.add_node("RESHAPE", [normed, g.add_constant("row_shape", np.asarray([1, 1, 1, H], np.int32))], [row],
               fb.ReshapeOptionsT())
    start = g.add_tensor("start", [4], "INT32")
    g.add_node("PACK", [g.add_constant("zero", np.asarray(0, np.int32))] * 2 + [g.add_tensor("p", [], "INT32"),
                        g.add_constant("zero2", np.asarray(0, np.int32))], [start], _pack())
    p = g.tensors[-2]
    g.nodes.insert(len(g.nodes) - 1, _scalar(g, pos, p))
    g.add_node("DYNAMIC_UPDATE_SLICE", [kv, row, start], [kv_out])
    g.inputs, g.outputs = [x, pos, mask, kv], [logits, kv_out]
    m.add_signature("decode", g, {"embeddings": x, "input_pos": pos, "mask": mask, "kv_cache_k_0": kv},
                    {"logits": logits, "kv_cache_k_0": kv_out})
    write_tflite(m, path, force_offset_buffers=True)
    return path.stat().st_size


def _pack():
    from mtpsurgeon.formats.tflite.schema import fb

    o = fb.PackOptionsT()
    o.valuesCount, o.axis = 4, 0
    return o


def _scalar(g, pos, p):
    """input_pos [1] -> scalar p (RESHAPE to [])."""
    from mtpsurgeon.formats.tflite.schema import fb
    from mtpsurgeon.surgery.ir import Node, OpCode

    shape = g.add_constant("scalar_shape", np.zeros((0,), np.int32))
    return Node(OpCode.make("RESHAPE"), [pos, shape], [p], fb.ReshapeOptionsT(), 17)


PROBE = """
if sys.argv[1] == "rewrite":
    from mtpsurgeon.formats.open import open_file
    from mtpsurgeon.surgery.ir import Model
    from mtpsurgeon.surgery.add_verify import VerifyPlan, add_activations
    from mtpsurgeon.surgery.add_batched_verify import add_batched_verify
    from mtpsurgeon.surgery.respecialize_verify import write_base
    src = open_file(sys.argv[2])
    ir = Model.from_tflite(src)
    plan = VerifyPlan(4)
    add_activations(ir, plan); add_batched_verify(ir, 3, plan)
    write_base(ir, src, Path(sys.argv[3]))
    extra = {"activations": plan.activations}
else:
    from mtpsurgeon.surgery.enable_mtp import enable_mtp
    r = enable_mtp(sys.argv[2], sys.argv[3], force=True)
    extra = {"gate": r.equivalence.describe(), "batched": r.plan.batched}
report(out_mib=Path(sys.argv[3]).stat().st_size / 2**20, **extra)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mib", default="256,1024", help="base sizes in MiB (comma-separated)")
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    for mib in (int(x) for x in args.mib.split(",")):
        with tempfile.TemporaryDirectory(dir=args.dir) as d:
            base = Path(d) / "base.tflite"
            t = time.perf_counter()
            size = build(base, mib)
            print(f"base: {size / 2**20:.0f} MiB (generated in {time.perf_counter() - t:.1f} s)", flush=True)
            for mode in ("rewrite", "enable"):
                out = Path(d) / f"{mode}.tflite"
                p = subprocess.run([sys.executable, "-c", memprobe.script(PROBE, str(REPO)), mode, str(base), str(out)],
                                   capture_output=True, text=True)
                if p.returncode != 0:
                    print(f"  {mode}: FAILED\n{p.stderr[-2000:]}")
                    continue
                r = json.loads(p.stdout.strip().splitlines()[-1])
                print(f"  {mode:8s} wall {r['wall']:6.1f} s   peak anon {r['peak_anon_mib']:5d} MiB   "
                      f"peak RSS {r['peak_rss_mib']:7.0f} MiB   output {r['out_mib']:.0f} MiB"
                      + (f"   {r['gate']}" if "gate" in r else ""), flush=True)
                out.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
