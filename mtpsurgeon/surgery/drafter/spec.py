"""One semantic description of the Gemma 4 assistant drafter, read from a Hugging Face checkpoint.

:class:`DrafterSpec` is the architecture (``config.json`` of transformers'
``gemma4_assistant``) plus its weights keyed by the role vocabulary of
:mod:`mtpsurgeon.analysis.roles.model` (``pre_projection``,
``layers.2.q_proj``, ``final_norm``, ...). The emitter
(:mod:`mtpsurgeon.surgery.drafter.emit`) turns it into a LiteRT graph.

    spec = load_spec("gemma-4-e4b-it-assistant/")
    spec.blocks[3].head_dim, spec.weights["lm_head"].shape
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mtpsurgeon.analysis.links import LinkCheck
from mtpsurgeon.analysis.roles.model import LAYER_ROLES, TOP_ROLES
from mtpsurgeon.errors import MalformedFileError, UsageError
from mtpsurgeon.surgery.drafter import buildable, unified_assistant
from mtpsurgeon.formats.safetensors.reader import FLOAT_DTYPES, SafetensorsSet, safetensors_files
from mtpsurgeon.surgery.drafter.refusal import BuildRefused

#: Model types this module understands (the 12B's unified assistant shares the drafter layout).
MODEL_TYPES = ("gemma4_assistant", "gemma4_unified_assistant")
#: Roles that are matrices (quantizable), the rest are norms / scalars.
MATRIX_ROLES = frozenset({"pre_projection", "post_projection", "lm_head", "q_proj", "o_proj", "gate_proj", "up_proj",
                          "down_proj"})


@dataclass(frozen=True)
class RopeSpec:
    """RoPE applied to q at ``input_pos``: transformers' default or proportional inverse frequencies."""

    theta: float
    partial_rotary_factor: float = 1.0
    kind: str = "default"  #: 'default' or 'proportional'
    factor: float = 1.0
    table: tuple[float, ...] | None = None  #: stored inverse frequencies (a file's RoPE table), used as they are

    def inv_freq(self, head_dim: int) -> np.ndarray:
        """The head_dim/2 inverse frequencies (zeros for the non-rotated part of proportional RoPE)."""
        if self.table is not None:
            return np.asarray(self.table, dtype=np.float32)
        if self.kind == "proportional":
            angles = int(self.partial_rotary_factor * head_dim // 2)
            rot = 1.0 / (self.theta ** (np.arange(0, 2 * angles, 2, dtype=np.float32) / head_dim))
            inv = np.concatenate([rot, np.zeros(head_dim // 2 - angles, np.float32)])
        else:
            inv = 1.0 / (self.theta ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
        return (inv / self.factor).astype(np.float32)

    def is_identity(self, head_dim: int) -> bool:
        """No frequency rotates (e.g. proportional RoPE with ``partial_rotary_factor`` 0): q is left as it is.

        Decided without building the table (``head_dim`` comes from a config and may be absurd): the first
        computed frequency is 1/factor, never zero, so only a stored table or no rotated angle at all is identity.
        """
        if self.table is not None:
            return not any(self.table)
        return self.kind == "proportional" and int(self.partial_rotary_factor * head_dim // 2) == 0


@dataclass(frozen=True)
class BlockSpec:
    """One q-only attention block reading the base's KV cache of its layer type."""

    index: int
    layer_type: str  #: 'sliding_attention' or 'full_attention'
    heads: int
    head_dim: int
    rope: RopeSpec | None
    sliding_window: int | None
    layer_scalar: float = 1.0
    kv_heads: int | None = None  #: config.json's num_key_value_heads (checked against the base's caches)


class CheckpointWeights(MutableMapping):
    """Role label → float32 array, read from the checkpoint when asked for.

    Nothing is held: each access reads the tensor afresh (a new array the caller
    may change in place), so building a drafter keeps one float32 tensor in
    memory at a time, not the whole checkpoint. Arrays set explicitly are kept.
    """

    def __init__(self) -> None:
        self._src: dict[str, tuple[SafetensorsSet, str, tuple[int, ...]]] = {}
        self._set: dict[str, np.ndarray] = {}

    def add(self, label: str, st: SafetensorsSet, name: str, shape: tuple[int, ...]) -> None:
        self._src[label] = (st, name, shape)

    def numel(self, label: str) -> int:
        return int(self._set[label].size) if label in self._set else int(np.prod(self._src[label][2]))

    def __getitem__(self, label: str) -> np.ndarray:
        if label in self._set:
            return self._set[label]
        st, name, shape = self._src[label]
        return st.float32(name).reshape(shape)

    def __setitem__(self, label: str, value: np.ndarray) -> None:
        self._set[label] = value

    def __delitem__(self, label: str) -> None:
        if label not in self._set and label not in self._src:
            raise KeyError(label)
        self._set.pop(label, None)
        self._src.pop(label, None)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._src, *self._set]))

    def __len__(self) -> int:
        return len(set(self._src) | set(self._set))


@dataclass
class DrafterSpec:
    """Architecture and role-keyed float32 weights of one assistant drafter."""

    hidden: int  #: D, the drafter's width
    backbone_hidden: int  #: H, the base model's width
    vocab: int
    intermediate: int
    eps: float
    softcap: float | None
    blocks: list[BlockSpec]
    activation: str = "gelu_tanh"  #: the MLP gate's non-linearity (:data:`buildable.ACTIVATIONS` values)
    weights: MutableMapping[str, np.ndarray] = field(default_factory=dict)  #: role label → float32 array
    source: str = ""
    notes: list[str] = field(default_factory=list)
    parameter_count: int = 0  #: kept when ``weights`` are released after emission

    def weight(self, kind: str, layer: int | None = None) -> np.ndarray:
        return self.weights[kind if layer is None else f"layers.{layer}.{kind}"]

    @property
    def parameters(self) -> int:
        w = self.weights
        count = sum(w.numel(k) if isinstance(w, CheckpointWeights) else int(w[k].size) for k in w)
        return int(count) or self.parameter_count


def read_config(path: str | os.PathLike) -> dict:
    try:
        cfg = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise MalformedFileError(path, f"cannot read the config ({exc})") from None
    except json.JSONDecodeError as exc:
        raise MalformedFileError(path, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(cfg, dict):
        raise MalformedFileError(path, "config.json is not a JSON object")
    _check_structure(cfg, path)
    return cfg


#: Fields read as integers / as finite numbers: top level, text_config, each rope_parameters entry.
_INTEGERS = {"": ("backbone_hidden_size",),
             "text_config": ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                             "num_key_value_heads", "head_dim", "global_head_dim", "vocab_size", "sliding_window"),
             "rope": ()}
_NUMBERS = {"": (), "text_config": ("rms_norm_eps", "final_logit_softcapping"),
            "rope": ("rope_theta", "partial_rotary_factor", "factor")}


def _check_structure(cfg: dict, path: str | os.PathLike) -> None:
    """The nesting and number fields as transformers writes them, or exit 2 naming the field."""
    def numbers(obj: dict, part: str, prefix: str) -> None:
        for k in (*_INTEGERS[part], *_NUMBERS[part]):
            v = obj.get(k)
            if v is None:
                continue
            whole = k in _INTEGERS[part]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (
                    whole and not float(v).is_integer()):
                raise MalformedFileError(path, f"{prefix}{k} is {str(v)[:40]!r}, not "
                                               f"{'an integer' if whole else 'a finite number'}")

    text = cfg.get("text_config") or cfg
    if not isinstance(text, dict):
        raise MalformedFileError(path, "text_config is not a JSON object")
    numbers(cfg, "", "")
    numbers(text, "text_config", "text_config." if text is not cfg else "")
    for key in ("rope_parameters", "per_layer_config"):
        value = text.get(key)
        if value is None:
            continue
        if not isinstance(value, dict) or not all(isinstance(v, dict) or v is None for v in value.values()):
            raise MalformedFileError(path, f"{key} is not a JSON object of objects")
        for name, entry in value.items():
            numbers(entry or {}, "rope" if key == "rope_parameters" else "text_config", f"{key}.{str(name)[:40]}.")


def rope_from_config(r: dict, kind: str) -> RopeSpec:
    """One layer type's ``rope_parameters`` entry (Gemma 4's theta for the type when absent).

    ``{"rope_type": "proportional", "partial_rotary_factor": 0.0}`` is transformers' way to say "no RoPE"
    (:meth:`RopeSpec.is_identity`); the builders then emit no rotation at all. As in transformers,
    ``default`` ignores ``factor`` and ``partial_rotary_factor``, ``linear`` divides the default frequencies by
    ``factor``; other types are refused before this is called (:mod:`~mtpsurgeon.surgery.drafter.buildable`).
    """
    rope_type = r.get("rope_type", "default")
    proportional = rope_type == "proportional"
    return RopeSpec(theta=float(r.get("rope_theta", 1e6 if kind == "full_attention" else 1e4)),
                    partial_rotary_factor=float(r.get("partial_rotary_factor", 1.0)) if proportional else 1.0,
                    kind="proportional" if proportional else "default",
                    factor=float(r.get("factor", 1.0)) if rope_type in ("linear", "proportional") else 1.0)


def _blocks(text: dict, where: str, rope_on: bool, tensors: int) -> list[BlockSpec]:
    n = int(text["num_hidden_layers"])
    if not 0 < n <= tensors:  # every layer has a dozen tensors: a bound before any per-layer list is made
        raise MalformedFileError(where, f"num_hidden_layers is {n}, for a checkpoint of {tensors} tensors")
    types = list(text.get("layer_types") or buildable.default_layer_types(n))
    if len(types) != n:
        raise MalformedFileError(where, f"layer_types lists {len(types)} layers, num_hidden_layers is {n}")
    rope_cfg = text.get("rope_parameters") or {}
    window = text.get("sliding_window")
    per_layer = text.get("per_layer_config") or {}  # transformers >= 5.2x writes per-layer overrides here
    out = []
    for i, kind in enumerate(types):
        if kind not in ("sliding_attention", "full_attention"):
            raise MalformedFileError(where, f"layer_types[{i}] is '{kind}' (expected sliding_attention / full_attention)")
        full = kind == "full_attention"
        own = per_layer.get(str(i)) or per_layer.get(i) or {}
        hd = int(own.get("head_dim") or (text.get("global_head_dim") if full else None) or text["head_dim"])
        rope = rope_from_config(rope_cfg.get(kind) or {}, kind) if rope_on else None
        if rope is not None and rope.is_identity(hd):
            rope = None  # proportional RoPE rotating nothing: the graph gets no rotation
        kvh = own.get("num_key_value_heads") or text.get("num_key_value_heads")
        out.append(BlockSpec(i, kind, int(own.get("num_attention_heads") or text["num_attention_heads"]), hd, rope,
                             None if full or window is None else int(window), kv_heads=None if kvh is None else int(kvh)))
    return out


def load_spec(checkpoint: str | os.PathLike, config: str | os.PathLike | None = None, *,
              rope: bool = True) -> DrafterSpec:
    """Read a ``gemma4_assistant`` checkpoint (a folder, or one .safetensors file with ``config``).

    Every problem (missing tensors, non-float dtypes, shapes that disagree with
    the config) is collected and raised together as :class:`BuildRefused`.
    ``rope=False`` builds q without RoPE (drafters converted by litert-torch
    from modules that ignore ``input_pos``, like the test fixtures).
    """
    ck = Path(checkpoint)
    if ck.is_dir():
        files = safetensors_files(ck)
        cfg_path = Path(config) if config else ck / "config.json"
        if not files:
            raise UsageError(f"{ck}: no .safetensors files in this folder")
    elif ck.is_file():
        if config is None:
            raise UsageError(f"{ck}: a single .safetensors file needs --config CONFIG.json")
        files, cfg_path = [ck], Path(config)
    else:
        raise UsageError(f"{ck}: no such checkpoint folder or file")
    if not cfg_path.is_file():
        raise UsageError(f"{cfg_path}: no config.json (give --config)")
    cfg = read_config(cfg_path)
    mt = cfg.get("model_type")
    if mt not in MODEL_TYPES:
        raise MalformedFileError(cfg_path, f"model_type is {mt!r}, expected one of {', '.join(MODEL_TYPES)}")
    unified_notes: list[str] = []
    if mt == unified_assistant.MODEL_TYPE:
        cfg, unified_notes = unified_assistant.adapt(cfg)
    text = cfg.get("text_config") or cfg
    st = SafetensorsSet(files)
    unbuildable = buildable.config_checks(text)
    if unbuildable:
        raise BuildRefused(str(ck), unbuildable)
    try:
        blocks = _blocks(text, str(cfg_path), rope, len(st.names()))
        spec = DrafterSpec(hidden=int(text["hidden_size"]), backbone_hidden=int(cfg["backbone_hidden_size"]),
                           vocab=int(text["vocab_size"]), intermediate=int(text["intermediate_size"]),
                           eps=float(text.get("rms_norm_eps", 1e-6)), softcap=text.get("final_logit_softcapping"),
                           blocks=blocks, source=str(ck),
                           activation=buildable.ACTIVATIONS[text.get("hidden_activation", buildable.DEFAULT_ACTIVATION)])
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedFileError(cfg_path, f"config field missing or not a number: {exc}") from None
    if cfg.get("use_ordered_embeddings"):
        spec.notes.append("use_ordered_embeddings: the LiteRT drafter computes the full LM head "
                          "(transformers' centroid top-k masking approximates it for speed; not applied, so the "
                          "drafter's top-1 is the exact one over the whole vocabulary)")
    if mt == unified_assistant.MODEL_TYPE:
        spec.notes.append("gemma4_unified_assistant: gemma4_assistant's layers, the unified classes' config defaults"
                          + (": " + ", ".join(unified_notes) if unified_notes else ""))
    _load_weights(spec, st, cfg, text)
    return spec


def _expected(spec: DrafterSpec) -> dict[str, tuple[str, tuple[int, ...]]]:
    """role label → (transformers name, expected shape)."""
    D, H, V, I = spec.hidden, spec.backbone_hidden, spec.vocab, spec.intermediate
    out = {
        "pre_projection": (TOP_ROLES["pre_projection"], (D, 2 * H)),
        "post_projection": (TOP_ROLES["post_projection"], (H, D)),
        "lm_head": (TOP_ROLES["lm_head"], (V, D)),
        "final_norm": (TOP_ROLES["final_norm"], (D,)),
    }
    for b in spec.blocks:
        q = b.heads * b.head_dim
        shapes = {"q_proj": (q, D), "q_norm": (b.head_dim,), "o_proj": (D, q), "gate_proj": (I, D), "up_proj": (I, D),
                  "down_proj": (D, I), "input_layernorm": (D,), "post_attention_layernorm": (D,),
                  "pre_feedforward_layernorm": (D,), "post_feedforward_layernorm": (D,), "layer_scalar": (1,)}
        for kind, shape in shapes.items():
            out[f"layers.{b.index}.{kind}"] = (f"model.layers.{b.index}.{LAYER_ROLES[kind]}", shape)
    return out


def _load_weights(spec: DrafterSpec, st: SafetensorsSet, cfg: dict, text: dict) -> None:
    """Check every expected tensor (presence, dtype, shape) now; read their data only when emitted."""
    checks: list[LinkCheck] = []
    spec.weights = lazy = CheckpointWeights()
    head, head_why = buildable.lm_head_source(cfg, text, st.names())
    read: set[str] = set()
    for label, (name, shape) in _expected(spec).items():
        src = name
        if label == "lm_head":
            if head is None:
                checks.append(LinkCheck("LM head tensor present", False, head_why, "missing"))
                continue
            src = head
        read.add(src)
        if src not in st:
            if label.endswith("layer_scalar"):
                spec.notes.append(f"{name} absent: 1.0 (transformers' initial value)")
                continue
            checks.append(LinkCheck(f"tensor '{name}' present", False, list(shape), "missing"))
            continue
        dt = st.dtypes[src]
        if dt not in FLOAT_DTYPES:
            checks.append(LinkCheck(f"tensor '{src}' dtype", False, "F32, F16 or BF16", dt))
            continue
        got = st.shapes[src]
        if got != shape and not (len(shape) == 1 and int(np.prod(got)) == shape[0]):
            checks.append(LinkCheck(f"tensor '{src}' shape (config.json)", False, list(shape), list(got)))
            continue
        if label.endswith("layer_scalar"):
            spec.weights[label] = st.float32(src).reshape(shape)
        else:
            lazy.add(label, st, src, shape)
    if checks:
        raise BuildRefused(spec.source, checks)
    unread = buildable.unread_tensors(st.names(), read, cfg)
    if unread:
        spec.notes.append(f"{len(unread)} tensor(s) not read, as transformers' gemma4_assistant does not read them "
                          f"either: {', '.join(unread[:4])}{', ...' if len(unread) > 4 else ''}")
    for b in spec.blocks:
        w = spec.weights.pop(f"layers.{b.index}.layer_scalar", None)
        if w is not None:
            spec.blocks[b.index] = BlockSpec(**{**b.__dict__, "layer_scalar": float(w.reshape(-1)[0])})
