"""Extract-and-dequantize throughput on a generated drafter at Gemma 4 E4B size.

    python bench/bench_extract.py [--keep DIR]

Builds (in a temporary directory) a .tflite laid out like the E4B MTP drafter:
~78M parameters, an INT8 per-channel [262144, 256] embedding / LM head, INT4
per-channel projection, attention and GeGLU matrices for 4 blocks (3 sliding
with head_dim 256, 1 full with head_dim 512), and F32 RMSNorm weights carrying
spurious quantization parameters. Then, each in a fresh process so peak RSS is
its own:

* ``dump``: mtpsurgeon's ``dump_safetensors(dtype='f32')`` (includes hashing the
  source for provenance and writing the file);
* ``numpy``: a bare numpy unpack-and-scale of the same bytes (no file written);
* ``numpy+write``: the same, writing the float32 values to a file.

Prints params/s, MB/s (stored bytes read per second), peak RSS, and the ratio
of the dump's time to the bare numpy times, from one run.
"""
from __future__ import annotations

import argparse
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

D, H, V, INTER = 256, 2560, 262144, 2048
HEADS = 4
HEAD_DIMS = [256, 256, 256, 512]


# -- model generation ----------------------------------------------------------------

def build(path: Path) -> int:
    """Write the drafter-sized model; return its parameter count."""
    from modelkit import T, Kit

    rng = np.random.default_rng(0)
    k = Kit()
    sg = k.subgraph("mtp_drafter")
    params = 0

    def int4(name, shape):
        nonlocal params
        n = shape[0] * shape[1]
        packed = rng.integers(0, 256, n // 2, dtype=np.uint8).tobytes()  # random nibbles, both signs
        k.tensor(sg, name, shape, T.INT4, packed, scale=rng.uniform(1e-3, 1e-2, shape[0]).astype(np.float32),
                 zero_point=np.zeros(shape[0], np.int64), qdim=0)
        params += n

    def norm(name, dim):
        nonlocal params
        k.tensor(sg, name, (dim,), T.FLOAT32, rng.standard_normal(dim).astype(np.float32).tobytes(),
                 scale=[0.0], zero_point=[0])
        params += dim

    emb = rng.integers(-127, 128, V * D, dtype=np.int8).tobytes()
    k.tensor(sg, "embed_tokens.weight", (V, D), T.INT8, emb, scale=rng.uniform(1e-3, 1e-2, V).astype(np.float32),
             zero_point=np.zeros(V, np.int64), qdim=0)
    params += V * D
    int4("pre_projection.weight", (D, 2 * H))
    int4("post_projection.weight", (H, D))
    norm("norm.weight", D)
    for n, hd in enumerate(HEAD_DIMS):
        p = f"layers.{n}."
        int4(p + "self_attn.q_proj.weight", (HEADS * hd, D))
        int4(p + "self_attn.o_proj.weight", (D, HEADS * hd))
        norm(p + "self_attn.q_norm.weight", hd)
        int4(p + "mlp.gate_proj.weight", (INTER, D))
        int4(p + "mlp.up_proj.weight", (INTER, D))
        int4(p + "mlp.down_proj.weight", (D, INTER))
        for ln in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                   "post_feedforward_layernorm"):
            norm(p + ln + ".weight", D)
    k.save(path)
    return params


# -- phases (each run in its own process) ----------------------------------------------

def phase_dump(model_path: Path, out: Path) -> dict:
    from mtpsurgeon import open_file
    from mtpsurgeon.extract import dump_safetensors

    t0 = time.perf_counter()
    model = open_file(model_path)
    rep = dump_safetensors(model, model.tensors(), out, dtype="f32", force=True)
    return {"seconds": time.perf_counter() - t0, "bytes_in": rep.bytes_in, "params": rep.parameters,
            "bytes_out": rep.bytes_out}


def _bare_values(model_path: Path):
    """Yield float32 arrays: plain numpy on the same bytes, no checks, no chunking."""
    from mtpsurgeon import open_file  # only to locate the buffers

    model = open_file(model_path)
    for t in model.tensors():
        raw = np.frombuffer(model.tensor_bytes(t), np.uint8)
        q = t.quantization
        if t.dtype.name == "INT4":
            v = np.empty(raw.size * 2, np.int8)
            v[0::2] = (raw & 0x0F).view(np.int8)
            v[1::2] = (raw >> 4).view(np.int8)
            v = ((v ^ 8) - 8).reshape(t.shape)
            yield (v * q.scale[:, None]).astype(np.float32), raw.size
        elif t.dtype.name == "INT8":
            yield raw.view(np.int8).reshape(t.shape) * q.scale[:, None], raw.size
        else:
            yield raw.view(np.float32), raw.size


def phase_numpy(model_path: Path, out: Path | None) -> dict:
    t0 = time.perf_counter()
    nbytes = params = 0
    fh = open(out, "wb") if out else None
    for vals, n in _bare_values(model_path):
        nbytes += n
        params += vals.size
        if fh:
            vals.tofile(fh)
    if fh:
        fh.close()
    return {"seconds": time.perf_counter() - t0, "bytes_in": nbytes, "params": params}


def _peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM: reset at exec, unlike ru_maxrss which children inherit)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_phase(argv: list[str]) -> None:
    name, model_path, out = argv[0], Path(argv[1]), (Path(argv[2]) if len(argv) > 2 else None)
    result = phase_dump(model_path, out) if name == "dump" else phase_numpy(model_path, out)
    result["peak_rss_mb"] = _peak_rss_mb()
    print(json.dumps(result))


def _child(*args: str) -> dict:
    res = subprocess.run([sys.executable, __file__, "--phase", *args], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="build in this directory and keep the files")
    ap.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        return run_phase(args.phase)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        model = work / "drafter-e4b-size.tflite"
        t0 = time.perf_counter()
        params = build(model)
        print(f"model: {params / 1e6:.1f}M parameters, {model.stat().st_size / 2**20:.1f} MiB "
              f"(built in {time.perf_counter() - t0:.1f}s)")
        rows = [("mtpsurgeon dump f32", _child("dump", str(model), str(work / "drafter.safetensors"))),
                ("numpy unpack+scale", _child("numpy", str(model))),
                ("numpy unpack+scale+write", _child("numpy", str(model), str(work / "bare.f32")))]
        base = rows[0][1]["seconds"]
        print(f"{'':26} {'seconds':>8} {'Mparam/s':>9} {'MB/s in':>8} {'peak RSS MB':>12} {'dump/this':>10}")
        for label, r in rows:
            s = r["seconds"]
            print(f"{label:26} {s:8.2f} {r['params'] / s / 1e6:9.1f} {r['bytes_in'] / s / 1e6:8.1f} "
                  f"{r['peak_rss_mb']:12.0f} {base / s:10.2f}")
        print(f"output {rows[0][1]['bytes_out'] / 2**20:.1f} MiB; largest tensor as f32 "
              f"{V * D * 4 / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
