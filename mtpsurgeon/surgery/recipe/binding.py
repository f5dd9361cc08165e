"""Binding a recipe to a graph: orphan weights to roles, by name glob and by shape.

Binding never guesses: every role must be bound to exactly one tensor, and
when more than one complete, consistent assignment exists the error lists
the candidates of every role the assignments disagree on.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.surgery.recipe.anchors import _resolve_anchors
from mtpsurgeon.surgery.recipe.dims import _solve_sources
from mtpsurgeon.surgery.recipe.expressions import (
    expand,
    interpolate,
    show_pattern,
    unify_shape,
)
from mtpsurgeon.surgery.recipe.format import Recipe

#: Search steps after which a shape-only binding is declared too ambiguous to enumerate.
_SEARCH_LIMIT = 200_000


@dataclass
class Binding:
    """A recipe bound to one graph: solved dimensions, weights, anchors."""

    recipe: Recipe
    graph_index: int
    dims: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, Any] = field(default_factory=dict)  #: role → ir.Tensor
    anchors: dict[str, Any] = field(default_factory=dict)  #: name → ir.Tensor or ir.Node
    orphans: list[Any] = field(default_factory=list)  #: the orphan constants the weights were chosen from
    evidence: list[str] = field(default_factory=list)
    base_kv: dict[str, Any] = field(default_factory=dict)  #: name → TensorRecord of the base model

    @property
    def leftovers(self) -> list[Any]:
        """Orphan tensors no role took (constants the recipe re-used are removed by rebuild)."""
        bound = {id(t) for t in self.weights.values()}
        return [t for t in self.orphans if id(t) not in bound]


@dataclass
class _Role:
    role: str
    shape: list
    dtypes: list[str] | None
    globs: list[str]
    env: dict[str, Any]
    candidates: list[Any] = field(default_factory=list)
    by_name: bool = False
    searched: str = ""


def orphan_constants(graph) -> list[Any]:
    """Constant tensors of an IR graph that no operator reads and no graph input/output names."""
    used = {id(t) for n in graph.nodes for t in n.tensors()}
    used.update(id(t) for t in (*graph.inputs, *graph.outputs))
    refs = {id(r) for t in graph.tensors for r in (t.block_scales, t.block_zero_points) if r is not None}
    return [t for t in graph.tensors if t.is_constant and id(t) not in used and id(t) not in refs]


def _dtype_ok(role: _Role, t) -> bool:
    return role.dtypes is None or t.dtype_name in role.dtypes


def _describe(t) -> str:
    return f"'{t.name}' {t.dtype_name}{list(t.shape)}"


def _listing(ts: list[Any], limit: int = 6) -> str:
    shown = ", ".join(_describe(t) for t in ts[:limit])
    return (shown + (f" … ({len(ts) - limit} more)" if len(ts) > limit else "")) or "none"


def _expand_roles(recipe: Recipe, env: dict[str, Any], orphans: list[Any]) -> list[_Role]:
    roles: list[_Role] = []
    seen: set[str] = set()
    for w, wenv in expand(recipe.get("weights", []), env, f"{recipe.source}: weights"):
        role = interpolate(w["role"], wenv)
        if role in seen:
            raise SurgeryError(f"{recipe.source}: weight role '{role}' is declared twice")
        seen.add(role)
        dt = w.get("dtype")
        dtypes = None if dt is None else [d.upper() for d in (dt if isinstance(dt, list) else [dt])]
        r = _Role(role, w["shape"], dtypes, [interpolate(g, wenv) for g in w.get("names", [])], wenv)
        for g in r.globs:
            hits = [t for t in orphans if fnmatch.fnmatchcase(t.name, g)]
            if hits:
                r.candidates, r.by_name, r.searched = hits, True, f"names matching '{g}'"
                break
        if not r.by_name:
            r.candidates = list(orphans)
            r.searched = (f"no orphan named like {', '.join(repr(g) for g in r.globs)}; by shape among all "
                          f"{len(orphans)} orphan constants") if r.globs else f"by shape among all {len(orphans)} orphan constants"
        roles.append(r)
    return roles


def _search(roles: list[_Role], env: dict[str, Any], limit: int = 2) -> tuple[list[tuple[dict, dict]], bool]:
    """All (up to ``limit``) complete assignments role → tensor consistent in shapes; (solutions, exhausted)."""
    solutions: list[tuple[dict, dict]] = []
    steps = 0

    def pre(r: _Role, e: dict) -> list[Any]:
        return [t for t in r.candidates if _dtype_ok(r, t) and unify_shape(r.shape, t.shape, {**e, **r.env}) is not None]

    def rec(remaining: list[_Role], e: dict, assigned: dict, used: set[int]) -> bool:
        nonlocal steps
        if not remaining:
            # re-check every role now that all dims are known
            for r in roles:
                if unify_shape(r.shape, assigned[r.role].shape, {**e, **r.env}) is None:
                    return True
            solutions.append((dict(assigned), dict(e)))
            return len(solutions) < limit
        # most constrained role first
        options = [(r, [t for t in pre(r, e) if id(t) not in used]) for r in remaining]
        r, cands = min(options, key=lambda rc: len(rc[1]))
        rest = [x for x in remaining if x is not r]
        for t in cands:
            steps += 1
            if steps > _SEARCH_LIMIT:
                raise SurgeryError(f"binding search gave up after {_SEARCH_LIMIT} steps: the orphans fit the recipe in "
                                   "too many ways; name the weights in a recipe file")
            new = unify_shape(r.shape, t.shape, {**e, **r.env})
            if new is None:
                continue
            assigned[r.role] = t
            used.add(id(t))
            go_on = rec(rest, {**e, **{k: v for k, v in new.items() if k not in r.env}}, assigned, used)
            used.discard(id(t))
            del assigned[r.role]
            if not go_on:
                return False
        return True

    rec(list(roles), dict(env), {}, set())
    return solutions, True


def bind(recipe: Recipe, ir, graph_index: int, finding=None, base=None) -> Binding:
    """Bind ``recipe`` to graph ``graph_index`` of IR model ``ir``: solve dims, pick weights, resolve anchors.

    ``base`` is a :class:`~mtpsurgeon.analysis.dims.BaseDims` (a standalone
    drafter needs one for the cache length and KV specs). Raises SurgeryError
    on a missing, ambiguous or inconsistent binding — nothing is modified.
    """
    if not 0 <= graph_index < len(ir.graphs):
        raise SurgeryError(f"{recipe.source}: subgraph {graph_index} does not exist")
    graph = ir.graphs[graph_index]
    b = Binding(recipe, graph_index)
    orphans = orphan_constants(graph)
    if finding is not None:
        # the analysis' MTP tensors of this graph must all be orphan constants here
        ids = {id(t) for t in orphans}
        for rec in finding.tensors:
            if rec.subgraph == graph_index and 0 <= rec.index < len(graph.tensors):
                t = graph.tensors[rec.index]
                if t.name == rec.name and id(t) not in ids and t.is_constant:
                    orphans.append(t)
    b.orphans = orphans
    env: dict[str, Any] = {}
    needs_base: list = []
    names = [t.name for t in orphans]
    b.anchors = _resolve_anchors(recipe, ir, graph, env, b.evidence)
    _solve_sources(recipe, env, names, base, finding, late=False, needs_base=needs_base)

    roles = _expand_roles(recipe, env, orphans)
    for r in roles:
        if not [t for t in r.candidates if _dtype_ok(r, t)
                and unify_shape(r.shape, t.shape, {**env, **r.env}) is not None]:
            shown = _listing(r.candidates)
            unsolved = [txt for sym, txt in needs_base if sym not in env]
            hint = f"; {'; '.join(unsolved)} need a base model (restore --base BASE)" if unsolved else ""
            raise SurgeryError(f"{recipe.source}: no orphan tensor fits weight role '{r.role}' "
                               f"{show_pattern(r.shape, {**env, **r.env})}"
                               + (f" {'/'.join(r.dtypes)}" if r.dtypes else "")
                               + f" (searched {r.searched}; candidates: {shown}){hint}")
    solutions, _ = _search(roles, env)
    if not solutions:
        lines = [f"'{r.role}' {show_pattern(r.shape, {**env, **r.env})}: "
                 + _listing([t for t in r.candidates if _dtype_ok(r, t)
                             and unify_shape(r.shape, t.shape, {**env, **r.env}) is not None]) for r in roles]
        raise SurgeryError(f"{recipe.source}: the orphan tensors fit each weight role but no assignment fits all "
                           "of them with one set of dimensions; candidates per role: " + "; ".join(lines))
    if len(solutions) > 1:
        (a1, e1), (a2, _) = solutions[:2]

        def fits(r: _Role) -> list[Any]:
            return [t for t in r.candidates if _dtype_ok(r, t) and unify_shape(r.shape, t.shape, {**e1, **r.env}) is not None]

        differ = [r for r in roles if a1[r.role] is not a2[r.role]]
        others = [r for r in roles if r not in differ and len(fits(r)) > 1]
        lines = [f"'{r.role}' {show_pattern(r.shape, {**e1, **r.env})} ← one of {_listing(fits(r))}" for r in differ]
        more = (f" {len(others)} more roles also fit several tensors by shape: "
                + ", ".join(f"'{r.role}'" for r in others[:12]) + (" …" if len(others) > 12 else "") + ".") if others else ""
        raise SurgeryError(f"{recipe.source}: ambiguous binding — the orphan tensors fit the recipe in more than one way "
                           "and it will not guess: " + "; ".join(lines) + "." + more
                           + " Name the weights in a recipe file (weights[].names) to choose.")
    assigned, env = solutions[0]
    b.weights = {r.role: assigned[r.role] for r in roles}
    by_name = sum(r.by_name for r in roles)
    b.evidence.append(f"{len(roles)} weight roles bound ({by_name} by name, {len(roles) - by_name} by shape)")
    for r in roles:
        if not r.by_name:
            b.evidence.append(f"'{r.role}' ← {_describe(assigned[r.role])} by shape {show_pattern(r.shape, env)}")

    _solve_sources(recipe, env, names, base, finding, late=True, needs_base=needs_base)
    missing = [s for s in recipe.get("dims", {}) if s not in env]
    if missing:
        unsolved = [txt for sym, txt in needs_base if sym not in env]
        if unsolved:
            raise SurgeryError(f"{recipe.source}: dimensions {', '.join(missing)} come from the base model "
                               f"({'; '.join(unsolved)}), and none was given: pass the base model with "
                               "restore --base BASE (a .litertlm or its prefill/decode .tflite)")
        raise SurgeryError(f"{recipe.source}: could not solve dimensions {', '.join(missing)}: no source in "
                           "'dims' gives them and no weight shape mentions them")
    b.dims = env
    if base is not None:
        b.base_kv = dict(getattr(base, "kv", {}) or {})
    b.evidence.append("dims: " + ", ".join(f"{k}={v}" for k, v in sorted(env.items())))
    return b
