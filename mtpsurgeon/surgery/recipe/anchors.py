"""Anchors: the live tensors and operators a recipe attaches to (by name, producer, or operand)."""
from __future__ import annotations

from typing import Any

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.surgery.recipe.expressions import show_pattern, unify_shape
from mtpsurgeon.surgery.recipe.format import Recipe


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
