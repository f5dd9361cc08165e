"""build-drafter + graft at Gemma 4 E4B size, as ratios to `cp` of the container.

    python bench/bench_build_drafter.py [--gb 3] [--quant int4c] [--keep DIR]

Generates (in a temporary directory):

* an E4B-sized ``gemma4_assistant`` checkpoint: D 256, H 2560, vocab 262144,
  intermediate 2048, 4 blocks (4 heads; head_dim 256 sliding, 512 full), random
  BF16 weights (~78M parameters, ~156 MB);
* a base model with E4B's KV interface (``kv_cache_{k,v}_22`` INT8 [1,2,C,256],
  ``_23`` INT8 [1,2,C,512], C 4096, verify of 4) and a ``.litertlm`` holding it
  plus a filler section of ``--gb`` GB (written by the official litert-lm-builder).

Then, each in a fresh process so its peak RSS is its own: ``cp`` of the container
(twice; the second, warm-cache run is the yardstick) and ``mtpsurgeon build-drafter
CKPT --base CONTAINER -o OUT.litertlm --quant Q`` (read, emit, quantize, link
checks, interpreter verify, graft). Prints seconds and peak RSS of each and the
ratios.
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

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

E4B = dict(D=256, H=2560, V=262144, I=2048, heads=4, kv_heads=2, hd=256, ghd=512, layers=4)
C = 4096


def make_inputs(work: Path, gb: float) -> tuple[Path, Path, int]:
    import drafterkit as K
    from litert_lm_builder import litertlm_builder as B

    cfg = K.assistant_config(D=E4B["D"], H=E4B["H"], V=E4B["V"], I=E4B["I"], heads=E4B["heads"],
                             kv_heads=E4B["kv_heads"], hd=E4B["hd"], ghd=E4B["ghd"], layers=E4B["layers"])
    w = K.assistant_weights(cfg, scalars=True)
    params = sum(v.size for v in w.values())
    ck = K.write_checkpoint(work / "assistant", cfg, w, "BF16")
    del w
    base = K.synthetic_base(work / "base.tflite", H=E4B["H"], V=E4B["V"], C=C,
                            kv={22: (2, 256, "INT8"), 23: (2, 512, "INT8")}, small_head=True)
    filler = work / "filler.bin"
    chunk = np.random.default_rng(0).integers(0, 256, 1 << 24, dtype=np.uint8).tobytes()
    with open(filler, "wb") as f:
        for _ in range(int(gb * 1024 ** 3) // len(chunk)):
            f.write(chunk)
    b = B.LitertLmFileBuilder()
    b.add_system_metadata(B.Metadata(key="Authors", value="bench", dtype=B.DType.STRING))
    b.add_tflite_model(str(base), B.TfLiteModelType.PREFILL_DECODE)
    b.add_generic_binary_data(str(filler))
    container = work / "base.litertlm"
    with open(container, "wb") as f:
        b.build(f)
    filler.unlink()
    return ck, container, params


def _status(pid: int) -> dict[str, int]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, val = line.partition(":")
            if key in ("VmHWM", "RssAnon", "RssFile"):
                out[key] = int(val.split()[0])  # kB
    except (OSError, ValueError):
        pass
    return out


def timed(cmd: list[str]) -> dict:
    """Run ``cmd``; seconds, peak RSS (VmHWM) and sampled peaks of anonymous / file-backed RSS (MB).

    File-backed RSS is pages of mapped files (the container, read through mmap):
    page cache the kernel can drop, not memory the process allocated.
    """
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = {"VmHWM": 0, "RssAnon": 0, "RssFile": 0}
    while p.poll() is None:
        for k, v in _status(p.pid).items():
            peak[k] = max(peak[k], v)
        time.sleep(0.02)
    secs = time.perf_counter() - t0
    if p.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed: {p.stderr.read().strip()}")
    return {"seconds": secs, "peak_rss_mb": peak["VmHWM"] / 1024, "peak_anon_mb": peak["RssAnon"] / 1024,
            "peak_file_mb": peak["RssFile"] / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=3.0, help="filler section size (GB)")
    ap.add_argument("--quant", default="int4c", choices=["f32", "int8", "int4c", "int4b32"])
    ap.add_argument("--keep", type=Path, help="work in DIR and keep the files")
    ap.add_argument("--make-inputs", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.make_inputs:
        print(make_inputs(a.make_inputs, a.gb)[2])
        return
    tmp = None if a.keep else tempfile.TemporaryDirectory(prefix="bench-build-drafter-")
    work = a.keep or Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # generate in a child, so this process (the parent of every measured command) stays small
    gen = subprocess.run([sys.executable, __file__, "--make-inputs", str(work), "--gb", str(a.gb)],
                         capture_output=True, text=True)
    if gen.returncode:
        raise SystemExit(gen.stderr)
    ck, container, params = work / "assistant", work / "base.litertlm", int(gen.stdout.split()[-1])
    size = container.stat().st_size
    print(f"inputs: {params / 1e6:.1f}M-parameter assistant (BF16), container {size / 1e9:.2f} GB "
          f"(generated in {time.perf_counter() - t0:.0f} s)")
    timed(["cp", str(container), str(work / "warm.litertlm")])
    cp = timed(["cp", str(container), str(work / "copy.litertlm")])
    (work / "warm.litertlm").unlink()
    (work / "copy.litertlm").unlink()
    out = work / "out.litertlm"
    build = timed([sys.executable, "-m", "mtpsurgeon", "build-drafter", str(ck), "--base", str(container),
                   "-o", str(out), "--quant", a.quant, "--json"])
    grow = out.stat().st_size - size
    res = {"params": params, "container_bytes": size, "quant": a.quant, "cp": cp, "build_drafter": build,
           "drafter_section_bytes": grow,
           "time_ratio_to_cp": build["seconds"] / cp["seconds"],
           "rss_ratio_to_cp": build["peak_rss_mb"] / max(cp["peak_rss_mb"], 1e-9)}
    for label, r in (("cp", cp), ("build-drafter", build)):
        print(f"{label + ':':15s}{r['seconds']:7.2f} s   peak RSS {r['peak_rss_mb']:8.1f} MB "
              f"(sampled: anonymous {r['peak_anon_mb']:.0f} MB, mapped file {r['peak_file_mb']:.0f} MB)")
    print(f"drafter section +{grow / 1e6:.1f} MB (--quant {a.quant})")
    print(f"ratios to cp:  time x{res['time_ratio_to_cp']:.2f}   peak RSS x{res['rss_ratio_to_cp']:.1f}")
    print(json.dumps(res))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
