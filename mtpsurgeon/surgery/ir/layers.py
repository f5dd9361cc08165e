"""Graph-building helpers over the IR, in the style of onnx-graphsurgeon's ``Graph.layer``.

Each helper appends the operators of one computation to a :class:`Graph` and
returns its output tensor, with the output shape worked out here, so a model
can be written as ordinary Python:

    L = Layers(model, graph, prefix="drafter")
    x = L.input("activations", [1, 1, 128])
    h = L.fully_connected(x, L.weight("pre_projection", w))
    h = L.rms_norm(h, L.const("norm", norm_w.reshape(1, 1, -1)), eps=1e-6)

Only this module's public API is needed; it calls ``Graph.add_tensor`` /
``add_constant`` / ``add_node`` and nothing private.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.formats.tflite.schema import fb
from mtpsurgeon.surgery.ir.elements import Tensor
from mtpsurgeon.surgery.ir.graph import Graph
from mtpsurgeon.surgery.ir.model import Model

_FLOAT32 = "FLOAT32"


def _broadcast(a: Sequence[int], b: Sequence[int]) -> list[int]:
    try:
        return list(np.broadcast_shapes(tuple(a), tuple(b)))
    except ValueError:
        raise SurgeryError(f"shapes {list(a)} and {list(b)} do not broadcast") from None


class Layers:
    """Appends named computations to ``graph``; names are ``prefix/scope/what`` and unique."""

    def __init__(self, model: Model, graph: Graph, prefix: str = "") -> None:
        self.model, self.graph = model, graph
        self.scope: list[str] = [prefix] if prefix else []
        self._names = {t.name for t in graph.tensors}
        self._consts: dict[tuple, Tensor] = {}

    # -- names and tensors ----------------------------------------------------------
    def name(self, what: str, exact: bool = False) -> str:
        """``scope/what`` made unique (``exact``: ``what`` itself, e.g. a parameter name)."""
        base = what if exact else "/".join([*self.scope, what])
        name, k = base, 1
        while name in self._names:
            name, k = f"{base};{k}", k + 1
        self._names.add(name)
        return name

    def push(self, scope: str) -> "Layers":
        self.scope.append(scope)
        return self

    def pop(self) -> None:
        self.scope.pop()

    def input(self, name: str, shape: Sequence[int], dtype: str | int = _FLOAT32, quantization: Any = None) -> Tensor:
        """A graph input named exactly ``name`` (signature names are the runtime's)."""
        self._names.add(name)
        t = self.graph.add_tensor(name, shape, dtype, quantization=quantization)
        self.graph.inputs.append(t)
        return t

    def tensor(self, what: str, shape: Sequence[int], dtype: str | int = _FLOAT32) -> Tensor:
        return self.graph.add_tensor(self.name(what), shape, dtype)

    def const(self, what: str, values: np.ndarray, dtype: str | int | None = None, *, exact: bool = False) -> Tensor:
        """A constant; equal small unnamed constants (shapes, scalars) are shared. ``exact``: keep ``what`` as its name."""
        values = np.ascontiguousarray(values)
        key = (str(values.dtype), values.shape, values.tobytes()) if values.nbytes <= 4096 and not exact else None
        if key is not None and key in self._consts:
            return self._consts[key]
        t = self.graph.add_constant(self.name(what, exact), values, dtype)
        if key is not None:
            self._consts[key] = t
        return t

    def shape_const(self, shape: Sequence[int]) -> Tensor:
        return self.const("shape", np.array(list(shape), dtype=np.int32))

    def op(self, op: str, inputs: list[Tensor | None], out: Tensor | list[Tensor], options: Any = None) -> None:
        outs = out if isinstance(out, list) else [out]
        self.graph.add_node(op, inputs, outs, options)

    # -- elementwise --------------------------------------------------------------------
    def _binary(self, op: str, a: Tensor, b: Tensor, what: str, options: Any = None) -> Tensor:
        y = self.tensor(what, _broadcast(a.shape, b.shape), a.dtype)
        self.op(op, [a, b], y, options)
        return y

    def add(self, a: Tensor, b: Tensor, what: str = "add") -> Tensor:
        return self._binary("ADD", a, b, what, fb.AddOptionsT())

    def sub(self, a: Tensor, b: Tensor, what: str = "sub") -> Tensor:
        return self._binary("SUB", a, b, what, fb.SubOptionsT())

    def mul(self, a: Tensor, b: Tensor, what: str = "mul") -> Tensor:
        return self._binary("MUL", a, b, what, fb.MulOptionsT())

    def unary(self, op: str, x: Tensor, what: str | None = None, options: Any = None) -> Tensor:
        y = self.tensor(what or op.lower(), x.shape, x.dtype)
        self.op(op, [x], y, options)
        return y

    def scalar(self, value: float, what: str = "scalar") -> Tensor:
        return self.const(what, np.array(value, dtype=np.float32))

    def reshape(self, x: Tensor, shape: Sequence[int], what: str = "reshape") -> Tensor:
        shape = [int(d) for d in shape]
        if int(np.prod(shape)) != int(np.prod(x.shape)):
            raise SurgeryError(f"cannot reshape '{x.name}' {x.shape} to {shape}")
        y = self.tensor(what, shape, x.dtype)
        self.op("RESHAPE", [x, self.shape_const(shape)], y)
        return y

    def cast(self, x: Tensor, dtype: str, what: str = "cast") -> Tensor:
        y = self.tensor(what, x.shape, dtype)
        self.op("CAST", [x], y)
        return y

    def dequantize(self, x: Tensor, what: str = "dequantize") -> Tensor:
        """INT8/INT4/FLOAT16 → FLOAT32 with ``x``'s own (per-tensor or per-channel) quantization."""
        y = self.tensor(what, x.shape, _FLOAT32)
        self.op("DEQUANTIZE", [x], y)
        return y

    def concat(self, xs: list[Tensor], axis: int, what: str = "concat") -> Tensor:
        shape = list(xs[0].shape)
        shape[axis] = sum(x.shape[axis] for x in xs)
        y = self.tensor(what, shape, xs[0].dtype)
        self.op("CONCATENATION", list(xs), y, _opts(fb.ConcatenationOptionsT(), axis=axis))
        return y

    def split(self, x: Tensor, parts: int, axis: int, what: str = "split") -> list[Tensor]:
        if x.shape[axis] % parts:
            raise SurgeryError(f"cannot split '{x.name}' {x.shape} in {parts} along axis {axis}")
        shape = list(x.shape)
        shape[axis] //= parts
        ys = [self.tensor(f"{what}_{i}", shape, x.dtype) for i in range(parts)]
        self.op("SPLIT", [self.const("axis", np.array(axis, dtype=np.int32)), x], ys,
                _opts(fb.SplitOptionsT(), numSplits=parts))
        return ys

    def select(self, cond: Tensor, a: Tensor, b: Tensor, what: str = "select") -> Tensor:
        y = self.tensor(what, _broadcast(_broadcast(cond.shape, a.shape), b.shape), a.dtype)
        self.op("SELECT_V2", [cond, a, b], y, fb.SelectV2OptionsT())
        return y

    # -- layers ---------------------------------------------------------------------------
    def fully_connected(self, x: Tensor, w: Tensor, what: str = "fc") -> Tensor:
        """x[..., in] · w[out, in]ᵀ → [..., out] (w may be INT8/INT4: dynamic-range kernels)."""
        if x.shape[-1] != w.shape[1]:
            raise SurgeryError(f"fully_connected: '{x.name}' {x.shape} does not fit weights '{w.name}' {w.shape}")
        y = self.tensor(what, [*x.shape[:-1], w.shape[0]], _FLOAT32)
        self.op("FULLY_CONNECTED", [x, w, None], y, _opts(fb.FullyConnectedOptionsT(), keepNumDims=True))
        return y

    def batch_matmul(self, a: Tensor, b: Tensor, adj_y: bool = False, what: str = "matmul") -> Tensor:
        n = b.shape[-2] if adj_y else b.shape[-1]
        k = b.shape[-1] if adj_y else b.shape[-2]
        if a.shape[-1] != k:
            raise SurgeryError(f"batch_matmul: '{a.name}' {a.shape} does not fit '{b.name}' {b.shape}")
        y = self.tensor(what, [*_broadcast(a.shape[:-2], b.shape[:-2]), a.shape[-2], n], _FLOAT32)
        self.op("BATCH_MATMUL", [a, b], y, _opts(fb.BatchMatMulOptionsT(), adjX=False, adjY=adj_y))
        return y

    def rms_norm(self, x: Tensor, w: Tensor | None, eps: float, what: str = "rms_norm") -> Tensor:
        """x · rsqrt(mean(x², last axis) + eps) · w (Gemma 4: plain w, no 1 + w)."""
        self.push(what)
        try:
            sq = self.mul(x, x, "square")
            axis = self.const("axis", np.array([len(x.shape) - 1], dtype=np.int32))
            ms = self.tensor("mean", [*x.shape[:-1], 1])
            self.op("MEAN", [sq, axis], ms, _opts(fb.ReducerOptionsT(), keepDims=True))
            inv = self.unary("RSQRT", self.add(ms, self.const("eps", np.full([1] * len(x.shape), eps, np.float32))))
            y = self.mul(x, inv, "normed")
            return y if w is None else self.mul(y, w, "scaled")
        finally:
            self.pop()

    def rope(self, x: Tensor, position: Tensor, inv_freq: np.ndarray, what: str = "rope") -> Tensor:
        """Rotate the last axis of ``x`` at integer ``position`` [1] (rotate-half convention of transformers).

        x·cos(p·[f, f]) + [x₂, x₁]·sin(p·[−f, f]): one split and concat, no slicing.
        """
        half = x.shape[-1] // 2
        if inv_freq.shape != (half,):
            raise SurgeryError(f"rope: {inv_freq.shape[0]} frequencies for a last axis of {x.shape[-1]}")
        self.push(what)
        try:
            p = self.cast(position, _FLOAT32, "position")
            both = np.concatenate([inv_freq, inv_freq]).astype(np.float32)
            signed = np.concatenate([-inv_freq, inv_freq]).astype(np.float32)
            cos = self.unary("COS", self.mul(p, self.const("inv_freq", both), "angles"), "cos")
            sin = self.unary("SIN", self.mul(p, self.const("inv_freq_signed", signed), "signed_angles"), "sin")
            x1, x2 = self.split(x, 2, len(x.shape) - 1, "halves")
            swapped = self.concat([x2, x1], len(x.shape) - 1, "swapped")
            return self.add(self.mul(x, cos, "x_cos"), self.mul(swapped, sin, "swapped_sin"), "rotated")
        finally:
            self.pop()

    def attention(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor, *, heads: int, head_dim: int,
                  allowed: Tensor | None = None, what: str = "attention") -> Tensor:
        """Scale-1 attention of q [1, heads, hd] over caches k [1, kv, C, hd], v [1, kv, hd, C] (V transposed).

        INT8 caches are dequantized with their per-tensor parameters; query head
        h reads KV head h // (heads / kv) (GQA). ``mask`` [1,1,1,C] is bool
        (allowed) or float (additive); ``allowed`` is an extra bool [C] window.
        Returns [1, 1, heads·hd].
        """
        kv, C = k.shape[1], k.shape[2]
        if heads % kv or k.shape[3] != head_dim or list(v.shape) != [1, kv, head_dim, C]:
            raise SurgeryError(f"attention: {heads} heads of {head_dim} cannot read K {k.shape} / V {v.shape}")
        self.push(what)
        try:
            if k.dtype != q.dtype:
                k = self.dequantize(k, "k_float")
            if v.dtype != q.dtype:
                v = self.dequantize(v, "v_float")
            g = heads // kv
            qg = self.reshape(q, [kv, g, head_dim], "q_groups")
            scores = self.batch_matmul(qg, self.reshape(k, [kv, C, head_dim], "k"), adj_y=True, what="scores")
            fill = self.scalar(-1e9, "mask_fill")
            if mask.dtype == q.dtype:  # additive float mask
                scores = self.add(scores, self.reshape(mask, [1, 1, C], "mask3"), "masked")
                if allowed is not None:
                    scores = self.select(allowed, scores, fill, "windowed")
            else:
                ok = self.reshape(mask, [1, 1, C], "mask3")
                if allowed is not None:
                    ok = self._binary("LOGICAL_AND", ok, allowed, "allowed")
                scores = self.select(ok, scores, fill, "masked")
            probs = self.unary("SOFTMAX", scores, "probs", _opts(fb.SoftmaxOptionsT(), beta=1.0))
            ctx = self.batch_matmul(probs, self.reshape(v, [kv, head_dim, C], "v"), adj_y=True, what="context")
            return self.reshape(ctx, [1, 1, heads * head_dim], "context_flat")
        finally:
            self.pop()

    def window(self, position: Tensor, cache_len: int, window: int, what: str = "window") -> Tensor:
        """bool [C]: cache slots p with position − window < p, the ``window`` most recent positions."""
        self.push(what)
        try:
            slots = self.const("slots", np.arange(cache_len, dtype=np.int32))
            lowest = self.sub(position, self.const("size", np.array([window], dtype=np.int32)), "lowest")
            y = self.tensor("inside", [cache_len], "BOOL")
            self.op("GREATER", [slots, lowest], y)
            return y
        finally:
            self.pop()

    def gated_mlp(self, x: Tensor, gate: Tensor, up: Tensor, down: Tensor, activation: str = "gelu_tanh",
                  what: str = "mlp") -> Tensor:
        """down(act(gate(x)) · up(x)); ``activation``: gelu_tanh (GeGLU), gelu, tanh, relu, silu or sigmoid."""
        self.push(what)
        try:
            g = self.fully_connected(x, gate, "gate")
            if activation in ("gelu_tanh", "gelu"):
                a = self.unary("GELU", g, "gate_gelu", _opts(fb.GeluOptionsT(), approximate=activation == "gelu_tanh"))
            elif activation in ("tanh", "relu", "sigmoid"):
                a = self.unary({"tanh": "TANH", "relu": "RELU", "sigmoid": "LOGISTIC"}[activation], g, f"gate_{activation}")
            elif activation == "silu":
                a = self.mul(g, self.unary("LOGISTIC", g, "gate_sigmoid"), "gate_silu")
            else:
                raise ValueError(f"no such gate activation: {activation!r}")
            return self.fully_connected(self.mul(a, self.fully_connected(x, up, "up"), "gated"), down, "down")
        finally:
            self.pop()

    def softcap(self, x: Tensor, cap: float, folded: bool = False, what: str = "softcap") -> Tensor:
        """cap · tanh(x / cap); ``folded``: x is already divided by cap (1/cap folded into the weights)."""
        self.push(what)
        try:
            t = self.unary("TANH", x if folded else self.mul(x, self.scalar(1.0 / cap, "inv_cap"), "scaled"), "tanh")
            return self.mul(t, self.scalar(cap, "cap"), "capped")
        finally:
            self.pop()


def _opts(obj: Any, **fields: Any) -> Any:
    for k, v in fields.items():
        if not hasattr(obj, k):
            raise SurgeryError(f"{type(obj).__name__} has no field '{k}'")
        setattr(obj, k, v)
    return obj
