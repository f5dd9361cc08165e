"""Everything analysis knows about one TFLite model (a file or a section)."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from mtpsurgeon.analysis.dims import BaseDims
from mtpsurgeon.analysis.drafter import DrafterMatch, find_drafters
from mtpsurgeon.analysis.orphans import Orphans, find_orphans
from mtpsurgeon.analysis.reachability import reachable_subgraphs, unsigned_subgraphs
from mtpsurgeon.analysis.roles.from_dataflow import recognise
from mtpsurgeon.analysis.roles.from_shapes import recognise_pruned
from mtpsurgeon.analysis.roles.leftovers import apply_leftovers, read_leftovers
from mtpsurgeon.analysis.roles.model import Role, RoleMap
from mtpsurgeon.analysis.ties import Tie, tie_named_orphans, tie_parallel_heads, tie_pruned_drafter
from mtpsurgeon.analysis.weights import weight_tensors
from mtpsurgeon.formats.litertlm.reader import SectionRecord
from mtpsurgeon.formats.tflite import TFLiteModel
from mtpsurgeon.formats.tflite.records import TensorRecord

_HEAD_OUTPUT = re.compile(r"mtp.*logits|logits.*mtp|draft.*logits", re.IGNORECASE)


@dataclass
class ModelAnalysis:
    """Orphans, reachability and MTP structure of one model."""

    model: TFLiteModel
    section: SectionRecord | None
    orphans: Orphans
    reached: dict[int, str]
    drafters: list[DrafterMatch] = field(default_factory=list)
    ties: list[Tie] = field(default_factory=list)
    roles: dict[int, RoleMap] = field(default_factory=dict)  #: subgraph → roles of its drafter weights

    @property
    def section_index(self) -> int | None:
        return None if self.section is None else self.section.index

    @property
    def where(self) -> str:
        if self.section is None:
            return "model"
        return f"section {self.section.index} ({self.section.model_type or 'untagged'})"

    def role_of(self, t: TensorRecord) -> Role | None:
        """The drafter role of tensor ``t``, if a recogniser assigned one."""
        rm = self.roles.get(t.subgraph)
        return None if rm is None else rm.roles.get(t.index)

    def live_heads(self) -> list[str]:
        """Signature outputs that look like live parallel MTP heads."""
        return sorted({n for s in self.model.signatures for n, _ in s.outputs if _HEAD_OUTPUT.search(n)})

    def mtp_tensor_keys(self) -> set[tuple[int, int]]:
        """(subgraph, tensor) of every tensor tied to an MTP component."""
        keys = {(t.subgraph, t.index) for tie in self.ties for t in tie.tensors}
        for d in self.drafters:
            keys.update((t.subgraph, t.index) for t in weight_tensors(self.model, d.io.subgraph))
        for rm in self.roles.values():  # learned scalars (layer_scalar) are weights too
            keys.update((rm.subgraph, t) for t in rm.roles)
        return keys


def analyze_model(model: TFLiteModel, section: SectionRecord | None, base: BaseDims | None) -> ModelAnalysis:
    """Run every per-model pass; ``base`` holds the base model's dims when known."""
    hidden = base.hidden if base is not None else None
    reached = reachable_subgraphs(model)
    orphans = find_orphans(model, reached)
    ma = ModelAnalysis(model, section, orphans, reached)
    ma.drafters = find_drafters(model, unsigned_subgraphs(model, reached), base.kv if base is not None else None)
    drafter_subgraphs = {d.io.subgraph for d in ma.drafters}
    for d in ma.drafters:
        ma.roles.setdefault(d.io.subgraph, recognise(model, d.io))
    ties = [t for t in tie_pruned_drafter(model, orphans, hidden) if t.subgraph not in drafter_subgraphs]
    claimed = {t.subgraph for t in ties} | drafter_subgraphs
    ties += tie_parallel_heads(model, orphans, hidden, claimed)
    ma.ties = ties + tie_named_orphans(orphans, claimed | {t.subgraph for t in ties})
    for tie in ma.ties:
        if tie.kind == "pruned_drafter" and tie.subgraph not in ma.roles:
            rm = recognise_pruned(list(tie.tensors), tie.subgraph, tie.dims["D"], tie.dims["H"],
                                  base.vocab if base is not None else None, base.kv_heads if base is not None else None,
                                  model)
            left = read_leftovers(model, [t for t in tie.tensors if t.index not in rm.roles],  # the drafter's, not a
                                  base.cache_len if base is not None else None)           # live graph's constants
            apply_leftovers(model, rm, left)
            ma.roles[tie.subgraph] = rm
    return ma
