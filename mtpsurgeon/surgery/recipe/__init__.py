"""Recipes for rebuilding pruned operators: loading, validation, dimension solving, binding.

A recipe (``mtpsurgeon-recipe/1``, documented in ``docs/recipes.md``) is a JSON
file that describes a layout: which weights it needs (roles, bound to orphan
tensors by name glob where names survive and by shape relations otherwise),
which dimensions it solves (from the base model, from the live graph, from
the bound weights), which inputs, constants and operators it creates, and
which signature exposes the result.

    recipe = load_recipe("docs/recipes/litert-torch-drafter.json")   # or a built-in name
    binding = bind(recipe, ir, graph_index, finding, base)
    binding.dims["D"], binding.weights["pre_projection"], binding.leftovers

Modules: :mod:`.expressions` (dimension arithmetic, shape unification),
:mod:`.format` (built-ins, loading, validation), :mod:`.dims` (dimension
sources), :mod:`.anchors`, :mod:`.binding` (weights to roles); applying a
bound recipe: :mod:`.builder`, :mod:`.options`, :mod:`.shapes`, driven by
:mod:`mtpsurgeon.surgery.rebuild_ops`. The built-in recipe files live in
``mtpsurgeon/surgery/recipes/``.
"""
from __future__ import annotations

from mtpsurgeon.surgery.recipe.binding import Binding, bind, orphan_constants
from mtpsurgeon.surgery.recipe.expressions import (
    Unknown,
    evaluate,
    expand,
    interpolate,
    loop_range,
    show_pattern,
    symbols,
    unify_dim,
    unify_shape,
)
from mtpsurgeon.surgery.recipe.format import (
    APPLIES_TO,
    DEFAULT_RECIPES,
    FORMAT,
    Recipe,
    builtin_recipes,
    default_recipe_for,
    load_recipe,
    validate,
)

__all__ = [
    "APPLIES_TO", "DEFAULT_RECIPES", "FORMAT", "Binding", "Recipe", "Unknown", "bind", "builtin_recipes",
    "default_recipe_for", "evaluate", "expand", "interpolate", "load_recipe", "loop_range", "orphan_constants",
    "show_pattern", "symbols", "unify_dim", "unify_shape", "validate",
]
