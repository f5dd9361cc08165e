"""The child process of a bench run: one LiteRT-LM engine, one mode, every prompt.

Run as a script (``python worker.py REQUEST.json RESULT.json``) by
:mod:`mtpsurgeon.engine.runner`, never imported by the parent: a malformed
model may abort the engine (SIGABRT), which must not take the caller down.
It uses only the standard library and ``litert_lm`` (PyPI ``litert-lm-api``).

REQUEST keys: model, speculative (bool), prompts, max_tokens, max_num_tokens
(or null), backend ('cpu' | 'gpu'), chat_template (bool), threads (CPU thread
count, or null/absent for the engine's default).
RESULT keys: engine_created, error, has_speculative_decoding_support,
prompts[] (prompt, text, prefill_tokens,
prefill_tokens_per_second, decode_tokens, decode_tokens_per_second,
time_to_first_token_seconds).

The engine logs through absl to file descriptor 2 (the parent parses it; the
drafter's ``MTP Drafter - Success rate: x`` line is written when the engine
closes), so the result goes to a file, not to stdout or stderr.
"""
from __future__ import annotations

import json
import sys
from typing import Callable


def _benchmark(session) -> dict:
    info = session.get_benchmark_info()
    return {
        "prefill_tokens": int(info.last_prefill_token_count),
        "prefill_tokens_per_second": float(info.last_prefill_tokens_per_second),
        "decode_tokens": int(info.last_decode_token_count),
        "decode_tokens_per_second": float(info.last_decode_tokens_per_second),
        "time_to_first_token_seconds": float(info.time_to_first_token_in_second),
    }


def run(request: dict) -> dict:
    """Load the engine once and decode every prompt greedily; never raises."""
    import litert_lm

    result: dict = {"engine_created": False, "error": None, "has_speculative_decoding_support": None, "prompts": []}
    try:
        with litert_lm.ModelInfo(request["model"]) as info:
            result["has_speculative_decoding_support"] = bool(info.llm.has_speculative_decoding_support())
    except Exception:  # noqa: BLE001 - only informative; creating the engine is the real test
        pass
    try:
        threads = request.get("threads") if request["backend"] == "cpu" else None
        backend = getattr(litert_lm.Backend, request["backend"].upper())(
            **({"thread_count": int(threads)} if threads else {}))
        options = {"max_num_tokens": request["max_num_tokens"]} if request.get("max_num_tokens") else {}
        engine = litert_lm.Engine(request["model"], backend=backend, enable_speculative_decoding=request["speculative"],
                                  enable_benchmark=True, **options)
        result["engine_created"] = True
        try:
            for prompt in request["prompts"]:
                session = engine.create_session(
                    apply_prompt_template=request["chat_template"], max_output_tokens=request["max_tokens"],
                    sampler_config=litert_lm.SamplerConfig(top_k=1, temperature=0.0))
                try:
                    session.run_prefill([prompt])
                    text = session.run_decode().texts[0]
                    row = {"prompt": prompt, "text": text, **_benchmark(session)}
                finally:
                    session.close()
                result["prompts"].append(row)
        finally:
            engine.close()
    except Exception as exc:  # noqa: BLE001
        result["error"] = f"{type(exc).__name__}: {exc}"
    return result


def serve(handle: Callable[[dict], dict], argv: list[str]) -> int:
    """A child's main: read the REQUEST file, ``handle`` it, write the RESULT file (``argv``: the two paths)."""
    request_path, result_path = argv
    with open(request_path, encoding="utf-8") as f:
        request = json.load(f)
    result = handle(request)
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump(result, f)
    return 0


def main(argv: list[str]) -> int:
    return serve(run, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
