"""`mtpsurgeon tune` on a large model: time and peak memory of the rewrite vs model size.

Generates, in a temporary folder, a .tflite of about --mib MiB with the shape of
an LLM base: signatures `decode` (1 token) and `verify` (4 tokens) over the same
weights (pairs of 8 MiB FULLY_CONNECTED matrices, as a real export shares them),
with `input_pos` and `mask` inputs. Then, each in a fresh subprocess:

  (i)  symbolic shape inference + rewrite of `verify` + streamed write (no gate),
  (ii) the whole `tune_draft_steps` (adds the interpreter gate, which runs the
       model and so pages its weights in),

and prints wall time, peak RSS and peak anonymous memory (sampled) for both:
RSS also counts the page-cache pages of the memory-mapped input that the
streamed write reads, which the kernel can drop; anonymous memory is what the
process really holds. The folder is deleted at the end.

    python bench/bench_tune.py [--mib 1024] [--dir /tmp]
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
H, F = 256, 8192  # model width, FC width: one 8 MiB float matrix each way


def build(path: Path, mib: int) -> int:
    from mtpsurgeon.formats.tflite.schema import fb
    from mtpsurgeon.formats.tflite.writer import write_tflite
    from mtpsurgeon.surgery.ir import Buffer, Model

    rng = np.random.default_rng(0)
    up = (rng.standard_normal((F, H)) * 0.01).astype(np.float32)
    down = (rng.standard_normal((H, F)) * 0.01).astype(np.float32)
    pairs = max(1, mib // 16)
    weights = [(Buffer(up), Buffer(down)) for _ in range(pairs)]  # distinct buffers over one block each way
    m = Model()
    for key, tokens in (("decode", 1), ("verify", 4)):
        g = m.add_graph(key)
        x = g.add_tensor("embeddings", [1, tokens, H])
        pos = g.add_tensor("input_pos", [tokens], "INT32")
        mask = g.add_tensor("mask", [1, 1, tokens, 64], "BOOL")
        h = x
        for i, (bu, bd) in enumerate(weights):
            wu = g.add_tensor(f"layer{i}.up", [F, H]); wu.buffer = bu
            wd = g.add_tensor(f"layer{i}.down", [H, F]); wd.buffer = bd
            mid = g.add_tensor(f"{key}.mid{i}", [1, tokens, F])
            out = g.add_tensor(f"{key}.h{i}", [1, tokens, H])
            o = fb.FullyConnectedOptionsT(); o.keepNumDims = True
            g.add_node("FULLY_CONNECTED", [h, wu, None], [mid], o)
            g.add_node("FULLY_CONNECTED", [mid, wd, None], [out], o)
            h = out
        flat = g.add_tensor(f"{key}.logits", [1, tokens * H])
        shape = g.add_constant(f"{key}.shape", np.asarray([1, tokens * H], np.int32))
        g.add_node("RESHAPE", [h, shape], [flat], fb.ReshapeOptionsT())
        logits = g.add_tensor(f"{key}.out", [1, tokens, H])
        g.add_node("RESHAPE", [flat, g.add_constant(f"{key}.shape2", np.asarray([1, tokens, H], np.int32))], [logits],
                   fb.ReshapeOptionsT())
        g.inputs, g.outputs = [x, pos, mask], [logits]
        m.add_signature(key, g, {"embeddings": x, "input_pos": pos, "mask": mask}, {"logits": logits})
    write_tflite(m, path, force_offset_buffers=True)
    return path.stat().st_size


PROBE = """
if sys.argv[1] == "rewrite":
    from mtpsurgeon.formats.open import open_file
    from mtpsurgeon.surgery.ir import Model
    from mtpsurgeon.surgery.respecialize_verify import respecialize, write_base
    src = open_file(sys.argv[2])
    ir = Model.from_tflite(src)
    change = respecialize(ir, 2)
    write_base(ir, src, Path(sys.argv[3]))
    report(constants=len(change.constants), tensors=change.tensors)
else:
    from mtpsurgeon.surgery.respecialize_verify import tune_draft_steps
    r = tune_draft_steps(sys.argv[2], 1, sys.argv[3], force=True)
    report(gate=r.equivalence.describe())
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        src, out = Path(d) / "base.tflite", Path(d) / "out.tflite"
        t0 = time.perf_counter()
        size = build(src, args.mib)
        print(f"generated {size / 2**20:.0f} MiB model in {time.perf_counter() - t0:.1f} s")
        for phase in ("rewrite", "tune"):
            p = subprocess.run([sys.executable, "-c", memprobe.script(PROBE, str(REPO)), phase, str(src), str(out)],
                               capture_output=True, text=True)
            if p.returncode:
                sys.exit(p.stderr[-2000:])
            r = json.loads(p.stdout.strip().splitlines()[-1])
            label = {"rewrite": "infer + rewrite + streamed write", "tune": "tune_draft_steps (with gate)"}[phase]
            rest = ", ".join(f"{k} {v}" for k, v in r.items() if k not in ("wall", "peak_rss_mib", "peak_anon_mib"))
            print(f"{label:34s} {r['wall']:6.2f} s  peak RSS {r['peak_rss_mib']:6.0f} MiB, of it anonymous "
                  f"{r['peak_anon_mib']:5.0f} MiB  ({rest})")


if __name__ == "__main__":
    main()
