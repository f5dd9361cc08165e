"""Load a model in the real LiteRT interpreter and run its signatures."""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence the runtime's native INFO lines (written straight to fd 2)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@dataclass(frozen=True)
class SignatureRun:
    """Outcome of running one signature on synthetic inputs."""

    label: str
    signature: str
    ok: bool
    detail: str


def synthetic_inputs(details: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic inputs: small normals for floats, zeros for ints, True for bools."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, d in details.items():
        shape, dtype = tuple(d["shape"]), np.dtype(d["dtype"])
        if dtype == np.bool_:
            out[name] = np.ones(shape, dtype=bool)
        elif np.issubdtype(dtype, np.floating):
            out[name] = (rng.standard_normal(shape) * 0.1).astype(dtype)
        else:
            out[name] = np.zeros(shape, dtype=dtype)
    return out


def run_signatures(model_bytes: bytes, label: str, keys: list[str] | None = None) -> list[SignatureRun]:
    """Run ``keys`` (all signatures by default) of a model given as bytes."""
    with quiet_native_stderr():
        return _run(model_bytes, label, keys)


def _run(model_bytes: bytes, label: str, keys: list[str] | None) -> list[SignatureRun]:
    from ai_edge_litert.interpreter import Interpreter

    try:
        interp = Interpreter(model_content=bytes(model_bytes))
    except Exception as exc:  # the runtime refuses the model
        return [SignatureRun(label, "*", False, f"interpreter refused the model: {exc}")]
    runs = []
    for key in keys or list(interp.get_signature_list()):
        try:
            runner = interp.get_signature_runner(key)
            outputs = runner(**synthetic_inputs(runner.get_input_details()))
            bad = [n for n, v in outputs.items() if np.issubdtype(v.dtype, np.floating) and not np.all(np.isfinite(v))]
            shapes = ", ".join(f"{n}{list(v.shape)}" for n, v in outputs.items())
            runs.append(SignatureRun(label, key, not bad, f"non-finite outputs: {bad}" if bad else f"ran: {shapes}"))
        except Exception as exc:
            runs.append(SignatureRun(label, key, False, f"{type(exc).__name__}: {exc}"))
    return runs
