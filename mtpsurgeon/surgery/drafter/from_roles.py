"""Rebuild a pruned drafter through the emitter: its stored weights, placed by the role model.

    ir, used, notes = rebuild_from_roles(model, roles, base)

The same semantic description that ``build-drafter`` emits from a checkpoint
(:mod:`~mtpsurgeon.surgery.drafter.emit`) is emitted here from the weights a
pruned drafter still holds: every matrix, norm, RoPE table and layer scalar
is re-used as stored (same bytes, same quantization), placed by the roles
:mod:`mtpsurgeon.analysis.roles` recognised. The architecture comes from the
same analysis (shapes, the base's KV caches, leftover constants for epsilon,
soft-cap and sliding window) unless a ``config.json`` says otherwise.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from mtpsurgeon.analysis.dims import BaseDims
from mtpsurgeon.analysis.roles.model import RoleMap
from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.formats.tflite import TFLiteModel
from mtpsurgeon.formats.tflite.records import TensorRecord
from mtpsurgeon.formats.tflite.schema import fb
from mtpsurgeon.surgery.drafter.base_interface import drafter_interface
from mtpsurgeon.surgery.drafter.emit import emit_drafter, param_name
from mtpsurgeon.surgery.drafter import buildable
from mtpsurgeon.surgery.drafter.spec import BlockSpec, DrafterSpec, RopeSpec, rope_from_config
from mtpsurgeon.surgery.ir import Model, Tensor
from mtpsurgeon.surgery.ir.layers import Layers

_BLOCK_ROLES = ("q_proj", "q_norm", "o_proj", "gate_proj", "up_proj", "down_proj", "input_layernorm",
                "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm")
_TOP_ROLES = ("pre_projection", "post_projection", "lm_head", "final_norm")


def _fb_quantization(t: TensorRecord) -> Any:
    """Per-tensor, per-channel or blockwise parameters of ``t`` as a flatbuffer object (blockwise: scales linked later)."""
    q = t.quantization
    if q is None or q.is_empty or t.dtype.is_float:  # a float tensor's stray parameters mean nothing
        return None
    p = fb.QuantizationParametersT()
    if q.scheme == "blockwise":
        p.detailsType = fb.QuantizationDetails.BlockwiseQuantization
        p.details = fb.BlockwiseQuantizationT()
        p.details.blockSize = int(q.block_size)
        return p
    if q.scheme not in ("per-tensor", "per-channel"):
        raise SurgeryError(f"'{t.name}' has {q.scheme} quantization, which the rebuild cannot carry over")
    p.scale = np.asarray(q.scale, dtype=np.float32)
    p.zeroPoint = np.asarray(q.zero_point if q.zero_point is not None else [0] * len(q.scale), dtype=np.int64)
    p.quantizedDimension = int(q.quantized_dimension)
    return p


class StoredWeights:
    """Constants copied by reference (zero-copy) from the tensors a model already holds."""

    def __init__(self, model: TFLiteModel, by_label: dict[str, TensorRecord]) -> None:
        self.model, self.by_label = model, by_label
        self.scale_tensors: list[TensorRecord] = []  #: blockwise scale tensors carried along

    def _copy(self, L: Layers, role: str, shape: list[int]) -> Tensor:
        t = self.by_label[role]
        out = L.graph.add_constant(L.name(t.name or param_name(role), exact=True), self.model.tensor_bytes(t),
                                   t.dtype.code, shape=shape, quantization=_fb_quantization(t))
        if t.quantization is not None and t.quantization.scheme == "blockwise":
            s = self.model.tensor(t.subgraph, t.quantization.block_scales_tensor)
            self.scale_tensors.append(s)
            out.block_scales = L.graph.add_constant(L.name(s.name, exact=True), self.model.tensor_bytes(s),
                                                    s.dtype.code, shape=list(s.shape))
        return out

    def matrix(self, L: Layers, role: str) -> Tensor:
        return self._copy(L, role, list(self.by_label[role].shape))

    def norm(self, L: Layers, role: str) -> Tensor:
        return self._copy(L, role, [1, 1, self.by_label[role].num_elements])

    def lm_head(self, L: Layers, softcap: float | None) -> Tensor:
        return self.matrix(L, "lm_head")  # stored as the converter left it: 1/cap already folded in

    def value(self, role: str) -> np.ndarray:
        return self.model.tensor_array(self.by_label[role])


def _text(config: dict | None) -> dict:
    return {} if config is None else (config.get("text_config") or config)


def _architecture(rm: RoleMap, config: dict | None, notes: list[str]) -> tuple[float, float | None, int | None]:
    """(eps, softcap, sliding window): config.json first, then the leftover constants, then Gemma 4's epsilon."""
    text, arch = _text(config), rm.arch

    def pick(key: str, arch_key: str, what: str):
        if text.get(key) is not None:  # null (transformers' assistant does not soft-cap) leaves the file's value
            notes.append(f"{what} {text[key]} from config.json")
            return text[key]
        if arch.get(arch_key) is not None:
            notes.append(f"{what} {arch[arch_key]:g} from the constants left in the file")
        return arch.get(arch_key)

    eps = pick("rms_norm_eps", "eps", "RMS-norm epsilon")
    if eps is None:
        eps = 1e-6
        notes.append("RMS-norm epsilon not found in the file: 1e-6 (Gemma 4's)")
    softcap = pick("final_logit_softcapping", "softcap", "logit soft-cap")
    if softcap is None:
        notes.append("no soft-cap: logits are not capped (greedy top-1 is unaffected)")
    window = pick("sliding_window", "sliding_window", "sliding window")
    if window is None and arch.get("position_mask"):
        raise SurgeryError("the file computed a window mask but its width cannot be read from the constants left "
                           "— pass the assistant's config.json with --config")
    return float(eps), None if softcap is None else float(softcap), None if window is None else int(window)


