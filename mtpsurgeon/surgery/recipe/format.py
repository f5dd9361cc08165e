"""The recipe file format: the built-in recipes, loading and structural validation.

A recipe (``mtpsurgeon-recipe/1``, documented in ``docs/recipes.md``) is a
JSON object; :func:`validate` checks its structure and names the first problem.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.formats.regular import open_regular
from mtpsurgeon.formats.tflite.dtypes import BY_NAME
from mtpsurgeon.formats.tflite.schema import BUILTIN_OP_CODES
from mtpsurgeon.surgery.recipe.expressions import symbols

FORMAT = "mtpsurgeon-recipe/1"
APPLIES_TO = ("pruned_ops", "parallel_heads_pruned", "named_orphans")

#: Finding kind → built-in recipe used when ``restore --recipe`` is not given. Pruned drafters
#: ('pruned_ops') need none: restore rebuilds them from their roles through the drafter emitter.
DEFAULT_RECIPES = {
    "parallel_heads_pruned": "parallel-heads",
}

_TOP_KEYS = {"format", "name", "description", "applies_to", "dims", "anchors", "inputs", "weights", "constants",
             "macros", "body", "outputs", "signature", "op_versions", "notes"}
_BASE_FIELDS = {"hidden", "vocab", "cache_len", "verify_len"}


# ---------------------------------------------------------------------------- built-ins
def builtin_recipes() -> list[str]:
    """Names of the recipes shipped in ``mtpsurgeon/surgery/recipes/``."""
    root = resources.files("mtpsurgeon.surgery.recipes")
    return sorted(p.name[: -len(".json")] for p in root.iterdir() if p.name.endswith(".json"))


def default_recipe_for(kind: str) -> str:
    """The built-in recipe that undoes a finding kind ('pruned_ops', 'parallel_heads_pruned')."""
    try:
        return DEFAULT_RECIPES[kind]
    except KeyError:
        raise SurgeryError(f"no built-in recipe rebuilds '{kind}'; describe the layout in a recipe file "
                           f"(see docs/recipes.md) and pass --recipe FILE") from None


# ---------------------------------------------------------------------------- the recipe
@dataclass
class Recipe:
    """A loaded, validated recipe (the JSON object plus where it came from)."""

    name: str
    applies_to: str
    data: dict
    source: str

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


def load_recipe(name_or_path: str | Path) -> Recipe:
    """A built-in recipe by name, or a recipe JSON file by path; validated."""
    text: str
    p = Path(name_or_path)
    if isinstance(name_or_path, str) and name_or_path in builtin_recipes():
        text = resources.files("mtpsurgeon.surgery.recipes").joinpath(f"{name_or_path}.json").read_text()
        source = f"built-in recipe '{name_or_path}'"
    elif p.suffix == ".json" or p.exists():
        try:
            with open_regular(p) as fh:  # a FIFO would block read_text() forever
                text = fh.read().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SurgeryError(f"recipe {p}: not UTF-8 text: {exc}") from None
        except OSError as exc:
            raise SurgeryError(f"recipe {p}: cannot read it: {exc.strerror or exc}") from None
        source = str(p)
    else:
        raise SurgeryError(f"unknown recipe '{name_or_path}': not a built-in ({', '.join(builtin_recipes())}) "
                           "and not a JSON file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SurgeryError(f"{source}: not valid JSON: {exc}") from None
    return validate(data, source)


def validate(data: Any, source: str = "recipe") -> Recipe:
    """Check a recipe's structure; raise SurgeryError naming the first problem."""
    def fail(msg: str) -> None:
        raise SurgeryError(f"{source}: {msg}")

    if not isinstance(data, dict):
        fail("a recipe is a JSON object")
    if data.get("format") != FORMAT:
        fail(f"'format' must be \"{FORMAT}\" (got {data.get('format')!r})")
    for key in ("name", "applies_to", "body", "outputs", "signature"):
        if key not in data:
            fail(f"missing '{key}'")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        fail(f"unknown keys {sorted(unknown)} (allowed: {sorted(_TOP_KEYS)})")
    if data["applies_to"] not in APPLIES_TO:
        fail(f"'applies_to' must be one of {list(APPLIES_TO)}")
    for key, typ in (("dims", dict), ("anchors", list), ("inputs", list), ("weights", list), ("constants", list),
                     ("macros", dict), ("body", list), ("outputs", list), ("signature", dict), ("op_versions", dict)):
        if key in data and not isinstance(data[key], typ):
            fail(f"'{key}' must be a JSON {'object' if typ is dict else 'array'}")
    for sym, src in data.get("dims", {}).items():
        if not sym.isidentifier():
            fail(f"dims: '{sym}' is not a valid dimension name")
        for s in src if isinstance(src, list) else [src]:
            _check_dim_source(s, f"dims.{sym}", fail)
    for i, w in enumerate(data.get("weights", [])):
        if not isinstance(w, dict) or "role" not in w or "shape" not in w:
            fail(f"weights[{i}]: needs 'role' and 'shape'")
        if not isinstance(w.get("names", []), list):
            fail(f"weights[{i}] '{w['role']}': 'names' must be a list of globs")
    for i, a in enumerate(data.get("anchors", [])):
        if not isinstance(a, dict) or "name" not in a or not ({"producer", "input_of", "output_of", "tensor"} & set(a)):
            fail(f"anchors[{i}]: needs 'name' and one of 'producer', 'input_of', 'output_of', 'tensor'")
    for i, t in enumerate(data.get("inputs", [])):
        if not isinstance(t, dict) or "name" not in t or not ("like_base_kv" in t or "shape" in t):
            fail(f"inputs[{i}]: needs 'name' and 'shape' (or 'like_base_kv')")
    for i, c in enumerate(data.get("constants", [])):
        if not isinstance(c, dict) or "name" not in c or "value" not in c or "dtype" not in c:
            fail(f"constants[{i}]: needs 'name', 'dtype' and 'value'")
        _check_dtype(c["dtype"], f"constants[{i}]", fail)
    macros = data.get("macros", {})
    for mname, m in macros.items():
        if not isinstance(m, dict) or not isinstance(m.get("params"), list) or not isinstance(m.get("body"), list) \
                or "returns" not in m:
            fail(f"macros.{mname}: needs 'params' (list), 'body' (list) and 'returns'")
        _check_body(m["body"], f"macros.{mname}", macros, fail)
    _check_body(data["body"], "body", macros, fail)
    for i, o in enumerate(data["outputs"]):
        if not isinstance(o, dict) or "name" not in o or "value" not in o:
            fail(f"outputs[{i}]: needs 'name' and 'value'")
    sig = data["signature"]
    if ("key" in sig) == ("extend" in sig):
        fail("'signature' needs exactly one of 'key' (a new signature) or 'extend' (an anchor whose signatures get the outputs)")
    for op, v in data.get("op_versions", {}).items():
        if op.upper() not in BUILTIN_OP_CODES or not isinstance(v, int):
            fail(f"op_versions: '{op}' must be a builtin operator with an integer version")
    return Recipe(str(data["name"]), data["applies_to"], data, source)


