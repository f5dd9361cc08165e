"""MTP findings: what is there, what is hidden where, and with what evidence."""
from __future__ import annotations

from dataclasses import dataclass, field

from mtpsurgeon.analysis.drafter import DrafterMatch
from mtpsurgeon.analysis.links import LinkCheck
from mtpsurgeon.formats.tflite.records import TensorRecord

#: Kinds of hiding place; each names the restore transformation that undoes it.
HIDING_KINDS = {
    "section_missing": "graft a drafter section (restore --drafter FILE)",
    "section_untagged": "re-tag the section as tf_lite_mtp_drafter",
    "section_mistagged": "re-tag the section as tf_lite_mtp_drafter",
    "no_signature": "re-expose the subgraph through an 'mtp_drafter' SignatureDef",
    "pruned_ops": "rebuild the drafter from its stored weights, placed by their recognised roles",
    "parallel_heads_pruned": "rebuild the parallel heads' operators from the built-in recipe",
    "named_orphans": "describe their layout in a recipe file (restore --recipe FILE), or extract them (extract --orphans)",
}


@dataclass
class Finding:
    """One MTP-related fact about the file."""

    kind: str  #: a HIDING_KINDS key, or 'drafter_section', 'drafter_model', 'parallel_heads', 'mtp_ready_base'
    hidden: bool
    where: str
    confidence: str
    evidence: list[str]
    section: int | None = None
    subgraph: int | None = None
    drafter: DrafterMatch | None = None
    tensors: list[TensorRecord] = field(default_factory=list)
    links: list[LinkCheck] = field(default_factory=list)
    dims: dict = field(default_factory=dict)

    @property
    def links_pass(self) -> bool:
        return all(c.passed for c in self.links)

    @property
    def remedy(self) -> str | None:
        return HIDING_KINDS.get(self.kind)

    def to_json(self) -> dict:
        out = {
            "kind": self.kind,
            "hidden": self.hidden,
            "where": self.where,
            "section": self.section,
            "subgraph": self.subgraph,
            "confidence": self.confidence,
            "evidence": self.evidence,
            "remedy": self.remedy,
            "tensors": [{"subgraph": t.subgraph, "index": t.index, "name": t.name} for t in self.tensors],
            "links": [c.to_json() for c in self.links],
            "dims": self.dims,
        }
        if self.drafter is not None:
            io = self.drafter.io
            out["interface"] = {
                "source": io.source,
                "inputs": {n: {"shape": list(t.shape), "dtype": t.dtype.name} for n, t in io.inputs.items()},
                "outputs": {n: {"shape": list(t.shape), "dtype": t.dtype.name} for n, t in io.outputs.items()},
            }
        return out
