"""The recipe expression language: dimension arithmetic, ``{expr}`` names, loops, shape unification.

Expressions are numbers or arithmetic over dimension names ("2*H", "N-1"),
parsed with :mod:`ast` and evaluated without ``eval``. Shape patterns are
lists of expressions matched against concrete shapes, solving unknowns.
"""
from __future__ import annotations

import ast
import functools
import operator
import re
from collections.abc import Iterable, Iterator
from typing import Any

from mtpsurgeon.errors import SurgeryError

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv,
           ast.Div: operator.truediv, ast.Mod: operator.mod, ast.Pow: operator.pow}


class Unknown(SurgeryError):
    """An expression names a dimension that is not solved (yet)."""

    def __init__(self, symbol: str) -> None:
        super().__init__(f"dimension '{symbol}' is not known")
        self.symbol = symbol


@functools.lru_cache(maxsize=4096)
def _parse(expr: str) -> ast.AST:
    try:
        return ast.parse(expr.strip(), mode="eval").body
    except SyntaxError as exc:
        raise SurgeryError(f"bad expression '{expr}': {exc.msg}") from None


def evaluate(expr: Any, env: dict[str, Any]) -> Any:
    """Value of a number, or of an arithmetic expression over dimension names ("2*H", "N-1")."""
    if isinstance(expr, bool) or expr is None:
        return expr
    if isinstance(expr, (int, float)):
        return expr
    if not isinstance(expr, str):
        raise SurgeryError(f"expected a number or an expression, got {expr!r}")

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in env:
                raise Unknown(node.id)
            return env[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        raise SurgeryError(f"bad expression '{expr}': only numbers, dimension names and + - * / // % ** are allowed")

    return ev(_parse(expr))


def symbols(expr: Any) -> set[str]:
    """Dimension names an expression mentions."""
    if not isinstance(expr, str):
        return set()
    return {n.id for n in ast.walk(_parse(expr)) if isinstance(n, ast.Name)}


_BRACES = re.compile(r"\{([^{}]+)\}")


def interpolate(text: str, env: dict[str, Any]) -> str:
    """Replace ``{expr}`` in a name by its value ("layers.{i}.q_proj", "mtp_logits_{j+1}")."""
    def sub(m: re.Match) -> str:
        v = evaluate(m.group(1), env)
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        return str(v)

    return _BRACES.sub(sub, text)


def loop_range(spec: Any, env: dict[str, Any], where: str) -> tuple[str, range]:
    """``{"i": [start, stop]}`` (stop excluded) → ("i", range)."""
    if not isinstance(spec, dict) or len(spec) != 1:
        raise SurgeryError(f"{where}: 'for' must be one {{\"var\": [start, stop]}} pair")
    (var, bounds), = spec.items()
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise SurgeryError(f"{where}: 'for' bounds of '{var}' must be [start, stop]")
    try:
        lo, hi = (int(evaluate(b, env)) for b in bounds)
    except Unknown as exc:
        raise SurgeryError(f"{where}: loop bound needs dimension '{exc.symbol}', which is not solved") from None
    return var, range(lo, hi)


def expand(items: Iterable[dict], env: dict[str, Any], where: str) -> Iterator[tuple[dict, dict[str, Any]]]:
    """Entries with an optional 'for' → (entry, env with the loop variable) for each iteration."""
    for k, item in enumerate(items):
        if "for" in item:
            var, rng = loop_range(item["for"], env, f"{where}[{k}]")
            for v in rng:
                yield item, {**env, var: v}
        else:
            yield item, env


# ---------------------------------------------------------------------------- shape unification
def unify_dim(expr: Any, actual: int, env: dict[str, Any]) -> dict[str, Any] | None:
    """Match one dimension expression against a value.

    Returns the new bindings (possibly empty) or None on a mismatch. An
    expression linear in one unknown symbol ("2*H", "H+1") is solved for it;
    "*" matches anything; an expression with several unknowns cannot be
    checked yet and matches (it is checked again once they are known).
    """
    if expr == "*":
        return {}
    try:
        v = evaluate(expr, env)
        return {} if v == actual else None
    except Unknown:
        pass
    unknown = sorted(s for s in symbols(expr) if s not in env)
    if len(unknown) != 1:
        return {}
    (s,) = unknown
    try:
        b = evaluate(expr, {**env, s: 0})
        a = evaluate(expr, {**env, s: 1}) - b
        if a == 0:
            return None if b != actual else {}
        x = (actual - b) / a
        if x != int(x) or x < 0 or evaluate(expr, {**env, s: int(x)}) != actual:
            return None
    except (ZeroDivisionError, SurgeryError):
        return {}
    return {s: int(x)}


def unify_shape(pattern: list, shape: Iterable[int], env: dict[str, Any]) -> dict[str, Any] | None:
    """Match a shape pattern against a shape; returns the new bindings or None."""
    shape = [int(d) for d in shape]
    if len(pattern) != len(shape):
        return None
    new: dict[str, Any] = {}
    for _ in range(2):  # a second pass checks expressions whose symbols the first pass solved
        for p, d in zip(pattern, shape):
            got = unify_dim(p, d, {**env, **new})
            if got is None:
                return None
            new.update(got)
    return new


def show_pattern(pattern: list, env: dict[str, Any]) -> str:
    """'[D, 2*H=128]' — a shape pattern with the values known so far."""
    parts = []
    for p in pattern:
        if isinstance(p, str) and p != "*":
            try:
                v = evaluate(p, env)
                parts.append(f"{p}={v}" if str(v) != p else p)
            except Unknown:
                parts.append(p)
        else:
            parts.append(str(p))
    return "[" + ", ".join(parts) + "]"
