"""Emit a :class:`DrafterSpec` as a LiteRT model with the runtime's ``mtp_drafter`` signature.

Graph (one subgraph, signature ``mtp_drafter`` at index 0):

    activations [1,1,2H] ─ pre_projection ─ h
    per block:  h += post_attention_norm(o_proj(attention(rope(q_norm(q_proj(input_norm(h)))), K, V)))
                h += post_feedforward_norm(gated_mlp(pre_feedforward_norm(h)));  h *= layer_scalar
    hn = final_norm(h);  logits = cap·tanh(hn·lm_headᵀ / cap);  projected_activations = post_projection(hn)

Attention has scale 1 and reads the base's caches of the last sliding and the
last full-attention layer, declared exactly as the base declares them (names,
dtypes, shapes, quantization); INT8 caches are dequantized in the graph.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from mtpsurgeon.analysis.roles.model import Role
from mtpsurgeon.formats.tflite.records import TensorRecord
from mtpsurgeon.formats.tflite.schema import fb
from mtpsurgeon.surgery.drafter.quantize import quantize_weight, scheme_for
from mtpsurgeon.surgery.drafter.spec import CheckpointWeights, DrafterSpec
from mtpsurgeon.surgery.ir import Model, Tensor
from mtpsurgeon.surgery.ir.layers import Layers

SIGNATURE = "mtp_drafter"


@dataclass(frozen=True)
class KVSource:
    """The base's K and V cache inputs of one layer, as the base declares them."""

    layer: int
    k_name: str
    v_name: str
    k: TensorRecord
    v: TensorRecord


@dataclass(frozen=True)
class DrafterInterface:
    """What the base dictates: cache length, mask dtype, and the KV inputs per layer type."""

    cache_len: int
    mask_dtype: str  #: 'BOOL' or 'FLOAT32'
    kv: dict[str, KVSource]  #: 'sliding_attention' / 'full_attention' → source


def _quantization(q: Any) -> Any:
    """A base tensor's per-tensor / per-channel quantization, as a flatbuffer object."""
    if q is None or q.is_empty:
        return None
    p = fb.QuantizationParametersT()
    p.scale = [float(x) for x in q.scale]
    p.zeroPoint = [int(x) for x in q.zero_point] if q.zero_point is not None else [0] * len(q.scale)
    p.quantizedDimension = int(q.quantized_dimension)
    return p


def param_name(role: str) -> str:
    """The transformers parameter name of a role label ('layers.2.q_proj' → 'model.layers.2.self_attn.q_proj.weight')."""
    if role.startswith("layers."):
        _, layer, kind = role.split(".", 2)
        return Role(kind, int(layer), "spec").hf_name or role
    return Role(role, None, "spec").hf_name or role


class WeightSource(Protocol):
    """Where the emitted graph's learned constants come from (float checkpoint, or weights a file already holds)."""

    def matrix(self, L: Layers, role: str) -> Tensor:
        """The [out, in] weight of ``role`` ('pre_projection', 'layers.2.q_proj', ...)."""

    def norm(self, L: Layers, role: str) -> Tensor:
        """The RMS-norm scale of ``role`` shaped [1, 1, n]."""

    def lm_head(self, L: Layers, softcap: float | None) -> Tensor:
        """The LM head with the soft-cap's 1/cap folded in (``cap · tanh(x · headᵀ)``), as litert-torch does."""


class FloatWeights:
    """Constants from a :class:`DrafterSpec`'s float32 weights, quantized per ``--quant``."""

    def __init__(self, spec: DrafterSpec, quant: str) -> None:
        self.spec, self.quant = spec, quant

    def matrix(self, L: Layers, role: str, w: np.ndarray | None = None) -> Tensor:
        w = self.spec.weights[role] if w is None else w
        kind = role.rsplit(".", 1)[-1]
        scheme = scheme_for(kind, self.quant)
        name = param_name(role)
        if scheme is None:
            return L.const(name, np.asarray(w, dtype=np.float32), exact=True)
        qw = quantize_weight(w, scheme)
        p = fb.QuantizationParametersT()
        if qw.block_size:
            scales = L.const(f"{name}_scales", qw.scales, exact=True)
            p.detailsType = fb.QuantizationDetails.BlockwiseQuantization
            p.details = fb.BlockwiseQuantizationT()
            p.details.blockSize = qw.block_size
            t = L.graph.add_constant(L.name(name, exact=True), qw.data, qw.dtype, shape=w.shape, quantization=p)
            t.block_scales = scales
            return t
        # numpy vectors: the flatbuffer object API packs them in one copy, not element by element
        p.scale = np.ascontiguousarray(qw.scales, dtype=np.float32)
        p.zeroPoint = np.zeros(len(qw.scales), dtype=np.int64)
        p.quantizedDimension = 0
        return L.graph.add_constant(L.name(name, exact=True), qw.data, qw.dtype, shape=w.shape, quantization=p)

    def norm(self, L: Layers, role: str) -> Tensor:
        w = self.spec.weights[role]
        return L.const(param_name(role), np.asarray(w, dtype=np.float32).reshape(1, 1, -1), exact=True)

    def lm_head(self, L: Layers, softcap: float | None) -> Tensor:
        head = self.spec.weights["lm_head"]
        if softcap:  # fold 1/cap into the head: cap · tanh(hn · (E/cap)ᵀ)
            fresh = isinstance(self.spec.weights, CheckpointWeights)  # a new array per read: divide it in place
            head = np.divide(head, np.float32(softcap), out=head if fresh else None, dtype=np.float32)
        return self.matrix(L, "lm_head", head)


