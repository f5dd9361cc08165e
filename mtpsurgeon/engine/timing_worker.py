"""The child process that times one signature in the LiteRT interpreter (XNNPACK, a given thread count).

Run as ``python -m mtpsurgeon.engine.timing_worker REQUEST.json RESULT.json`` by
:mod:`mtpsurgeon.engine.call_timing`, on a .tflite that holds only the signature
to time (its graph is subgraph 0): a malformed section that crashes the runtime
ends only this child, and the packed weights go when it exits.

REQUEST keys: model, signature, threads, position, warmup, min_calls,
min_seconds, max_calls. RESULT keys: tokens, calls, median_ms, min_ms, error.

Inputs are what the runtime feeds (LiteRT-LM ``llm_litert_mtp_drafter.cc``):
``input_pos`` = position .. position + T - 1, a causal ``mask`` over them,
``param_tensor`` (position, T), zeroed KV caches of the model's dtype (the
quantized caches hold zeros for unwritten rows, as the runtime's do), random
float activations/embeddings, token ids 1. Once set, the inputs stay in
place: each timed call is one ``invoke`` (outputs are not copied out, as the
runtime samples them where they are).
"""
from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from mtpsurgeon.engine.worker import serve
from mtpsurgeon.surgery.verify import quiet_native_stderr
from mtpsurgeon.surgery.verify_vs_decode import causal_mask


def token_count(details: dict) -> int:
    """T of a signature: the length of ``input_pos`` (1 when it has none, e.g. an embedder)."""
    pos = details.get("input_pos")
    return int(np.prod(pos["shape"])) if pos is not None else 1


def feeds(details: dict, position: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Realistic inputs for one call at ``position`` (see the module docstring)."""
    tokens = token_count(details)
    out = {}
    for name, d in details.items():
        shape, dtype = tuple(int(x) for x in d["shape"]), np.dtype(d["dtype"])
        if name == "input_pos":
            out[name] = np.arange(position, position + tokens, dtype=dtype).reshape(shape)
        elif "mask" in name and len(shape) >= 2:
            rows = list(range(position, position + shape[-2]))
            out[name] = causal_mask({"dtype": dtype}, rows, shape[-1]).reshape(shape)
        elif name == "param_tensor":
            p = np.zeros(shape, dtype)
            p.reshape(-1)[:2] = (position, tokens)
            out[name] = p
        elif "kv" in name or not np.issubdtype(dtype, np.floating):
            out[name] = np.zeros(shape, dtype) if "kv" in name or dtype == np.bool_ else np.ones(shape, dtype)
        else:
            out[name] = rng.standard_normal(shape).astype(dtype)
    return out


def run(request: dict) -> dict:
    """Load, warm up, time; never raises."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    result: dict = {"tokens": None, "calls": 0, "median_ms": None, "min_ms": None, "error": None}
    try:
        with quiet_native_stderr():
            interp = Interpreter(model_path=request["model"], num_threads=int(request["threads"]),
                                 experimental_op_resolver_type=OpResolverType.AUTO)
            runner = interp.get_signature_runner(request["signature"])
            details = runner.get_input_details()
            result["tokens"] = token_count(details)
            cache = max((int(d["shape"][-1]) for n, d in details.items() if "mask" in n), default=1)
            wanted = request.get("position")
            position = max(0, min(cache // 2 if wanted is None else int(wanted), cache - result["tokens"]))
            runner(**feeds(details, position, np.random.default_rng(0)))  # allocates, sets inputs, packs weights
            del runner  # it holds the interpreter's wrapper, and invoke() refuses while anything else does
            for _ in range(int(request["warmup"])):
                interp.invoke()
            times: list[float] = []
            start = time.perf_counter()
            while len(times) < int(request["max_calls"]) and (
                    len(times) < int(request["min_calls"]) or time.perf_counter() - start < float(request["min_seconds"])):
                t0 = time.perf_counter_ns()
                interp.invoke()
                times.append((time.perf_counter_ns() - t0) / 1e6)
        result.update(calls=len(times), median_ms=statistics.median(times), min_ms=min(times))
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        result["error"] = f"{type(exc).__name__}: {exc}"
    return result


if __name__ == "__main__":
    sys.exit(serve(run, sys.argv[1:]))
