"""The role vocabulary of a Gemma-4-style MTP drafter, and what a recogniser returns.

A role is what a weight *does* in the drafter (the q projection of block 2,
the final norm, ...), independent of what the exporter called the tensor.
:attr:`Role.hf_name` is the matching parameter of transformers'
``gemma4_assistant``; roles with no such parameter (RoPE tables) have none.
"""
from __future__ import annotations

from dataclasses import dataclass, field

#: Per-block roles → transformers suffix under ``model.layers.N.``.
LAYER_ROLES: dict[str, str] = {
    "q_proj": "self_attn.q_proj.weight",
    "q_norm": "self_attn.q_norm.weight",
    "o_proj": "self_attn.o_proj.weight",
    "gate_proj": "mlp.gate_proj.weight",
    "up_proj": "mlp.up_proj.weight",
    "down_proj": "mlp.down_proj.weight",
    "input_layernorm": "input_layernorm.weight",
    "post_attention_layernorm": "post_attention_layernorm.weight",
    "pre_feedforward_layernorm": "pre_feedforward_layernorm.weight",
    "post_feedforward_layernorm": "post_feedforward_layernorm.weight",
    "layer_scalar": "layer_scalar",
}

#: Whole-drafter roles → transformers name.
TOP_ROLES: dict[str, str] = {
    "pre_projection": "pre_projection.weight",
    "post_projection": "post_projection.weight",
    "lm_head": "model.embed_tokens.weight",  # tied: the assistant's LM head is its embedding
    "final_norm": "model.norm.weight",
}

#: Roles that are constants of the computation, not learned parameters.
TABLE_ROLES = frozenset({"rope_table"})


@dataclass(frozen=True)
class Role:
    """What one stored weight does, and how that was decided."""

    kind: str  #: a LAYER_ROLES / TOP_ROLES key, or 'rope_table'
    layer: int | None
    evidence: str
    source: str = "dataflow"  #: 'dataflow', 'shape', 'name', 'values' or 'order' (tensor-table position)

    @property
    def hf_name(self) -> str | None:
        if self.kind in LAYER_ROLES and self.layer is not None:
            return f"model.layers.{self.layer}.{LAYER_ROLES[self.kind]}"
        return TOP_ROLES.get(self.kind)

    @property
    def label(self) -> str:
        return self.kind if self.layer is None else f"layers.{self.layer}.{self.kind}"

    def to_json(self) -> dict:
        return {"role": self.label, "hf_name": self.hf_name, "source": self.source, "evidence": self.evidence}


@dataclass
class BlockArch:
    """Attention facts of one drafter block, read off the graph."""

    index: int
    heads: int | None = None
    head_dim: int | None = None
    kv_heads: int | None = None
    kv_inputs: tuple[str, ...] = ()
    layer_type: str | None = None  #: 'sliding_attention' or 'full_attention'
    rope: dict | None = None  #: {'tables': n, 'theta': float | None, 'partial_rotary_factor'?}
    sliding_window: int | None = None  #: the window the graph's mask enforces (transformers' convention)
    intermediate: int | None = None
    activation: str | None = None  #: the MLP gate's non-linearity, transformers' name (None: not one operator)
    masked: bool | None = None  #: does the runtime's ``mask`` input reach this block's softmax?
    mask_fill: float | None = None  #: constant written over hidden keys' scores (-1e9 or so: they get no weight)
    head_kv: list[int] | None = None  #: the KV head each query head reads (GQA; None: one KV head or not followed)
    score_scale: float | None = None  #: constant the graph multiplies attention scores by (transformers: 1.0)

    def to_json(self) -> dict:
        return dict(self.__dict__, kv_inputs=list(self.kv_inputs))


@dataclass
class RoleMap:
    """Roles of one drafter's weights, the architecture they imply, and what is left."""

    subgraph: int
    method: str  #: 'dataflow' (live operators) or 'shapes' (pruned: shapes, base and names)
    roles: dict[int, Role] = field(default_factory=dict)  #: stored tensor index → role
    blocks: list[BlockArch] = field(default_factory=list)
    arch: dict = field(default_factory=dict)  #: hidden, backbone_hidden, vocab, softcap, ...
    unassigned: list[tuple[int, str]] = field(default_factory=list)  #: (tensor index, why)
    notes: list[str] = field(default_factory=list)

    def by_hf_name(self) -> dict[str, int]:
        return {r.hf_name: t for t, r in self.roles.items() if r.hf_name}

    def to_json(self) -> dict:
        return {
            "subgraph": self.subgraph,
            "method": self.method,
            "arch": self.arch,
            "blocks": [b.to_json() for b in self.blocks],
            "unassigned": [{"index": i, "why": why} for i, why in self.unassigned],
            "notes": self.notes,
        }
