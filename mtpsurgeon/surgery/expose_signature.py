"""(c) Re-expose a subgraph no signature reaches through a SignatureDef."""
from __future__ import annotations

from mtpsurgeon.analysis.signatures import role_name
from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.surgery.ir import Model, Signature, Tensor


def recovered_names(tensors: list[Tensor], what: str) -> dict[str, Tensor]:
    """Signature names for I/O tensors, converter decorations stripped; clashes are errors."""
    out: dict[str, Tensor] = {}
    for t in tensors:
        name = role_name(t.name)
        if name in out:
            raise SurgeryError(f"two subgraph {what} recover the same name '{name}'")
        out[name] = t
    return out


def named_by_analysis(graph_tensors: list[Tensor], io: list[Tensor], names: dict[str, int], what: str) -> dict[str, Tensor]:
    """Signature names the analysis recovered (runtime name → tensor index as imported); all of ``io`` named."""
    out = {name: graph_tensors[i] for name, i in names.items()}
    missing = [t.name for t in io if not any(t is x for x in out.values())]
    if missing:
        raise SurgeryError(f"subgraph {what} {', '.join(map(repr, missing))} has no recovered runtime name")
    return out


def expose_subgraph(model: Model, subgraph: int, key: str, io_names: tuple[dict[str, int], dict[str, int]] | None = None,
                    ) -> Signature:
    """Add signature ``key`` over graph ``subgraph`` as the model's first signature.

    ``io_names`` maps the runtime's input and output names to tensor indices
    of the graph as imported, as the analysis recovered them (from names or shapes);
    without it names come from tensor names with converter decorations
    stripped (``mtp_drafter_activations:0`` → ``activations``). LiteRT-LM
    looks the drafter up as signature 0, hence the first place.
    """
    graph = model.graphs[subgraph]
    if not graph.inputs or not graph.outputs:
        raise SurgeryError(f"subgraph {subgraph} has no inputs/outputs to expose")
    if io_names is not None:
        ins = named_by_analysis(graph.tensors, graph.inputs, io_names[0], "input")
        outs = named_by_analysis(graph.tensors, graph.outputs, io_names[1], "output")
    else:
        ins, outs = recovered_names(graph.inputs, "inputs"), recovered_names(graph.outputs, "outputs")
    sig = model.add_signature(key, graph, ins, outs)
    model.signatures.remove(sig)
    model.signatures.insert(0, sig)
    return sig
