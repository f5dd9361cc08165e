"""What one `verify` call costs in the LiteRT interpreter, for a base exported without MTP after `enable-mtp`:
the batched construction (one pass over G+1 tokens) vs the unbatched one (G+1 IF-calls of decode's graph),
next to one `decode` call and, where it exists, the with-assistant export's own verify (the ground truth).

Bases: both fixture families' no-MTP containers, and, when it exists, the bench model
(~/.cache/mtpsurgeon-bench/bench.litertlm, real proportions: hidden 1536, 10 layers) with its `verify`
signature and decode's `activations` output removed, i.e. the base an export without --assistant_model
writes (the with-assistant export's decode equals it plus that output). Interpreter: ai_edge_litert,
XNNPACK (the LiteRT-LM CPU path), one thread; median of --calls calls after 3 warm-up calls.

    python bench/bench_batched_verify.py [--calls 30] [--no-bench-model] [--json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BENCH_MODEL = Path.home() / ".cache/mtpsurgeon-bench/bench.litertlm"
PREFILL_DECODE = "tf_lite_prefill_decode"


def strip_mtp(src_path: Path, out: Path) -> None:
    """``src_path`` without `verify` (and the graphs only it calls) and without decode's `activations`."""
    from mtpsurgeon.formats.open import open_file
    from mtpsurgeon.surgery.ir import Model
    from mtpsurgeon.surgery.respecialize_verify import write_rewritten

    src = open_file(src_path)
    sec = src.find(PREFILL_DECODE)
    base = src.model(sec.index)
    ir = Model.from_tflite(base)
    ir.remove(ir.signature("verify"))
    keep = ir.reachable_graphs([s.graph for s in ir.signatures])
    ir.graphs = [g for g in ir.graphs if g in keep]
    dec = ir.signature("decode")
    act = dec.outputs.pop("activations")
    dec.graph.outputs = [t for t in dec.graph.outputs if t is not act]
    ir.cleanup()
    with tempfile.TemporaryDirectory(dir=out.parent) as work:
        write_rewritten(ir, base, src, sec.index, out, Path(work))


def base_tflite(container: Path, out: Path) -> Path:
    from mtpsurgeon.formats.open import open_file

    f = open_file(container)
    out.write_bytes(f.section_bytes(f.find(PREFILL_DECODE).index))
    return out


def _inputs(details: dict, rng: np.random.Generator, start: int) -> dict:
    T, C = int(details["input_pos"]["shape"][0]), int(details["mask"]["shape"][-1])
    rows = np.arange(start, start + T)
    vis = (np.arange(C)[None, :] <= rows[:, None]).reshape(1, 1, T, C)
    ins = {}
    for n, d in details.items():
        if n == "input_pos":
            ins[n] = rows.astype(d["dtype"])
        elif n == "mask":
            ins[n] = vis if d["dtype"] == np.bool_ else np.where(vis, 0, -1e9).astype(d["dtype"])
        elif np.issubdtype(d["dtype"], np.integer):
            ins[n] = rng.integers(-20, 20, size=d["shape"]).astype(d["dtype"])
        else:
            ins[n] = rng.standard_normal(d["shape"]).astype(d["dtype"])
    return ins


def time_calls(tflite: Path, key: str, calls: int) -> float:
    """Median wall time of one ``key`` call, in ms."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(tflite), num_threads=1).get_signature_runner(key)
    ins = _inputs(runner.get_input_details(), np.random.default_rng(0), 10)
    for _ in range(3):
        runner(**ins)
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        runner(**ins)
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def measure(name: str, no_mtp: Path, ground_truth: Path | None, work: Path, calls: int) -> dict:
    import mtpsurgeon

    row: dict = {"base": name}
    for label, batched in (("batched", True), ("unbatched", False)):
        out = work / f"{name}-{label}.litertlm"
        t0 = time.perf_counter()
        res = mtpsurgeon.enable_mtp(no_mtp, out, batched=batched, force=True)
        row[f"enable_{label}_s"] = round(time.perf_counter() - t0, 2)
        assert res.batched is batched, res.unbatched_reason
        tfl = base_tflite(out, work / f"{name}-{label}.tflite")
        if batched:
            row["decode_ms"] = time_calls(tfl, "decode", calls)
            row["tokens"] = res.verify_tokens
        row[f"verify_{label}_ms"] = time_calls(tfl, "verify", calls)
    if ground_truth is not None:
        row["verify_ground_truth_ms"] = time_calls(ground_truth, "verify", calls)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--no-bench-model", action="store_true", help="only the two fixture families")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-batched-verify-") as tmp:
        work = Path(tmp)
        fx = REPO / "fixtures"
        rows.append(measure("torch fixture", fx / "no-mtp/gemma4-mini-nomtp.litertlm", fx / "base_prefill_decode.tflite",
                            work, args.calls))
        rows.append(measure("jax fixture", fx / "jax/no-mtp/gemma4-mini-nomtp.litertlm",
                            fx / "jax/base_prefill_decode.tflite", work, args.calls))
        if BENCH_MODEL.exists() and not args.no_bench_model:
            stripped = work / "bench-nomtp.litertlm"
            strip_mtp(BENCH_MODEL, stripped)
            rows.append(measure("bench model (H 1536, 10 layers)", stripped,
                                base_tflite(BENCH_MODEL, work / "bench-gt.tflite"), work, args.calls))
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'base':34} {'T':>2} {'decode':>9} {'verify unbatched':>18} {'verify batched':>16} {'exporter verify':>16}")
    for r in rows:
        d = r["decode_ms"]
        gt = f"{r['verify_ground_truth_ms']:.3f} ms" if "verify_ground_truth_ms" in r else "-"
        print(f"{r['base']:34} {r['tokens']:>2} {d:7.3f}ms {r['verify_unbatched_ms']:8.3f} ms ({r['verify_unbatched_ms'] / d:4.2f}x)"
              f" {r['verify_batched_ms']:7.3f} ms ({r['verify_batched_ms'] / d:4.2f}x) {gt:>16}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