def _check_dtype(dtype: Any, where: str, fail) -> None:
    names = dtype if isinstance(dtype, list) else [dtype]
    for d in names:
        if not isinstance(d, str) or d.upper() not in BY_NAME:
            fail(f"{where}: unknown dtype {d!r} (use TensorType names such as FLOAT32, INT8, INT4, BOOL)")


def _check_dim_source(src: Any, where: str, fail) -> None:
    if src is None or isinstance(src, int):
        return
    if isinstance(src, dict):
        if "base_kv" not in src or "shape" not in src:
            fail(f"{where}: an object source needs 'base_kv' (a name pattern with {{L}}) and 'shape'")
        if src.get("pick", "only") not in ("only", "first", "last"):
            fail(f"{where}: 'pick' must be 'only', 'first' or 'last'")
        return
    if isinstance(src, str):
        if src.startswith("base."):
            if src[5:] not in _BASE_FIELDS:
                fail(f"{where}: unknown base field '{src}' (known: {sorted('base.' + f for f in _BASE_FIELDS)})")
            return
        if src.startswith(("count:", "finding.")):
            return
        try:
            symbols(src)
            return
        except SurgeryError:
            pass
    fail(f"{where}: a source is null (solve from weights), an integer, 'base.<field>', 'finding.<key>', "
         f"'count:<name pattern with {{i}}>', an expression, or {{\"base_kv\": ..., \"shape\": ...}}; got {src!r}")


def _check_body(body: list, where: str, macros: dict, fail) -> None:
    for k, item in enumerate(body):
        w = f"{where}[{k}]"
        if not isinstance(item, dict):
            fail(f"{w}: each step is a JSON object")
        if "body" in item:
            if "for" not in item:
                fail(f"{w}: a nested 'body' needs a 'for'")
            _check_body(item["body"], w, macros, fail)
        elif "call" in item:
            if item["call"] not in macros:
                fail(f"{w}: unknown macro '{item['call']}' (defined: {sorted(macros)})")
            if "out" not in item:
                fail(f"{w}: a macro call needs 'out'")
        elif "op" in item:
            if str(item["op"]).upper() not in BUILTIN_OP_CODES:
                fail(f"{w}: '{item['op']}' is not a TFLite builtin operator")
            if not isinstance(item.get("in"), list) or "out" not in item:
                fail(f"{w}: an operator needs 'in' (list) and 'out'")
        else:
            fail(f"{w}: a step is an 'op', a 'call' of a macro, or a 'for' with a 'body'")
