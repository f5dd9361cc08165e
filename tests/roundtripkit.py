"""Round trips drafter -> ``extract --names hf`` -> ``build-drafter --quant f32``, compared in the LiteRT interpreter.

The oracle is the LiteRT interpreter running the original drafter and the
rebuilt one on the same inputs at positions spread over the whole cache (the
runtime's convention: ``input_pos`` = p, mask true for cache positions <= p,
``param_tensor`` (p, 1, ...)). The feed is made here, independently of
mtpsurgeon's parity module.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np


def cli(*args, ok: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "mtpsurgeon", *map(str, args)], capture_output=True, text=True,
                       timeout=600)
    if ok:
        assert r.returncode == 0, (args, r.stdout[-2000:], r.stderr[-2000:])
    return r


def round_trip(drafter: Path, base: Path, work: Path) -> Path:
    """The drafter rebuilt from its own ``--names hf`` checkpoint (float32 weights)."""
    cli("extract", drafter, "-o", work / "hf", "--names", "hf", "--dtype", "f32", "--no-models")
    out = work / "rebuilt.tflite"
    cli("build-drafter", work / "hf", "--base", base, "-o", out, "--quant", "f32")
    return out


def _feed(details: dict, rng: np.random.Generator, pos: int) -> dict[str, np.ndarray]:
    out = {}
    for name, d in details.items():
        shape, dt = tuple(d["shape"]), d["dtype"]
        if name == "input_pos":
            out[name] = np.full(shape, pos, dt)
        elif name == "param_tensor":
            p = np.zeros(shape, dt)
            p.reshape(-1)[:2] = (pos, 1)
            out[name] = p
        elif "mask" in name:
            keep = np.arange(shape[-1]) <= pos
            out[name] = np.broadcast_to(keep if dt == np.bool_ else np.where(keep, 0.0, -1e9), shape).astype(dt)
        elif dt == np.int8:
            out[name] = rng.integers(-127, 128, size=shape).astype(np.int8)
        else:
            out[name] = rng.standard_normal(shape).astype(dt)
    return out


def compare(original: Path, rebuilt: Path, positions: list[int], seed: int = 0) -> list[dict]:
    """Per position: max |Δ| / max |original| of logits and of projected activations, and top-1 agreement."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kw = {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    a = Interpreter(model_path=str(original), **kw).get_signature_runner("mtp_drafter")
    b = Interpreter(model_path=str(rebuilt), **kw).get_signature_runner("mtp_drafter")
    details = a.get_input_details()
    assert set(b.get_input_details()) <= set(details), (set(b.get_input_details()), set(details))
    rng = np.random.default_rng(seed)
    rows = []
    for pos in positions:
        feed = _feed(details, rng, pos)
        oa = a(**feed)
        ob = b(**{k: v for k, v in feed.items() if k in b.get_input_details()})
        rel = {k: float(np.abs(oa[k] - ob[k]).max() / max(np.abs(oa[k]).max(), 1e-30))
               for k in ("logits", "projected_activations")}
        rows.append({"position": pos, "logits_rel": rel["logits"], "projected_rel": rel["projected_activations"],
                     "top1": bool(np.argmax(oa["logits"]) == np.argmax(ob["logits"]))})
    return rows


def spread(cache_len: int, window: int | None = None, n: int = 12) -> list[int]:
    """Positions over the whole cache, with both sides of the window's edge."""
    picks = set(np.linspace(0, cache_len - 1, n).round().astype(int).tolist())
    if window is not None:
        picks |= {window - 1, window, window + 1, window + 2}
    return sorted(p for p in picks if 0 <= p < cache_len)
