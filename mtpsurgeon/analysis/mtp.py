"""Turn per-model analyses into MTP findings and one verdict."""
from __future__ import annotations

from dataclasses import dataclass

from mtpsurgeon.analysis.dims import BaseDims
from mtpsurgeon.analysis.drafter import DrafterMatch
from mtpsurgeon.analysis.findings import Finding
from mtpsurgeon.analysis.links import link_checks
from mtpsurgeon.analysis.model_analysis import ModelAnalysis
from mtpsurgeon.formats.litertlm.schema import MTP_DRAFTER


@dataclass
class Verdict:
    """'ready', 'hidden', 'mismatched' or 'absent', with a sentence and the fixing command.

    ``mismatched``: a drafter the runtime would use (tagged section or
    standalone model) that fails the link checks against the base. ``fix`` is
    set only to a command that would succeed as printed.
    """

    status: str
    summary: str
    fix: str | None

    def to_json(self) -> dict:
        return {"verdict": self.status, "summary": self.summary, "fix": self.fix}


def _drafter_finding(ma: ModelAnalysis, d: DrafterMatch, base: BaseDims | None) -> Finding:
    sec = ma.section
    links = link_checks(d, base) if base is not None else []
    where = ma.where if d.io.signature_key else f"{ma.where}, subgraph {d.io.subgraph}"
    evidence = list(d.evidence)
    if d.io.signature_key is None:
        kind = "no_signature"
        evidence.insert(0, f"subgraph {d.io.subgraph} has drafter I/O but no signature reaches it")
    elif sec is None:
        kind = "drafter_model"
    elif sec.model_type == MTP_DRAFTER:
        kind = "drafter_section"
        evidence.insert(0, f"section model_type '{MTP_DRAFTER}'")
    elif sec.model_type is None:
        kind = "section_untagged"
        evidence.insert(0, "section has no model_type item, so the runtime ignores it")
    else:
        kind = "section_mistagged"
        evidence.insert(0, f"section is tagged '{sec.model_type}' instead of '{MTP_DRAFTER}'")
    hidden = kind not in ("drafter_section", "drafter_model")
    return Finding(kind, hidden, where, d.confidence, evidence, section=ma.section_index, subgraph=d.io.subgraph,
                   drafter=d, links=links)


def collect_findings(models: list[ModelAnalysis], base: BaseDims | None, is_container: bool,
                     addable: Finding | None = None) -> list[Finding]:
    """Findings in file order: drafters, pruned weights, parallel heads, missing drafter; ``addable``
    (:mod:`~mtpsurgeon.analysis.mtp_addable`) when the base lacks verify/activations and nothing else is there."""
    findings: list[Finding] = []
    for ma in models:
        for d in ma.drafters:
            findings.append(_drafter_finding(ma, d, base))
        for tie in ma.ties:
            kind = {"pruned_drafter": "pruned_ops", "parallel_heads": "parallel_heads_pruned"}.get(tie.kind, tie.kind)
            evidence = list(tie.evidence)
            if ma.section is not None and ma.section.model_type:
                evidence.append(f"section model_type '{ma.section.model_type}'")
            findings.append(Finding(kind, True, f"{ma.where}, subgraph {tie.subgraph}", tie.confidence, evidence,
                                    section=ma.section_index, subgraph=tie.subgraph, tensors=list(tie.tensors), dims=tie.dims))
        heads = ma.live_heads()
        if heads:
            findings.append(Finding("parallel_heads", False, ma.where, "high",
                                    [f"signature outputs {', '.join(heads)} predict tokens beyond the next"], section=ma.section_index))
    drafterish = {"drafter_section", "section_untagged", "section_mistagged", "no_signature", "pruned_ops", "drafter_model"}
    if addable is not None and not any(f.kind in drafterish for f in findings):
        findings.append(addable)
    if base is not None and base.has_verify and not any(f.kind in drafterish for f in findings):
        evidence = ["the base model has a 'verify' signature"]
        if base.activations_outputs:
            evidence.append(f"and 'activations' outputs in {', '.join(repr(k) for k in base.activations_outputs)}")
        if is_container:
            # Nothing is hidden in the file (the drafter is not in it), but restore can graft one.
            findings.append(Finding("section_missing", False, "container", "medium",
                                    evidence + [f"but no '{MTP_DRAFTER}' section or drafter-shaped model exists"]))
        else:
            findings.append(Finding("mtp_ready_base", False, base.label, "high",
                                    evidence + ["the drafter is not in this file (it ships as a separate container section)"]))
    return findings


def verdict(findings: list[Finding], path: str, is_container: bool) -> Verdict:
    """Summarise findings: ready / hidden (where, how) / absent, with the fixing command."""
    hidden = [f for f in findings if f.hidden]
    if hidden:
        f = hidden[0]
        fix = f"mtpsurgeon restore {path}"
        if f.kind == "section_missing":
            fix += " --drafter DRAFTER.tflite"
        fix += f" -o {_restored_name(path)}"
        where = "; ".join(f"{h.kind} at {h.where}" for h in hidden)
        failing = [c.name for h in hidden for c in h.links if not c.passed]
        if failing:  # restore would refuse: no fix line
            return Verdict("hidden", f"MTP is hidden: {where} — {f.remedy}; but link checks fail ({', '.join(failing)}), "
                           "so restore refuses it", None)
        return Verdict("hidden", f"MTP is hidden: {where} — {f.remedy}", fix)
    ready = [f for f in findings if f.kind in ("drafter_section", "drafter_model", "parallel_heads")]
    broken = [f for f in ready if not f.links_pass]
    if ready and not broken:
        if ready[0].kind == "drafter_model":
            return Verdict("ready", f"standalone drafter at {ready[0].where}; pack it with a base model to use it",
                           f"mtpsurgeon restore BASE.litertlm --drafter {path} -o BASE-mtp.litertlm")
        return Verdict("ready", "speculative decoding is ready: " + "; ".join(f"{f.kind} at {f.where}" for f in ready), None)
    if broken:
        failed = [c.name for f in broken for c in f.links if not c.passed]
        return Verdict("mismatched", f"a drafter is present but does not fit the base model: {', '.join(failed)}", None)
    if any(f.kind == "section_missing" for f in findings):
        return Verdict("absent", "no drafter in this container, but its base model is MTP-ready (verify signature, "
                       "activations outputs): graft a drafter section", f"mtpsurgeon restore {path} --drafter DRAFTER.tflite "
                       f"-o {_restored_name(path)}")
    if any(f.kind == "mtp_addable" for f in findings):
        if is_container:
            return Verdict("absent", "no drafter, and the base model lacks 'verify'/'activations', but MTP can be added: "
                           "build a drafter from an assistant checkpoint that fits (see mtp_addable)",
                           f"mtpsurgeon build-drafter CHECKPOINT --base {path} -o {_restored_name(path)}")
        return Verdict("absent", "no drafter, and the base model lacks 'verify'/'activations', but they can be added "
                       "(see mtp_addable)", f"mtpsurgeon enable-mtp {path} -o {_restored_name(path)}")
    if any(f.kind == "mtp_ready_base" for f in findings):
        return Verdict("absent", "no drafter in this file, but the base model is MTP-ready (verify signature, activations outputs)", None)
    return Verdict("absent", "no MTP drafter, heads or orphaned MTP weights found", None)


def _restored_name(path: str) -> str:
    stem, dot, ext = path.rpartition(".")
    return f"{stem}-mtp.{ext}" if dot else f"{path}-mtp"
