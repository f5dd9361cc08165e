"""Built-in rebuild recipes (``*.json``, format ``mtpsurgeon-recipe/1``; see docs/recipes.md)."""
