"""Checks on the explicit input options shared by the verbs."""
from __future__ import annotations

from pathlib import Path

from mtpsurgeon.analysis import Report
from mtpsurgeon.errors import UsageError
from mtpsurgeon.surgery.recipe.format import builtin_recipes


def require_base(report: Report, base: str | None) -> None:
    """An explicit ``--base`` must supply a base model; refuse it with the reason otherwise."""
    if base is not None and report.base is None:
        raise UsageError(f"--base {base}: no base model found in it (no 'tf_lite_prefill_decode' section, and no "
                         "decode / prefill / verify signature), so it cannot be used for link checks")


def recipe_file(recipe: str | None) -> Path | None:
    """The file behind ``--recipe`` (None for a built-in recipe name)."""
    if recipe is None or recipe in builtin_recipes():
        return None
    return Path(recipe)
