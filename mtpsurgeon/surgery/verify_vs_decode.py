"""Gate for a re-specialized `verify`: in the LiteRT interpreter, `verify` over T
tokens must equal T consecutive `decode` calls (logits, activations, KV rows).

Inputs are random: embeddings, the starting KV caches, the start position.
The masks are causal over the positions written so far (bool or additive float,
whatever each signature takes).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from mtpsurgeon.surgery.verify import quiet_native_stderr

NEG = np.float32(-1e9)  #: additive mask value for a blocked position


@dataclass
class Equivalence:
    """Outcome: per output, the largest absolute difference verify vs repeated decode."""

    tokens: int
    start: int
    kernels: str = "xnnpack"  #: 'xnnpack' (the runtime's CPU default) or 'builtin' (reference kernels)
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    scale: float = 0.0  #: largest |value| seen, for relative tolerance
    error: str | None = None

    @property
    def bit_identical(self) -> bool:
        return self.error is None and all(v == 0.0 for v in self.max_abs_diff.values())

    def ok(self, rtol: float = 1e-5) -> bool:
        return self.error is None and bool(self.max_abs_diff) and \
            max(self.max_abs_diff.values()) <= rtol * max(self.scale, 1.0)

    def describe(self) -> str:
        if self.error:
            return self.error
        worst = max(self.max_abs_diff.values()) if self.max_abs_diff else float("nan")
        kind = "bit-identical" if self.bit_identical else f"max |diff| {worst:.3g}"
        return (f"verify over {self.tokens} tokens at position {self.start} vs {self.tokens} decode calls: {kind} "
                f"({len(self.max_abs_diff)} outputs, {self.kernels} kernels)")


def causal_mask(spec: dict, rows: list[int], cache_len: int) -> np.ndarray:
    """Causal mask [1, 1, len(rows), C]: position j visible to a row at position p iff j <= p."""
    vis = np.arange(cache_len)[None, :] <= np.asarray(rows)[:, None]
    vis = vis.reshape(1, 1, len(rows), cache_len)
    if np.dtype(spec["dtype"]) == np.bool_:
        return vis
    return np.where(vis, np.float32(0), NEG).astype(spec["dtype"])


def _random(rng: np.random.Generator, spec: dict, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(tuple(spec["shape"])) * scale).astype(spec["dtype"])


def check_verify_matches_decode(model: bytes | memoryview | str | os.PathLike, seed: int = 0, verify: str = "verify",
                                decode: str = "decode", kernels: str = "xnnpack") -> Equivalence:
    """Run ``verify`` once and ``decode`` T times on the same random inputs; compare.

    ``model`` is a .tflite path (mapped by the runtime, nothing copied) or its bytes.
    ``kernels='xnnpack'`` runs what the LiteRT-LM CPU backend runs (XNNPACK repacks a
    copy of the weights); ``'builtin'`` uses the reference kernels, whose memory is
    only the mapped model, at the price of float rounding that differs with T.
    """
    if kernels not in ("xnnpack", "builtin"):
        raise ValueError(f"kernels must be 'xnnpack' or 'builtin', not {kernels!r}")
    with quiet_native_stderr():
        return _check(model, seed, verify, decode, kernels)


def _check(model: bytes | memoryview | str | os.PathLike, seed: int, vkey: str, dkey: str, kernels: str) -> Equivalence:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = (OpResolverType.AUTO if kernels == "xnnpack" else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    try:
        if isinstance(model, (str, os.PathLike)):
            interp = Interpreter(model_path=str(model), experimental_op_resolver_type=resolver)
        else:
            interp = Interpreter(model_content=bytes(model), experimental_op_resolver_type=resolver)
        ver, dec = interp.get_signature_runner(vkey), interp.get_signature_runner(dkey)
    except Exception as exc:  # the runtime refuses the model or a signature is missing
        return Equivalence(0, 0, kernels, error=f"interpreter: {type(exc).__name__}: {exc}")
    vin, din = ver.get_input_details(), dec.get_input_details()
    T = int(vin["input_pos"]["shape"][0])
    C = int(vin["mask"]["shape"][-1])
    rng = np.random.default_rng(seed)
    start = int(rng.integers(1, C - T + 1))
    token_inputs = {"input_pos", "mask", "embeddings", "tokens", "input_ids", "per_layer_embeddings"}
    state = {n: _random(rng, s) for n, s in vin.items() if n not in token_inputs}
    feats = {n: _random(rng, vin[n]) for n in ("embeddings", "per_layer_embeddings") if n in vin}
    if "tokens" in vin or "input_ids" in vin:
        n = "tokens" if "tokens" in vin else "input_ids"
        feats[n] = rng.integers(0, 8, size=tuple(vin[n]["shape"])).astype(vin[n]["dtype"])
    rows = list(range(start, start + T))
    res = Equivalence(T, start, kernels)
    try:
        vout = ver(**state, **feats, input_pos=np.asarray(rows, dtype=vin["input_pos"]["dtype"]),
                   mask=causal_mask(vin["mask"], rows, C))
        kv = dict(state)
        douts = []
        for k, p in enumerate(rows):
            step = {n: v[:, k:k + 1] for n, v in feats.items()}
            o = dec(**{n: kv[n] for n in din if n in kv}, **step,
                    input_pos=np.asarray([p], dtype=din["input_pos"]["dtype"]), mask=causal_mask(din["mask"], [p], C))
            douts.append(o)
            kv.update({n: v for n, v in o.items() if n in kv})
    except Exception as exc:
        res.error = f"running '{vkey}'/'{dkey}': {type(exc).__name__}: {exc}"
        return res
    for name, v in vout.items():
        if name in state:  # KV caches: the final state after all decode calls
            ref = kv[name]
        elif all(name in o for o in douts) and v.ndim >= 2 and v.shape[1] == T:
            ref = np.concatenate([o[name] for o in douts], axis=1)
        else:
            continue
        if ref.shape != v.shape:
            res.error = f"output '{name}': verify gives {list(v.shape)}, decode {list(ref.shape)}"
            return res
        a, b = v.astype(np.float64), ref.astype(np.float64)
        res.max_abs_diff[name] = float(np.max(np.abs(a - b))) if a.size else 0.0
        res.scale = max(res.scale, float(np.max(np.abs(b))) if b.size else 0.0)
    if not res.max_abs_diff:
        res.error = f"'{vkey}' and '{dkey}' share no comparable outputs"
    return res