def emit_drafter(spec: DrafterSpec, iface: DrafterInterface, quant: str = "f32", *,
                 weights: WeightSource | None = None) -> Model:
    """The drafter as an IR :class:`Model` (export with ``formats.tflite.writer.tflite_bytes``).

    Constants come from ``weights``; by default from ``spec.weights`` quantized per ``quant``.
    """
    W = weights if weights is not None else FloatWeights(spec, quant)
    model = Model()
    model.description = "mtpsurgeon build-drafter"
    graph = model.add_graph("main")
    L = Layers(model, graph, prefix="drafter")
    H, C = spec.backbone_hidden, iface.cache_len
    act = L.input("activations", [1, 1, 2 * H])
    pos = L.input("input_pos", [1], "INT32")
    mask = L.input("mask", [1, 1, 1, C], iface.mask_dtype)
    caches: dict[str, tuple[Tensor, Tensor]] = {}
    for kind in sorted(iface.kv):
        src = iface.kv[kind]
        k = L.input(src.k_name, src.k.shape, src.k.dtype.code, _quantization(src.k.quantization))
        v = L.input(src.v_name, src.v.shape, src.v.dtype.code, _quantization(src.v.quantization))
        caches[kind] = (k, v)

    h = L.fully_connected(act, W.matrix(L, "pre_projection"), "pre_projection")
    windows: dict[tuple[int, int], Tensor] = {}
    for b in spec.blocks:
        i = b.index
        L.push(f"layers.{i}")
        k, v = caches[b.layer_type]
        allowed = None
        # transformers' assistant masks its shared KV with a bidirectional sliding window,
        # |q - k| <= sliding_window: the window + 1 most recent keys (a window covering the cache masks nothing)
        keys = None if b.sliding_window is None else b.sliding_window + 1
        if keys is not None and keys < k.shape[2]:
            key = (k.shape[2], keys)
            if key not in windows:
                windows[key] = L.window(pos, k.shape[2], keys)
            allowed = windows[key]
        x = L.rms_norm(h, W.norm(L, f"layers.{i}.input_layernorm"), spec.eps, "input_layernorm")
        q = L.fully_connected(x, W.matrix(L, f"layers.{i}.q_proj"), "q_proj")
        q = L.reshape(q, [1, b.heads, b.head_dim], "q_heads")
        q = L.rms_norm(q, W.norm(L, f"layers.{i}.q_norm"), spec.eps, "q_norm")
        if b.rope is not None:
            q = L.rope(q, pos, b.rope.inv_freq(b.head_dim))
        ctx = L.attention(q, k, v, mask, heads=b.heads, head_dim=b.head_dim, allowed=allowed)
        o = L.fully_connected(ctx, W.matrix(L, f"layers.{i}.o_proj"), "o_proj")
        h = L.add(h, L.rms_norm(o, W.norm(L, f"layers.{i}.post_attention_layernorm"), spec.eps,
                                "post_attention_layernorm"), "attention_residual")
        xf = L.rms_norm(h, W.norm(L, f"layers.{i}.pre_feedforward_layernorm"), spec.eps, "pre_feedforward_layernorm")
        m = L.gated_mlp(xf, *(W.matrix(L, f"layers.{i}.{r}") for r in ("gate_proj", "up_proj", "down_proj")),
                        activation=spec.activation)
        h = L.add(h, L.rms_norm(m, W.norm(L, f"layers.{i}.post_feedforward_layernorm"), spec.eps,
                                "post_feedforward_layernorm"), "mlp_residual")
        if b.layer_scalar != 1.0:
            h = L.mul(h, L.scalar(b.layer_scalar, "layer_scalar"), "scaled")
        L.pop()
    hn = L.rms_norm(h, W.norm(L, "final_norm"), spec.eps, "final_norm")
    logits = L.fully_connected(hn, W.lm_head(L, spec.softcap), "lm_head")
    if spec.softcap:
        logits = L.softcap(logits, float(spec.softcap), folded=True)
    proj = L.fully_connected(hn, W.matrix(L, "post_projection"), "post_projection")
    inputs = {t.name: t for t in graph.inputs}
    model.add_signature(SIGNATURE, graph, inputs, {"logits": logits, "projected_activations": proj})
    logits.name, proj.name = "logits", "projected_activations"
    model.toposort()
    return model
