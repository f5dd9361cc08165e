"""Recipes for rebuilding pruned operators: loading, validation, dimension solving, binding.

A recipe (``mtpsurgeon-recipe/1``, documented in ``docs/recipes.md``) is a JSON
file that describes a layout: which weights it needs (roles, bound to orphan
tensors by name glob where names survive and by shape relations otherwise),
which dimensions it solves (from the base model, from the live graph, from
the bound weights), which inputs, constants and operators it creates, and
which signature exposes the result.

Binding never guesses: every role must be bound to exactly one tensor, and
when more than one complete, consistent assignment exists the error lists
the candidates of every role the assignments disagree on.

    recipe = load_recipe("gemma4-drafter")          # or a path to a .json file
    binding = bind(recipe, ir, graph_index, finding, base)
    binding.dims["D"], binding.weights["pre_projection"], binding.leftovers

Applying a bound recipe to the IR is :mod:`mtpsurgeon.surgery.rebuild_ops`.
"""
from __future__ import annotations

import ast
import fnmatch
import functools
import json
import operator
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.formats.tflite.dtypes import BY_NAME
from mtpsurgeon.formats.tflite.schema import BUILTIN_OP_CODES

FORMAT = "mtpsurgeon-recipe/1"
APPLIES_TO = ("pruned_ops", "parallel_heads_pruned", "named_orphans")

#: Finding kind → built-in recipe used when ``restore --recipe`` is not given.
DEFAULT_RECIPES = {
    "pruned_ops": "gemma4-drafter",
    "parallel_heads_pruned": "parallel-heads",
}

_TOP_KEYS = {"format", "name", "description", "applies_to", "dims", "anchors", "inputs", "weights", "constants",
             "macros", "body", "outputs", "signature", "op_versions", "notes"}
_BASE_FIELDS = {"hidden", "vocab", "cache_len", "verify_len"}
#: Search steps after which a shape-only binding is declared too ambiguous to enumerate.
_SEARCH_LIMIT = 200_000


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


# ---------------------------------------------------------------------------- expressions
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
            text = p.read_text()
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


# ---------------------------------------------------------------------------- binding
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


def _resolve_anchors(recipe: Recipe, ir, graph, env: dict[str, Any], evidence: list[str]) -> dict[str, Any]:
    anchors: dict[str, Any] = {}
    sigs = [s for s in ir.signatures if s.graph is graph]
    for k, a in enumerate(recipe.get("anchors", [])):
        where = f"{recipe.source}: anchors[{k}] '{a['name']}'"
        if "tensor" in a:
            hits = [t for t in graph.tensors if t.name == a["tensor"]]
            if len(hits) != 1:
                raise SurgeryError(f"{where}: {len(hits)} tensors are named '{a['tensor']}' in graph '{graph.name}'")
            obj = hits[0]
        elif "producer" in a:
            ref = a["producer"]
            if ref.startswith("output:"):
                out = ref[7:]
                ts = {id(s.outputs[out]): s.outputs[out] for s in sigs if out in s.outputs}
                if not ts:
                    have = sorted({o for s in sigs for o in s.outputs})
                    raise SurgeryError(f"{where}: no signature of graph '{graph.name}' has an output '{out}' "
                                       f"(outputs: {have or 'none — no signature runs this graph'})")
                if len(ts) > 1:
                    raise SurgeryError(f"{where}: signatures of graph '{graph.name}' map '{out}' to different tensors: "
                                       + ", ".join(t.name for t in ts.values()))
                tensor = next(iter(ts.values()))
            else:
                tensor = anchors.get(ref)
                if tensor is None or not hasattr(tensor, "shape"):
                    raise SurgeryError(f"{where}: '{ref}' is not an earlier tensor anchor (or 'output:<name>')")
            prods = graph.producers(tensor)
            if not prods:
                raise SurgeryError(f"{where}: nothing in graph '{graph.name}' produces '{tensor.name}'")
            obj = prods[0]
            if "op" in a and obj.op != str(a["op"]).upper():
                raise SurgeryError(f"{where}: '{tensor.name}' is produced by {obj.op}, the recipe expects {a['op']}")
        else:
            key = "input_of" if "input_of" in a else "output_of"
            node = anchors.get(a[key])
            if node is None or not hasattr(node, "opcode"):
                raise SurgeryError(f"{where}: '{a[key]}' is not an earlier operator anchor")
            lst = node.inputs if key == "input_of" else node.outputs
            i = int(a.get("index", 0))
            if not 0 <= i < len(lst) or lst[i] is None:
                raise SurgeryError(f"{where}: {node.op} has no {key[:-3]} {i}")
            obj = lst[i]
        if "shape" in a:
            shape = getattr(obj, "shape", None)
            new = unify_shape(a["shape"], shape, env) if shape is not None else None
            if new is None:
                raise SurgeryError(f"{where}: '{getattr(obj, 'name', obj)}' has shape {shape}, the recipe expects "
                                   f"{show_pattern(a['shape'], env)}")
            env.update(new)
        anchors[a["name"]] = obj
        desc = f"{obj.op} operator" if hasattr(obj, "opcode") else f"tensor '{obj.name}' {list(obj.shape)}"
        evidence.append(f"anchor '{a['name']}' = {desc}")
    return anchors


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
