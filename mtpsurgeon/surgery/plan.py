"""What `restore` will do, decided from the analysis before anything is written."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from mtpsurgeon.analysis.findings import Finding
from mtpsurgeon.analysis.links import LinkCheck, link_checks
from mtpsurgeon.analysis.model_analysis import ModelAnalysis
from mtpsurgeon.analysis.report import Report
from mtpsurgeon.analysis.roles.model import RoleMap
from mtpsurgeon.errors import NothingToRestore, SurgeryError, UsageError
from mtpsurgeon.formats.litertlm.schema import MTP_DRAFTER
from mtpsurgeon.formats.tflite import TFLiteModel
from mtpsurgeon.surgery.graft_drafter import DrafterSource, load_drafter

__all__ = ["NothingToRestore", "RestorePlan", "Step", "plan_restore"]


@dataclass
class Step:
    """One transformation: which finding it undoes and how."""

    kind: str  #: 'graft' | 'retag' | 'expose' | 'rebuild'
    description: str
    finding: Finding
    signature_name: str | None = None
    recipe: str | None = None  #: a JSON recipe; None for a drafter rebuilt from its roles (``roles``)
    roles: RoleMap | None = None
    new_section: bool = False  #: the rebuilt drafter goes into a new section; the weights' section stays as it is


@dataclass
class RestorePlan:
    report: Report
    steps: list[Step]
    drafter: DrafterSource | None = None
    checks: list[LinkCheck] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refusal: str | None = None  #: why executing this plan is refused (link checks), None if it may run
    config: dict | None = None  #: a ``config.json`` whose architecture overrides the file's constants

    def lines(self) -> list[str]:
        out = [f"{i + 1}. {s.description}" for i, s in enumerate(self.steps)]
        if self.checks:
            passed = sum(c.passed for c in self.checks)
            out.append(f"   drafter/base link checks: {passed}/{len(self.checks)} pass")
        for c in self.checks:
            if not c.passed:
                out.append(f"   FAIL: {c.name} (expected {c.expected}, got {c.actual})")
        out.extend(f"warning: {w}" for w in self.warnings)
        if self.refusal:
            out.append(f"refused: {self.refusal}")
        return out

    def ensure_allowed(self) -> None:
        """Raise the refusal, if any (checked again right before anything is written)."""
        if self.refusal:
            raise SurgeryError(f"{self.report.file.path}: {self.refusal}")


def is_kv_check(check: LinkCheck) -> bool:
    """KV-cache checks: a drafter failing one makes the engine abort, so no flag accepts it."""
    return check.name.startswith("KV input")


def _unused(option: str, value: str, why: str) -> UsageError:
    return UsageError(f"{option} {value}: not used because {why}; leave it out or point it at what it is for")


def holds_only_weights(model: TFLiteModel) -> bool:
    """One subgraph, no operators, no signatures: a pruned drafter a rebuilt one may replace whole."""
    return len(model.subgraphs) == 1 and not model.subgraphs[0].operators and not model.signatures


def _roles_of(report: Report, f: Finding, ma: ModelAnalysis | None) -> RoleMap:
    """The roles of a pruned drafter's weights; refused when shapes, names and table order cannot place them all."""
    rm = None if ma is None else ma.roles.get(f.subgraph)
    if rm is None:
        raise SurgeryError(f"{report.file.path}: no roles were recognised for the pruned drafter at {f.where}; "
                           "describe the layout in a recipe (--recipe FILE, docs/recipes.md)")
    if not rm.unassigned:
        return rm
    tensors = ma.model.subgraphs[rm.subgraph].tensors
    whys: dict[str, list[str]] = {}
    for i, why in rm.unassigned:
        whys.setdefault(why, []).append(tensors[i].name)
    detail = "; ".join(f"{len(names)} × {why} (e.g. '{names[0]}')" for why, names in whys.items())
    raise SurgeryError(f"{report.file.path}: the pruned drafter at {f.where} has no operators left and "
                       f"{len(rm.unassigned)} of its weights cannot be placed from shapes, names and table order: "
                       f"{detail}. Without dataflow the RMS-norm scales (all [D]) are ambiguous unless names or the "
                       "tensor table's order say which is which; describe the layout in a recipe (--recipe FILE, "
                       "docs/recipes.md) to rebuild it")


