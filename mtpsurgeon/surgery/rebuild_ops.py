"""(d) Rebuild pruned operators from a recipe: apply a bound recipe to the IR.

    keys = rebuild(ir, model, finding, "gemma4-drafter", base)

binds the recipe (:func:`mtpsurgeon.surgery.recipe.bind`), then builds its
inputs, constants and operators and exposes the result: a new signature
(``signature.key``) or new outputs of the signatures that run the graph of an
anchor (``signature.extend``). Everything is staged first and committed to the
graph at the end, so a recipe that fails leaves the IR untouched.

Pure operators with the same code, inputs and options are emitted once
(common-subexpression elimination, as converters do: a KV reshape shared by
several blocks), and constants equal to one the graph already holds (an
orphan left by the pruning, or a live one) are re-used rather than copied.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.formats.tflite.dtypes import BY_NAME, DTYPES
from mtpsurgeon.formats.tflite.schema import BUILTIN_OP_CODES, fb
from mtpsurgeon.surgery.ir import Buffer, Graph, Model, Node, OpCode, Signature, Tensor, dtype_code
from mtpsurgeon.surgery.recipe import (
    Binding,
    Recipe,
    Unknown,
    bind,
    evaluate,
    expand,
    interpolate,
    load_recipe,
    loop_range,
)

#: Options tables whose name is not CamelCase(op) + "Options".
_OPTIONS_NAME = {
    "MEAN": "ReducerOptions", "SUM": "ReducerOptions", "REDUCE_MAX": "ReducerOptions", "REDUCE_MIN": "ReducerOptions",
    "REDUCE_PROD": "ReducerOptions", "REDUCE_ANY": "ReducerOptions", "REDUCE_ALL": "ReducerOptions",
    "BATCH_MATMUL": "BatchMatMulOptions", "LOG_SOFTMAX": "LogSoftmaxOptions",
}
#: Ops written without an options table unless the recipe gives one (as converters write them).
_NO_DEFAULT_OPTIONS = {"RESHAPE"}
#: Defaults that differ from the schema's (a SOFTMAX with beta 0 is never meant).
_OPTION_DEFAULTS = {"SOFTMAX": {"beta": 1.0}}

_ELEMENTWISE = {"ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "POW", "SQUARED_DIFFERENCE", "FLOOR_DIV",
                "FLOOR_MOD", "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL", "EQUAL", "NOT_EQUAL",
                "LOGICAL_AND", "LOGICAL_OR"}
_COMPARE = {"LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL", "EQUAL", "NOT_EQUAL", "LOGICAL_AND", "LOGICAL_OR"}
_UNARY = {"RSQRT", "SQRT", "TANH", "GELU", "SOFTMAX", "LOG_SOFTMAX", "LOGISTIC", "EXP", "LOG", "NEG", "ABS", "RELU",
          "RELU6", "SIN", "COS", "SQUARE", "FLOOR", "CEIL", "ROUND", "HARD_SWISH", "LOGICAL_NOT", "SIGN"}
_REDUCE = {"MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "REDUCE_ANY", "REDUCE_ALL"}


def rebuild(ir: Model, model: Any, finding: Any, recipe: str | Recipe, base: Any = None, *,
            report: list[str] | None = None) -> list[str]:
    """Rebuild the operators of ``finding``'s graph from ``recipe``; return the signature keys created or changed.

    ``recipe`` is a built-in name, a path to a JSON recipe, or a loaded
    :class:`Recipe`. ``base`` (BaseDims) supplies the cache length and KV specs
    a standalone drafter cannot know. Human-readable binding evidence and the
    orphans left unbound are appended to ``report`` when given.
    """
    r = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    kind = getattr(finding, "kind", None)
    if kind in ("pruned_ops", "parallel_heads_pruned") and r.applies_to != kind:
        raise SurgeryError(f"{r.source} rebuilds '{r.applies_to}', but {getattr(finding, 'where', 'the model')} "
                           f"is '{kind}'")
    graph_index = getattr(finding, "subgraph", None)
    graph_index = 0 if graph_index is None else graph_index
    binding = bind(r, ir, graph_index, finding, base)
    keys, reused = apply_recipe(ir, binding)
    if report is not None:
        report.extend(binding.evidence)
        reused_ids = {id(t) for t in reused}
        left = [t for t in binding.leftovers if id(t) not in reused_ids]
        report.append(f"re-used {len(reused)} existing constants; {len(left)} orphan tensors left unbound"
                      + (": " + ", ".join(t.name for t in left) if left else ""))
    return keys


# ---------------------------------------------------------------------------- building
@dataclass
class _Scope:
    names: dict[str, Tensor] = field(default_factory=dict)
    parent: _Scope | None = None

    def get(self, name: str) -> Tensor | None:
        s: _Scope | None = self
        while s is not None:
            if name in s.names:
                return s.names[name]
            s = s.parent
        return None

    def all_names(self) -> list[str]:
        out, s = [], self
        while s is not None:
            out.extend(s.names)
            s = s.parent
        return out


class _Builder:
    """Stages new tensors and nodes for one graph; :meth:`commit` adds them."""

    def __init__(self, ir: Model, graph: Graph, binding: Binding) -> None:
        self.ir, self.graph, self.b = ir, graph, binding
        self.recipe = binding.recipe
        self.src = binding.recipe.source
        self.tensors: list[Tensor] = []
        self.nodes: list[Node] = []
        self.cse: dict[tuple, list[Tensor]] = {}
        self.consts: dict[tuple, Tensor] = {}
        self.reused: list[Tensor] = []
        self.names = {t.name for t in graph.tensors}
        self.prefix: list[str] = [binding.recipe.name]
        self.producer: dict[int, Node] = {}
        orphan_ids = {id(t) for t in binding.orphans}
        bound = {id(t) for t in binding.weights.values()}
        # existing constants to re-use: orphans first (they get re-linked), then live ones
        self.existing: dict[tuple, Tensor] = {}
        for t in sorted((t for t in graph.tensors if t.is_constant and t.buffer is not None and id(t) not in bound),
                        key=lambda t: id(t) not in orphan_ids):
            if t.quantization is not None and getattr(t.quantization, "scale", None) is not None:
                continue
            key = (t.dtype, tuple(t.shape), bytes(t.buffer.data))
            self.existing.setdefault(key, t)

    # -- names ------------------------------------------------------------------
    def unique(self, name: str) -> str:
        base, k = name, 1
        while name in self.names:
            name, k = f"{base};{k}", k + 1
        self.names.add(name)
        return name

    def err(self, where: str, msg: str) -> SurgeryError:
        return SurgeryError(f"{self.src}: {where}: {msg}")

    # -- tensors ------------------------------------------------------------------
    def new_tensor(self, name: str, shape: list[int], dtype: int, quantization: Any = None) -> Tensor:
        t = Tensor(self.unique(name), [int(d) for d in shape], dtype, None, quantization)
        self.tensors.append(t)
        return t

    def constant(self, value: Any, dtype: str, shape: Any, env: dict, where: str, name: str | None = None) -> Tensor:
        code = BY_NAME[str(dtype).upper()].code
        d = DTYPES[code]
        if d.numpy is None or d.packed:
            raise self.err(where, f"constants of type {d.name} are not supported")
        vals = _eval_nested(value, env, lambda m: self.err(where, m))
        arr = np.array(vals, dtype=np.dtype(d.numpy))
        if shape is not None:
            shp = [int(evaluate(s, env)) for s in shape]
            if arr.size == 1:
                arr = np.full(shp, arr.reshape(()).item(), dtype=arr.dtype)
            elif int(np.prod(shp)) == arr.size:
                arr = arr.reshape(shp)
            else:
                raise self.err(where, f"{arr.size} values cannot fill shape {shp}")
        arr = np.array(arr, order="C", copy=True)  # (np.ascontiguousarray would turn a scalar into [1])
        key = (code, tuple(arr.shape), arr.tobytes())
        if key in self.consts:
            return self.consts[key]
        t = self.existing.get(key)
        if t is not None:
            self.reused.append(t)
        else:
            t = Tensor(self.unique(name or "/".join(self.prefix + ["const"])), list(arr.shape), code, Buffer(arr))
            self.tensors.append(t)
        self.consts[key] = t
        return t

    def ref(self, x: Any, scope: _Scope, env: dict, where: str) -> Tensor | None:
        if x is None:
            return None
        if isinstance(x, dict):
            if "const" not in x or "dtype" not in x:
                raise self.err(where, f"an inline constant needs 'const' and 'dtype': {x}")
            return self.constant(x["const"], x["dtype"], x.get("shape"), env, where)
        if not isinstance(x, str):
            raise self.err(where, f"an input is a name, null, or {{\"const\": ..., \"dtype\": ...}}; got {x!r}")
        try:
            name = interpolate(x, env)
        except Unknown as exc:
            raise self.err(where, f"'{x}' needs dimension '{exc.symbol}'") from None
        t = scope.get(name)
        if t is None:
            import difflib
            near = difflib.get_close_matches(name, scope.all_names(), n=4)
            raise self.err(where, f"no value named '{name}'" + (f" (did you mean {', '.join(near)}?)" if near else ""))
        return t

    # -- operators ------------------------------------------------------------------
    def opcode(self, name: str) -> OpCode:
        code = BUILTIN_OP_CODES[name]
        want = self.recipe.get("op_versions", {}).get(name) or self.recipe.get("op_versions", {}).get(name.lower())
        have = [o for o in self.ir.opcodes if o.builtin_code == code and o.custom_code is None]
        if want is not None:
            same = [o for o in have if o.version == want]
            return same[0] if same else OpCode(code, None, int(want))
        if have:
            return max(have, key=lambda o: o.version)
        return OpCode(code, None, 1)

    def options(self, name: str, item: dict, where: str) -> Any:
        given = item.get("options", ...)
        if given is None:
            return None
        cls_name = item.get("options_type") or _OPTIONS_NAME.get(name) or \
            "".join(w.capitalize() for w in name.split("_")) + "Options"
        cls = getattr(fb, cls_name + "T", None) if not cls_name.endswith("T") else getattr(fb, cls_name, None)
        if given is ...:
            if cls is None or name in _NO_DEFAULT_OPTIONS:
                return None
            given = {}
        if cls is None:
            raise self.err(where, f"{name} has no options table '{cls_name}' (set 'options_type')")
        opts = cls()
        for k, v in {**_OPTION_DEFAULTS.get(name, {}), **given}.items():
            attr = _camel(k)
            if not hasattr(opts, attr):
                raise self.err(where, f"{cls_name} has no field '{k}' (fields: {sorted(vars(opts))})")
            if isinstance(v, str) and "ActivationFunction" in attr:
                v = getattr(fb.ActivationFunctionType, v.upper())
            setattr(opts, attr, v)
        return opts

    def op(self, item: dict, scope: _Scope, env: dict, where: str) -> None:
        name = str(item["op"]).upper()
        ins = [self.ref(x, scope, env, f"{where} {name} input {k}") for k, x in enumerate(item["in"])]
        opts = self.options(name, item, where)
        outs_spec = item["out"] if isinstance(item["out"], list) else [item["out"]]
        opcode = self.opcode(name)
        key = (name, opcode.version, tuple(id(t) if t is not None else None for t in ins), _opts_key(opts))
        if item.get("cse", True) and key in self.cse:
            outs = self.cse[key]
        else:
            inferred = infer_shapes(name, ins, opts, len(outs_spec), lambda m: self.err(where, f"{name}: {m}"))
            outs = []
            for k, spec in enumerate(outs_spec):
                spec = {"name": spec} if isinstance(spec, str) else dict(spec)
                local = interpolate(spec["name"], env)
                shape, dtype = inferred[k] if inferred and k < len(inferred) else (None, None)
                if "shape" in spec:
                    given = [int(evaluate(s, env)) for s in spec["shape"]]
                    if shape is not None and list(shape) != given:
                        raise self.err(where, f"{name} output '{local}': the recipe says shape {given}, "
                                              f"the inputs give {list(shape)}")
                    shape = given
                if "dtype" in spec:
                    dtype = dtype_code(spec["dtype"])
                if shape is None or dtype is None:
                    raise self.err(where, f"{name} output '{local}': give its 'shape' and 'dtype' "
                                          "(not inferred for this operator)")
                outs.append(self.new_tensor("/".join(self.prefix + [local]), shape, dtype))
            node = Node(opcode, ins, outs, opts, *_union(opts))
            self.nodes.append(node)
            self.cse[key] = outs
        for k, spec in enumerate(outs_spec):
            local = interpolate(spec if isinstance(spec, str) else spec["name"], env)
            scope.names[local] = outs[k]

    def call(self, item: dict, scope: _Scope, env: dict, where: str, globals_: _Scope) -> None:
        m = self.recipe["macros"][item["call"]]
        args = item.get("args", {})
        if set(args) != set(m["params"]):
            raise self.err(where, f"macro '{item['call']}' takes {m['params']}, got {sorted(args)}")
        inner = _Scope({p: self.ref(args[p], scope, env, f"{where} argument '{p}'") for p in m["params"]}, globals_)
        label = interpolate(item.get("scope", item["call"]), env)
        self.prefix.append(label)
        try:
            self.run(m["body"], inner, env, f"macros.{item['call']}", globals_)
        finally:
            self.prefix.pop()
        rets = m["returns"] if isinstance(m["returns"], list) else [m["returns"]]
        outs = item["out"] if isinstance(item["out"], list) else [item["out"]]
        if len(rets) != len(outs):
            raise self.err(where, f"macro '{item['call']}' returns {len(rets)} values, 'out' names {len(outs)}")
        for r, o in zip(rets, outs):
            t = inner.names.get(r)
            if t is None:
                raise self.err(where, f"macro '{item['call']}' does not define its return value '{r}'")
            scope.names[interpolate(o, env)] = t

    def run(self, body: list, scope: _Scope, env: dict, where: str, globals_: _Scope) -> None:
        for k, item in enumerate(body):
            w = f"{where}[{k}]"
            if "body" in item:
                var, rng = loop_range(item["for"], env, w)
                for v in rng:
                    e = {**env, var: v}
                    label = item.get("scope")
                    if label:
                        self.prefix.append(interpolate(label, e))
                    try:
                        self.run(item["body"], scope, e, f"{w}({var}={v})", globals_)
                    finally:
                        if label:
                            self.prefix.pop()
            elif "call" in item:
                self.call(item, scope, env, w, globals_)
            else:
                self.op(item, scope, env, w)


def _camel(k: str) -> str:
    if "_" not in k:
        return k
    first, *rest = k.split("_")
    return first + "".join(w.capitalize() for w in rest)


def _opts_key(opts: Any) -> Any:
    if opts is None:
        return None
    return (type(opts).__name__, tuple(sorted((k, repr(v)) for k, v in vars(opts).items())))


def _union(opts: Any) -> tuple[int, Any, int]:
    """(options_type, options2, options2_type) for Node()."""
    if opts is None:
        return 0, None, 0
    name = type(opts).__name__.removesuffix("T")
    if hasattr(fb.BuiltinOptions, name):
        return getattr(fb.BuiltinOptions, name), None, 0
    return 0, opts, getattr(fb.BuiltinOptions2, name)


def _eval_nested(v: Any, env: dict, err) -> Any:
    if isinstance(v, list):
        return [_eval_nested(x, env, err) for x in v]
    try:
        return evaluate(v, env)
    except Unknown as exc:
        raise err(f"value needs dimension '{exc.symbol}'") from None


# ---------------------------------------------------------------------------- shape inference
def _broadcast(shapes: list[list[int]], err) -> list[int]:
    try:
        return [int(d) for d in np.broadcast_shapes(*[tuple(s) for s in shapes])]
    except ValueError:
        raise err(f"shapes {shapes} do not broadcast") from None


def _const_ints(t: Tensor | None, what: str, err) -> list[int]:
    if t is None or not t.is_constant:
        raise err(f"{what} must be a constant to infer the output shape (or give 'shape')")
    return [int(x) for x in np.asarray(t.numpy()).reshape(-1)]


def infer_shapes(op: str, ins: list[Tensor | None], opts: Any, n_out: int, err) -> list[tuple[list[int], int]] | None:
    """(shape, dtype) of each output for the operators recipes commonly use; None when not inferable."""
    x = ins[0] if ins else None
    if x is None:
        return None
    if op in _ELEMENTWISE and len(ins) >= 2 and ins[1] is not None:
        dt = BY_NAME["BOOL"].code if op in _COMPARE else x.dtype
        return [(_broadcast([x.shape, ins[1].shape], err), dt)]
    if op == "SELECT_V2" and len(ins) == 3:
        return [(_broadcast([t.shape for t in ins], err), ins[1].dtype)]
    if op in _UNARY:
        return [(list(x.shape), x.dtype)]
    if op == "DEQUANTIZE":
        return [(list(x.shape), BY_NAME["FLOAT32"].code)]
    if op in _REDUCE:
        axes = {a % len(x.shape) for a in _const_ints(ins[1] if len(ins) > 1 else None, "the axis", err)} if x.shape else set()
        keep = bool(getattr(opts, "keepDims", False))
        shape = [1 if i in axes else d for i, d in enumerate(x.shape)] if keep else \
            [d for i, d in enumerate(x.shape) if i not in axes]
        return [(shape, x.dtype)]
    if op == "RESHAPE":
        new = _const_ints(ins[1] if len(ins) > 1 else None, "the new shape", err)
        n = int(np.prod(x.shape))
        if -1 in new:
            rest = int(np.prod([d for d in new if d != -1]))
            new = [n // rest if d == -1 else d for d in new]
        if int(np.prod(new)) != n:
            raise err(f"cannot reshape {list(x.shape)} ({n} elements) to {new}")
        return [(new, x.dtype)]
    if op == "TRANSPOSE":
        perm = _const_ints(ins[1] if len(ins) > 1 else None, "the permutation", err)
        return [([x.shape[p] for p in perm], x.dtype)]
    if op == "FULLY_CONNECTED":
        w = ins[1]
        if w is None or len(w.shape) != 2:
            raise err("the weights must be 2-D [out, in]")
        k = x.shape[-1] if x.shape else 1
        if w.shape[1] != k:
            raise err(f"input {list(x.shape)} and weights {list(w.shape)} disagree on the inner size")
        out_dt = BY_NAME["FLOAT32"].code if DTYPES[x.dtype].is_float else x.dtype
        if getattr(opts, "keepNumDims", False):
            return [(list(x.shape[:-1]) + [w.shape[0]], out_dt)]
        return [([int(np.prod(x.shape)) // k, w.shape[0]], out_dt)]
    if op == "BATCH_MATMUL":
        y = ins[1]
        a, bb = list(x.shape), list(y.shape)
        if getattr(opts, "adjX", False):
            a[-2], a[-1] = a[-1], a[-2]
        if getattr(opts, "adjY", False):
            bb[-2], bb[-1] = bb[-1], bb[-2]
        if a[-1] != bb[-2]:
            raise err(f"{list(x.shape)} × {list(y.shape)} (adjX={getattr(opts, 'adjX', False)}, "
                      f"adjY={getattr(opts, 'adjY', False)}) disagree on the inner size")
        batch = _broadcast([a[:-2], bb[:-2]], err)
        return [(batch + [a[-2], bb[-1]], x.dtype)]
    if op == "CONCATENATION":
        axis = int(getattr(opts, "axis", 0)) % len(x.shape)
        shape = list(x.shape)
        shape[axis] = sum(t.shape[axis] for t in ins)
        return [(shape, x.dtype)]
    return None


# ---------------------------------------------------------------------------- applying
def apply_recipe(ir: Model, binding: Binding) -> tuple[list[str], list[Tensor]]:
    """Build a bound recipe into its graph; returns (signature keys created/changed, existing constants re-used)."""
    recipe = binding.recipe
    graph = ir.graphs[binding.graph_index]
    env = dict(binding.dims)
    bld = _Builder(ir, graph, binding)
    src = recipe.source
    sig_spec = recipe["signature"]
    new_key = interpolate(sig_spec["key"], env) if "key" in sig_spec else None
    if new_key is not None and ir.signature(new_key) is not None:
        raise SurgeryError(f"{src}: the model already has a signature '{new_key}'")
    if new_key is None and recipe.get("inputs"):
        raise SurgeryError(f"{src}: a recipe that extends existing signatures cannot add inputs")

    globals_ = _Scope()
    for name, t in binding.weights.items():
        globals_.names[name] = t
    for name, a in binding.anchors.items():
        if isinstance(a, Tensor):
            globals_.names[name] = a
    # inputs
    new_inputs: dict[str, Tensor] = {}
    for item, ienv in expand(recipe.get("inputs", []), env, f"{src}: inputs"):
        name = interpolate(item["name"], ienv)
        local = interpolate(item.get("as", item["name"]), ienv)
        if "like_base_kv" in item:
            kv = interpolate(item["like_base_kv"], ienv)
            rec = binding.base_kv.get(kv)
            if rec is None:
                raise SurgeryError(f"{src}: input '{name}' copies base KV cache '{kv}', which the base does not have "
                                   f"(it has: {', '.join(sorted(binding.base_kv)) or 'no base model — pass --base'})")
            t = bld.new_tensor(f"{new_key}_{name}", list(rec.shape), rec.dtype.code, _quantization(rec.quantization))
        else:
            try:
                shape = [int(evaluate(d, ienv)) for d in item["shape"]]
            except Unknown as exc:
                raise SurgeryError(f"{src}: input '{name}' needs dimension '{exc.symbol}'") from None
            t = bld.new_tensor(f"{new_key}_{name}", shape, dtype_code(item.get("dtype", "FLOAT32")))
        if name in new_inputs:
            raise SurgeryError(f"{src}: input '{name}' is declared twice")
        new_inputs[name] = t
        globals_.names[local] = t
    # constants
    for item, cenv in expand(recipe.get("constants", []), env, f"{src}: constants"):
        name = interpolate(item["name"], cenv)
        globals_.names[name] = bld.constant(item["value"], item["dtype"], item.get("shape"), cenv, f"constants '{name}'",
                                            name=f"{recipe.name}/{name}")
    # body
    scope = _Scope(parent=globals_)
    bld.run(recipe["body"], scope, env, "body", globals_)
    # outputs
    outputs: dict[str, Tensor] = {}
    for item, oenv in expand(recipe["outputs"], env, f"{src}: outputs"):
        name = interpolate(item["name"], oenv)
        t = bld.ref(item["value"], scope, oenv, f"outputs '{name}'")
        if name in outputs:
            raise SurgeryError(f"{src}: output '{name}' is declared twice")
        if t.is_constant or not any(t is x for x in bld.tensors) or any(t is x for x in new_inputs.values()):
            raise SurgeryError(f"{src}: output '{name}' must be computed by the recipe's operators")
        outputs[name] = t
    if new_key is not None:
        sigs: list[Signature] = []
    else:
        anchor = binding.anchors.get(sig_spec["extend"])
        if not isinstance(anchor, Tensor):
            raise SurgeryError(f"{src}: signature.extend names '{sig_spec['extend']}', which is not a tensor anchor")
        sigs = [s for s in ir.signatures if s.graph is graph]
        if not sigs:
            raise SurgeryError(f"{src}: no signature runs graph '{graph.name}', which computes '{anchor.name}'")
        for s in sigs:
            clash = sorted(set(outputs) & set(s.outputs))
            if clash:
                raise SurgeryError(f"{src}: signature '{s.key}' already has outputs {clash}")
    # name the outputs like a converter would: <signature>_<name>_output
    first = new_key or sigs[0].key
    for name, t in outputs.items():
        bld.names.discard(t.name)
        t.name = bld.unique(f"{first}_{name}_output")
    # commit (rolled back if the final checks fail)
    saved = (list(graph.tensors), list(graph.nodes), list(graph.inputs), list(graph.outputs), list(ir.signatures),
             {id(s): dict(s.outputs) for s in sigs})
    try:
        graph.tensors.extend(bld.tensors)
        graph.nodes.extend(bld.nodes)
        graph.inputs.extend(new_inputs.values())
        for t in outputs.values():
            if not any(t is o for o in graph.outputs):
                graph.outputs.append(t)
        if new_key is not None:
            sig = Signature(new_key, graph, dict(new_inputs), dict(outputs))
            pos = sig_spec.get("position")
            if pos is None:
                ir.signatures.append(sig)
            else:
                ir.signatures.insert(int(pos), sig)
            keys = [new_key]
        else:
            for s in sigs:
                s.outputs.update(outputs)
            keys = [s.key for s in sigs]
        graph.toposort(strict=True)
    except Exception:
        graph.tensors, graph.nodes, graph.inputs, graph.outputs = saved[:4]
        ir.signatures[:] = saved[4]
        for s in sigs:
            s.outputs.clear()
            s.outputs.update(saved[5][id(s)])
        raise
    return keys, bld.reused


def _quantization(q: Any) -> Any:
    """records.Quantization → fb.QuantizationParametersT (per-tensor / per-channel only)."""
    if q is None or q.is_empty:
        return None
    if q.scheme not in ("per-tensor", "per-channel"):
        raise SurgeryError(f"cannot copy {q.scheme} quantization onto a recipe input")
    p = fb.QuantizationParametersT()
    p.scale = [float(x) for x in q.scale]
    p.zeroPoint = [int(x) for x in q.zero_point] if q.zero_point is not None else [0] * len(q.scale)
    p.quantizedDimension = int(q.quantized_dimension)
    return p
