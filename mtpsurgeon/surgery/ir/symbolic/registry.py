"""Shape rules by operator name: ``@rule("ADD", "MUL")`` registers a function.

A rule takes a :class:`RuleContext` and returns one list of :class:`Dim` per
output (None for an absent optional output).
"""
from __future__ import annotations

from typing import Callable

from mtpsurgeon.surgery.ir.symbolic.context import RuleContext
from mtpsurgeon.surgery.ir.symbolic.expr import Dim

Rule = Callable[[RuleContext], list]
RULES: dict[str, Rule] = {}


def rule(*ops: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        for op in ops:
            if op in RULES:
                raise ValueError(f"two shape rules for {op}")
            RULES[op] = fn
        return fn
    return register


def same_as_input(ctx: RuleContext) -> list[list[Dim]]:
    """Every output has the first input's dims."""
    d = ctx.dims(0)
    return [list(d) for _ in ctx.node.outputs]
