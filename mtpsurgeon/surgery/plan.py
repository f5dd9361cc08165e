"""What `restore` will do, decided from the analysis before anything is written."""
from __future__ import annotations

from dataclasses import dataclass, field

from mtpsurgeon.analysis.findings import Finding
from mtpsurgeon.analysis.links import LinkCheck, link_checks
from mtpsurgeon.analysis.report import Report
from mtpsurgeon.errors import NothingToRestore, SurgeryError, UsageError
from mtpsurgeon.surgery.graft_drafter import DrafterSource, load_drafter

__all__ = ["NothingToRestore", "RestorePlan", "Step", "plan_restore"]


@dataclass
class Step:
    """One transformation: which finding it undoes and how."""

    kind: str  #: 'graft' | 'retag' | 'expose' | 'rebuild'
    description: str
    finding: Finding
    signature_name: str | None = None
    recipe: str | None = None


@dataclass
class RestorePlan:
    report: Report
    steps: list[Step]
    drafter: DrafterSource | None = None
    checks: list[LinkCheck] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{i + 1}. {s.description}" for i, s in enumerate(self.steps)]
        if self.checks:
            passed = sum(c.passed for c in self.checks)
            out.append(f"   drafter/base link checks: {passed}/{len(self.checks)} pass")
        for c in self.checks:
            if not c.passed:
                out.append(f"   FAIL: {c.name} (expected {c.expected}, got {c.actual})")
        out.extend(f"warning: {w}" for w in self.warnings)
        return out


def plan_restore(report: Report, *, drafter: str | None = None, signature_name: str | None = None,
                 recipe: str | None = None, force: bool = False) -> RestorePlan:
    """Map every hidden finding to a step; run the link gate (--force turns failures into warnings)."""
    path = report.file.path
    hidden = [f for f in report.findings if f.hidden or f.kind == "section_missing"]
    if not hidden:
        if report.verdict.status == "ready":
            raise NothingToRestore(f"{path}: nothing to restore — MTP is already ready ({report.verdict.summary})", True)
        raise NothingToRestore(f"{path}: nothing hidden to restore ({report.verdict.summary})", False)
    plan = RestorePlan(report, [])
    for f in hidden:
        if f.kind == "section_missing":
            if drafter is None:
                raise UsageError(f"{path}: the container has no drafter section; pass one with --drafter FILE.tflite|FILE.litertlm")
            plan.drafter = load_drafter(drafter)
            checks = link_checks(plan.drafter.match, report.base) if report.base else []
            plan.checks.extend(checks)
            plan.steps.append(Step("graft", f"graft {plan.drafter.label} as a new 'tf_lite_mtp_drafter' section", f))
        elif f.kind in ("section_untagged", "section_mistagged"):
            plan.checks.extend(f.links)
            plan.steps.append(Step("retag", f"re-tag {f.where} as 'tf_lite_mtp_drafter'", f))
        elif f.kind == "no_signature":
            key = "mtp_drafter" if f.drafter is not None else signature_name
            if key is None:
                raise UsageError(f"{path}: subgraph {f.subgraph} is not a recognised drafter; name its signature with --signature-name")
            plan.checks.extend(f.links)
            plan.steps.append(Step("expose", f"re-expose {f.where} through signature '{key}'", f, signature_name=key))
        elif f.kind in ("pruned_ops", "parallel_heads_pruned", "named_orphans"):
            from mtpsurgeon.surgery.recipe import default_recipe_for

            if f.kind == "named_orphans" and recipe is None:
                raise UsageError(f"{path}: {len(f.tensors)} orphan tensors at {f.where} are named like MTP weights but "
                                 "match no built-in layout; describe it in a recipe file and pass --recipe FILE")
            name = recipe or default_recipe_for(f.kind)
            plan.steps.append(Step("rebuild", f"rebuild the operators of {f.where} from recipe '{name}' "
                                              f"({len(f.tensors)} orphan weights)", f, recipe=name))
    failed = [c for c in plan.checks if not c.passed]
    if failed:
        message = "; ".join(f"{c.name}: expected {c.expected}, got {c.actual}" for c in failed)
        if not force:
            raise SurgeryError(f"{path}: drafter/base link checks failed: {message} (use --force to write anyway)")
        plan.warnings.append(f"link checks failed, writing anyway because of --force: {message}")
    return plan
