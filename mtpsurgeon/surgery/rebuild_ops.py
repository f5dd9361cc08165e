"""(d) Rebuild pruned operators from a recipe: apply a bound recipe to the IR.

    keys = rebuild(ir, model, finding, "parallel-heads", base)

binds the recipe (:func:`mtpsurgeon.surgery.recipe.bind`), then builds its
inputs, constants and operators (:mod:`mtpsurgeon.surgery.recipe.builder`) and
exposes the result: a new signature (``signature.key``) or new outputs of the
signatures that run the graph of an anchor (``signature.extend``). Everything
is staged first and committed to the graph at the end, so a recipe that fails
leaves the IR untouched.
"""
from __future__ import annotations

from typing import Any

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.formats.tflite.schema import fb
from mtpsurgeon.surgery.ir import Model, Signature, Tensor, dtype_code
from mtpsurgeon.surgery.recipe import (
    Binding,
    Recipe,
    Unknown,
    bind,
    evaluate,
    expand,
    interpolate,
    load_recipe,
)
from mtpsurgeon.surgery.recipe.builder import _Builder, _Scope


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