def _rebuild_step(report: Report, f: Finding, ma: ModelAnalysis, rm: RoleMap) -> Step:
    """Rebuild a pruned drafter from its roles: in place when its weights are all their model holds, else (in a
    container without a drafter) as a new drafter section. A model with live operators is never replaced."""
    path = report.file.path
    n = len(rm.roles)
    if holds_only_weights(ma.model):
        return Step("rebuild", f"rebuild the drafter of {f.where} from its {n} stored weights, placed by their "
                               "recognised roles", f, roles=rm)
    if f.section is not None and not any(s.model_type == MTP_DRAFTER for s in report.file.tflite_sections()):
        return Step("rebuild", f"build a new '{MTP_DRAFTER}' section from the {n} drafter weights orphaned at "
                               f"{f.where} (placed by their recognised roles; that section is left as it is)", f,
                    roles=rm, new_section=True)
    raise SurgeryError(f"{path}: the pruned drafter's weights at {f.where} share their model with live operators; "
                       "rebuilding the drafter in place would replace that model. Describe the layout in a recipe "
                       "(--recipe FILE, docs/recipes.md) to rebuild it beside them")


def plan_restore(report: Report, *, drafter: str | None = None, signature_name: str | None = None,
                 recipe: str | None = None, accept_link_failures: bool = False,
                 config: str | os.PathLike | None = None) -> RestorePlan:
    """Map every hidden finding to a step and run the link gate.

    Every explicit input is used or refused with the reason. Link-check
    failures refuse the plan (``plan.refusal``) unless ``accept_link_failures``;
    failures of the KV-cache checks refuse it regardless: the runtime aborts on
    a tagged drafter whose KV inputs the base model does not provide. A pruned
    drafter is rebuilt from its recognised roles through the drafter emitter
    (``config``: a ``config.json`` whose epsilon, soft-cap, window and RoPE
    override the file's leftover constants), or from ``recipe`` when given.
    """
    path = report.file.path
    hidden = [f for f in report.findings if f.hidden or f.kind == "section_missing"]
    if not hidden:
        for option, value in (("--drafter", drafter), ("--recipe", recipe), ("--signature-name", signature_name),
                              ("--config", config)):
            if value is not None:
                raise _unused(option, value, f"{path} has nothing to restore ({report.verdict.status}: {report.verdict.summary})")
        if report.verdict.status == "ready":
            raise NothingToRestore(f"{path}: nothing to restore — MTP is already ready ({report.verdict.summary})", True)
        if report.verdict.status == "mismatched":
            raise NothingToRestore(f"{path}: nothing hidden to restore — the drafter is mismatched ({report.verdict.summary})",
                                   False)
        raise NothingToRestore(f"{path}: nothing hidden to restore ({report.verdict.summary})", False)
    if config is not None:
        from mtpsurgeon.surgery.drafter.spec import read_config  # only here: the drafter package is large

    plan = RestorePlan(report, [], config=None if config is None else read_config(config))
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
            if f.kind == "pruned_ops" and recipe is None:
                ma = next((m for m in report.models if m.section_index == f.section), None)
                rm = _roles_of(report, f, ma)
                if report.base is None:
                    raise UsageError(f"{path}: rebuilding the pruned drafter at {f.where} needs the base model's KV "
                                     "caches and cache length; pass --base MODEL")
                plan.steps.append(_rebuild_step(report, f, ma, rm))
                continue
            name = recipe or default_recipe_for(f.kind)
            plan.steps.append(Step("rebuild", f"rebuild the operators of {f.where} from recipe '{name}' "
                                              f"({len(f.tensors)} orphan weights)", f, recipe=name))
    kinds = {s.kind for s in plan.steps}
    if drafter is not None and "graft" not in kinds:
        raise _unused("--drafter", drafter, f"{path} already has a drafter to re-link "
                      f"({', '.join(f.kind + ' at ' + f.where for f in hidden)}), so nothing is grafted")
    if config is not None and not any(s.kind == "rebuild" and s.roles is not None for s in plan.steps):
        raise _unused("--config", str(config), f"no pruned drafter of {path} is rebuilt from its roles")
    if recipe is not None and "rebuild" not in kinds:
        raise _unused("--recipe", recipe, f"no pruned operators are rebuilt in {path}")
    if signature_name is not None and not any(s.kind == "expose" and s.signature_name == signature_name for s in plan.steps):
        raise _unused("--signature-name", signature_name, "no subgraph of an unrecognised drafter is re-exposed")
    failed = [c for c in plan.checks if not c.passed]
    if failed:
        message = "; ".join(f"{c.name}: expected {c.expected}, got {c.actual}" for c in failed)
        if any(is_kv_check(c) for c in failed):
            plan.refusal = (f"drafter/base link checks failed: {message} — a drafter whose KV inputs the base does not "
                            "provide aborts the runtime, so it is never written as a tagged drafter")
        elif not accept_link_failures:
            plan.refusal = f"drafter/base link checks failed: {message} (use --accept-link-failures to write anyway)"
        else:
            plan.warnings.append(f"link checks failed, writing anyway because of --accept-link-failures: {message}")
    return plan
