"""Dimension sources: solving a recipe's ``dims`` from constants, the base model, the finding and names.

Sources are tried in order; ``base_kv`` sources run late, once the weights
have bound the dimensions their shape patterns mention.
"""
from __future__ import annotations

import fnmatch
import re
from typing import Any

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.surgery.recipe.expressions import (
    _BRACES,
    Unknown,
    evaluate,
    show_pattern,
    unify_shape,
)
from mtpsurgeon.surgery.recipe.format import Recipe


def _name_regex(pattern: str, var: str) -> re.Pattern:
    """'layers.{i}.mlp.gate_proj.weight' (glob, one {var}) → a regex capturing the number."""
    parts = pattern.split("{" + var + "}")
    return re.compile("(\\d+)".join(fnmatch.translate(p).removeprefix("(?s:").removesuffix(")\\Z") for p in parts) + r"\Z",
                      re.DOTALL)


def _count_source(pattern: str, names: list[str], where: str) -> int | None:
    var = next(iter(_BRACES.findall(pattern)), None)
    if var is None:
        raise SurgeryError(f"{where}: 'count:' needs a name pattern with one {{var}}, got '{pattern}'")
    rx = _name_regex(pattern, var)
    found = sorted({int(m.group(1)) for n in names for m in [rx.match(n)] if m})
    if not found:
        return None
    if found != list(range(len(found))):
        raise SurgeryError(f"{where}: names matching '{pattern}' have indices {found}, not 0..{len(found) - 1}")
    return len(found)


def _base_value(base, fld: str, where: str):
    if base is None:
        return None
    return getattr(base, fld, None)


def _solve_sources(recipe: Recipe, env: dict[str, Any], names: list[str], base, finding, *, late: bool,
                   needs_base: list) -> None:
    """Solve dims from their declared sources (late=True: only base_kv sources, after weights)."""
    for sym, spec in recipe.get("dims", {}).items():
        if sym in env:
            continue
        for src in spec if isinstance(spec, list) else [spec]:
            where = f"{recipe.source}: dims.{sym}"
            value = None
            if src is None:
                continue
            if isinstance(src, dict):
                if not late:
                    continue
                value = _solve_base_kv(src, env, base, where, needs_base, sym)
            elif late:
                continue
            elif isinstance(src, int):
                value = src
            elif src.startswith("base."):
                value = _base_value(base, src[5:], where)
                if value is None:
                    needs_base.append((sym, f"{sym} ← {src}"))
            elif src.startswith("count:"):
                value = _count_source(src[6:], names, where)
            elif src.startswith("finding."):
                value = (finding.dims or {}).get(src[8:]) if finding is not None else None
            else:
                try:
                    value = evaluate(src, env)
                except Unknown:
                    value = None
            if value is not None:
                env[sym] = value
                break


def _solve_base_kv(src: dict, env: dict[str, Any], base, where: str, needs_base: list, sym: str) -> int | None:
    """{"base_kv": "kv_cache_k_{L}", "shape": [1, "*", "C", "hs"], "pick": "last"} → L."""
    if base is None or not getattr(base, "kv", None):
        needs_base.append((sym, f"{sym} ← a base KV cache like '{src['base_kv']}'"))
        return None
    pattern = src["base_kv"]
    var = next(iter(_BRACES.findall(pattern)), None)
    if var is None:
        raise SurgeryError(f"{where}: 'base_kv' needs a name pattern with one {{var}}, got '{pattern}'")
    rx = _name_regex(pattern, var)
    hits = []
    for name, rec in base.kv.items():
        m = rx.match(name)
        if not m:
            continue
        try:
            ok = unify_shape(src["shape"], rec.shape, env)
        except SurgeryError:
            ok = None
        if ok is not None:
            hits.append((int(m.group(1)), name, rec))
    hits.sort()
    if not hits:
        shown = ", ".join(f"{n}{list(r.shape)}" for n, r in sorted(base.kv.items())) or "none"
        raise SurgeryError(f"{where}: no KV cache of the base ({base.label}) matches '{pattern}' with shape "
                           f"{show_pattern(src['shape'], env)}; the base has: {shown}")
    pick = src.get("pick", "only")
    if pick == "only" and len(hits) > 1:
        raise SurgeryError(f"{where}: several KV caches of the base match '{pattern}' "
                           f"{show_pattern(src['shape'], env)}: {', '.join(n for _, n, _ in hits)}; "
                           "the recipe must say which ('pick': 'first' | 'last')")
    return hits[-1][0] if pick == "last" else hits[0][0]
