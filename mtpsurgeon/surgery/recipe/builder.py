"""Emitting a recipe's body as IR: the staging builder, its name scopes, macros and loops.

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
from mtpsurgeon.formats.tflite.schema import BUILTIN_OP_CODES
from mtpsurgeon.surgery.ir import Buffer, Graph, Model, Node, OpCode, Tensor, dtype_code
from mtpsurgeon.surgery.recipe.binding import Binding
from mtpsurgeon.surgery.recipe.expressions import (
    Unknown,
    evaluate,
    interpolate,
    loop_range,
)
from mtpsurgeon.surgery.recipe.options import _opts_key, _union, make_options
from mtpsurgeon.surgery.recipe.shapes import infer_shapes


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
    """Stages new tensors and nodes for one graph; `apply_recipe` adds them to the IR once all succeed."""

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
        return make_options(name, item, lambda m: self.err(where, m))

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


def _eval_nested(v: Any, env: dict, err) -> Any:
    if isinstance(v, list):
        return [_eval_nested(x, env, err) for x in v]
    try:
        return evaluate(v, env)
    except Unknown as exc:
        raise err(f"value needs dimension '{exc.symbol}'") from None
