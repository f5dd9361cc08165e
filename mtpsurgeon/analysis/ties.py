"""Tie orphan tensors to MTP roles by name and by shape relations."""
from __future__ import annotations

import re
from dataclasses import dataclass

from mtpsurgeon.analysis.orphans import Orphans
from mtpsurgeon.analysis.roles.names import name_role
from mtpsurgeon.formats.tflite import TFLiteModel
from mtpsurgeon.formats.tflite.records import TensorRecord

MTP_NAME = re.compile(r"mtp|drafter|assistant|nextn|pre_projection|post_projection", re.IGNORECASE)


@dataclass(frozen=True)
class Tie:
    """A group of orphan tensors that together look like one MTP component."""

    kind: str  #: 'pruned_drafter' or 'parallel_heads'
    subgraph: int
    tensors: tuple[TensorRecord, ...]
    evidence: tuple[str, ...]
    confidence: str
    dims: dict


def _by_subgraph(orphans: Orphans) -> dict[int, list[TensorRecord]]:
    groups: dict[int, list[TensorRecord]] = {}
    for t in orphans.tensors:
        groups.setdefault(t.subgraph, []).append(t)
    return groups


def _vector_of(t: TensorRecord, n: int) -> bool:
    """[n], [1, n] or [1, 1, n]: a per-feature vector such as a norm weight."""
    return bool(t.shape) and t.shape[-1] == n and all(d == 1 for d in t.shape[:-1])


def _named(ts: list[TensorRecord]) -> list[TensorRecord]:
    return [t for t in ts if MTP_NAME.search(t.name)]


def _projection_pairs(mats: list[TensorRecord], hidden: int | None) -> list[tuple]:
    """(pre, post, D, H) candidates, best first: projection names, one-of-a-kind shapes, then the widest 2H."""
    by_shape: dict[tuple[int, ...], list[TensorRecord]] = {}
    for t in mats:  # indexed by shape: linear in the orphans, not quadratic
        by_shape.setdefault(tuple(t.shape), []).append(t)
    pairs = []
    for pre in mats:
        d, two_h = pre.shape
        if two_h % 2 or (hidden is not None and two_h != 2 * hidden):
            continue
        pairs.extend((pre, post, d, two_h // 2) for post in by_shape.get((two_h // 2, d), ()) if post is not pre)

    def score(p: tuple) -> tuple[int, int, int]:
        # names as supporting evidence, then distinct shapes (a projection pair is one of a kind
        # while per-block matrices repeat), then the widest 2H
        named = (name_role(p[0].name) == "pre_projection") + (name_role(p[1].name) == "post_projection")
        distinct = (len(by_shape[tuple(p[0].shape)]) == 1) + (len(by_shape[tuple(p[1].shape)]) == 1)
        return named, distinct, p[3]

    return sorted(pairs, key=score, reverse=True)


def tie_pruned_drafter(model: TFLiteModel, orphans: Orphans, hidden: int | None) -> list[Tie]:
    """Find a pre-projection [D, 2H] / post-projection [H, D] pair among orphans."""
    ties = []
    for sg, ts in _by_subgraph(orphans).items():
        pairs = _projection_pairs([t for t in ts if len(t.shape) == 2], hidden)
        if not pairs:
            continue
        pre, post, d, h = pairs[0]
        evidence = [f"'{pre.name}' {list(pre.shape)} = pre-projection [D, 2H] and '{post.name}' {list(post.shape)} = post-projection [H, D] with D={d}, H={h}"]
        if hidden is not None:
            evidence.append(f"H={h} equals the base model's hidden size")
        elif len(pairs) > 1:
            evidence.append(f"{len(pairs)} shape pairs fit; chose the one named like a projection, else the one-of-a-kind shapes, else the widest")
        no_ops = not model.subgraphs[sg].operators
        if no_ops:
            members = ts
            evidence.append(f"subgraph {sg} has no operators left: all {len(ts)} weight tensors belong to the pruned graph")
        else:  # the orphans that carry D or an MTP name, and the orphans the table holds among them
            core = [t.index for t in ts if d in t.shape or MTP_NAME.search(t.name)]
            members = [t for t in ts if core and min(core) <= t.index <= max(core)]
            if len(members) > len(core):
                evidence.append(f"{len(members) - len(core)} more orphans lie among them in the tensor table")
        named = _named(members)
        if named:
            evidence.append(f"{len(named)} tensor names mention MTP/drafter roles")
        confidence = "high" if (named or hidden is not None) else "medium"
        ties.append(Tie("pruned_drafter", sg, tuple(members), tuple(evidence), confidence, {"D": d, "H": h}))
    return ties


def tie_parallel_heads(model: TFLiteModel, orphans: Orphans, hidden: int | None, claimed: set[int]) -> list[Tie]:
    """Find k projections [H, H] with k norms [H] among orphans (heads on the final hidden state)."""
    if hidden is None:
        return []
    ties = []
    for sg, ts in _by_subgraph(orphans).items():
        if sg in claimed or not model.subgraphs[sg].operators:
            continue
        proj = [t for t in ts if t.shape == (hidden, hidden)]
        norms = [t for t in ts if _vector_of(t, hidden)]
        if not proj or len(norms) < len(proj):
            continue
        members = proj + norms
        evidence = [
            f"{len(proj)} orphan projection(s) [H, H] and {len(norms)} orphan norm weight(s) [H] with H={hidden} (the base hidden size)",
            "the subgraph still computes logits, so these are heads on the final hidden state whose operators were pruned",
        ]
        named = _named(members)
        if named:
            evidence.append(f"{len(named)} tensor names mention MTP roles")
        ties.append(Tie("parallel_heads", sg, tuple(members), tuple(evidence), "high" if named else "medium",
                        {"H": hidden, "heads": len(proj)}))
    return ties


def tie_named_orphans(orphans: Orphans, claimed: set[int]) -> list[Tie]:
    """Orphans whose names say MTP/drafter but whose shapes match no known layout."""
    ties = []
    for sg, ts in _by_subgraph(orphans).items():
        named = _named(ts)
        if sg in claimed or not named:
            continue
        ties.append(Tie("named_orphans", sg, tuple(named), (
            f"{len(named)} orphan tensor(s) named like MTP/drafter weights: " + ", ".join(t.name for t in named[:4])
            + (" …" if len(named) > 4 else ""),
            "their shapes match no built-in layout (drafter pre/post projection, parallel heads)",
        ), "low", {}))
    return ties