def _rope(weights: StoredWeights, config: dict | None, head_dim: int, kind: str, layer: int) -> RopeSpec | None:
    """RoPE of one block: the one stored table of its width, else config.json's, else none (no table stored)."""
    tables = [weights.value(label).reshape(-1) for label in weights.by_label if label.startswith("rope_table")]
    fits = [v for v in tables if v.size == head_dim // 2]
    if len(fits) == 1:
        return RopeSpec(theta=0.0, table=tuple(float(x) for x in fits[0]))
    if tables:
        raise SurgeryError(f"block {layer}: {len(fits)} stored RoPE tables of width {head_dim // 2}; "
                           "cannot tell which it uses")
    r = (_text(config).get("rope_parameters") or {}).get(kind)
    refused = buildable.rope_checks({"rope_parameters": {kind: r}}) if r else []
    if refused:
        c = refused[0]
        raise SurgeryError(f"config.json {c.name} is {c.actual}; the rebuild emits {c.expected} only")
    rope = rope_from_config(r, kind) if r else None
    return None if rope is None or rope.is_identity(head_dim) else rope


def _activation(blocks: list, config: dict | None, notes: list[str]) -> str:
    """The MLP gate's non-linearity: the graph's (live operators), else config.json's, else Gemma 4's tanh-GELU."""
    seen = sorted({b.activation for b in blocks if b.activation})
    if len(seen) > 1:
        raise SurgeryError(f"the drafter's MLP gates apply different non-linearities {seen}; one is emitted")
    name = seen[0] if seen else _text(config).get("hidden_activation")
    if name is None:
        return buildable.ACTIVATIONS[buildable.DEFAULT_ACTIVATION]
    if name not in buildable.ACTIVATIONS:
        raise SurgeryError(f"MLP gate non-linearity {str(name)[:40]!r}: the rebuild emits "
                           f"{' / '.join(buildable.ACTIVATIONS)} only")
    if not seen:
        notes.append(f"MLP gate non-linearity {name} from config.json")
    return buildable.ACTIVATIONS[name]


def spec_from_roles(model: TFLiteModel, rm: RoleMap, config: dict | None = None) -> tuple[DrafterSpec, StoredWeights, list[str]]:
    """The drafter's semantic description and its stored weights; raises listing every missing role."""
    tensors = model.subgraphs[rm.subgraph].tensors
    by_label: dict[str, TensorRecord] = {}
    for i, role in rm.roles.items():
        label = role.label if role.kind != "rope_table" else f"rope_table.{i}"  # one per stored table
        by_label[label] = tensors[i]
    blocks = sorted(rm.blocks, key=lambda b: b.index)
    missing = [r for r in _TOP_ROLES if r not in by_label]
    missing += [f"layers.{b.index}.{r}" for b in blocks for r in _BLOCK_ROLES if f"layers.{b.index}.{r}" not in by_label]
    missing += [f"block {b.index}: {what}" for b in blocks for what, v in
                (("heads", b.heads), ("head_dim", b.head_dim), ("layer type", b.layer_type)) if not v]
    if not blocks:
        missing.append("no attention blocks")
    if missing:
        raise SurgeryError(f"the drafter cannot be rebuilt: missing {', '.join(missing)}")
    notes: list[str] = []
    weights = StoredWeights(model, by_label)
    eps, softcap, window = _architecture(rm, config, notes)
    specs = []
    for b in blocks:
        scalar = f"layers.{b.index}.layer_scalar"
        specs.append(BlockSpec(b.index, b.layer_type, int(b.heads), int(b.head_dim),
                               _rope(weights, config, int(b.head_dim), b.layer_type, b.index),
                               window if b.layer_type == "sliding_attention" else None,
                               float(weights.value(scalar).reshape(-1)[0]) if scalar in by_label else 1.0))
    unscaled = [b.index for b in specs if f"layers.{b.index}.layer_scalar" not in by_label]
    if unscaled:
        notes.append(f"no layer scalar recognised for blocks {unscaled}: 1.0 (none is applied)")
    if all(b.rope is None for b in specs):
        notes.append("no RoPE tables stored and none configured: q is not rotated")
    head, gate = by_label["lm_head"], by_label[f"layers.{blocks[0].index}.gate_proj"]
    spec = DrafterSpec(hidden=head.shape[1], backbone_hidden=by_label["post_projection"].shape[0], vocab=head.shape[0],
                       intermediate=gate.shape[0], eps=eps, softcap=softcap, blocks=specs, source=model.label or "",
                       activation=_activation(blocks, config, notes))
    return spec, weights, notes


def rebuild_from_roles(model: TFLiteModel, rm: RoleMap, base: BaseDims,
                       config: dict | None = None) -> tuple[Model, list[TensorRecord], list[str]]:
    """Emit the drafter of ``rm`` with its stored weights; returns (IR, weights re-used, notes)."""
    spec, weights, notes = spec_from_roles(model, rm, config)
    iface, checks = drafter_interface(spec, base, None, None, notes)
    if iface is None:
        failed = "; ".join(f"{c.name}: expected {c.expected}, got {c.actual}" for c in checks if not c.passed)
        raise SurgeryError(f"the drafter does not fit the base model: {failed}")
    ir = emit_drafter(spec, iface, weights=weights)
    ir.description = "mtpsurgeon restore (pruned drafter rebuilt)"
    return ir, list(weights.by_label.values()) + weights.scale_tensors, notes
