"""Child process for :mod:`mtpsurgeon.tuning.measure`: run the LiteRT-LM engine once.

    python -m mtpsurgeon.tuning.engine_probe MODEL --spec on|off --prompts-file F [--max-tokens N] [--repeats R]
        [--max-num-tokens C]

Prints one JSON object: texts (greedy, one per prompt), tokens, seconds (decode
time by the engine's own benchmark, fastest of the repeats per prompt), success_rates (from the drafter's log
line), error. The engine may crash on a malformed model, hence the process.
It writes cache files beside the model, so it runs on a private copy.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile


def _run(model: str, spec: bool, prompts: list[str], max_tokens: int, repeats: int, max_num_tokens: int,
         result: dict) -> None:
    """Decode every prompt ``repeats`` times; per prompt keep the fastest pass (robust to a busy machine)."""
    import litert_lm

    eng = litert_lm.Engine(model, backend=litert_lm.Backend.CPU(), max_num_tokens=max_num_tokens,
                           enable_speculative_decoding=spec, enable_benchmark=True)
    best: list[tuple[int, float] | None] = [None] * len(prompts)
    try:
        for r in range(repeats):
            for i, p in enumerate(prompts):
                s = eng.create_session(apply_prompt_template=False, max_output_tokens=max_tokens,
                                       sampler_config=litert_lm.SamplerConfig(top_k=1, temperature=0.0))
                try:
                    s.run_prefill([p])
                    text = s.run_decode().texts[0]
                    b = s.get_benchmark_info()
                    n, tps = int(b.last_decode_token_count), float(b.last_decode_tokens_per_second)
                    if tps > 0 and (best[i] is None or n / tps < best[i][1]):
                        best[i] = (n, n / tps)
                    if r == 0:
                        result["texts"].append(text)
                finally:
                    s.close()
    finally:
        eng.close()
    result["tokens"] = sum(b[0] for b in best if b)
    result["seconds"] = sum(b[1] for b in best if b)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--spec", choices=["on", "off"], required=True)
    ap.add_argument("--prompts-file", required=True)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-num-tokens", type=int, default=128, help="the engine's context (<= the KV cache length)")
    args = ap.parse_args(argv)
    with open(args.prompts_file, encoding="utf-8") as f:
        prompts = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    result = {"texts": [], "tokens": 0, "seconds": 0.0, "success_rates": [], "error": None}
    work = tempfile.TemporaryDirectory(prefix="mtpsurgeon-engine-")
    copy = os.path.join(work.name, "model.litertlm")
    shutil.copyfile(args.model, copy)
    log = tempfile.TemporaryFile()
    saved = os.dup(2)
    sys.stderr.flush()
    os.dup2(log.fileno(), 2)
    try:
        _run(copy, args.spec == "on", prompts, args.max_tokens, args.repeats, args.max_num_tokens, result)
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
    log.seek(0)
    text = log.read().decode("utf-8", "replace")
    result["success_rates"] = [float(x) for x in re.findall(r"MTP Drafter - Success rate: ([0-9.eE+-]+)", text)]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
