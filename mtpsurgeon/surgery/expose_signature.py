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


def expose_subgraph(model: Model, subgraph: int, key: str) -> Signature:
    """Add signature ``key`` over graph ``subgraph`` as the model's first signature.

    Input and output names are recovered from tensor names with converter
    decorations stripped (``mtp_drafter_activations:0`` → ``activations``).
    LiteRT-LM looks the drafter up as signature 0, hence the first place.
    """
    graph = model.graphs[subgraph]
    if not graph.inputs or not graph.outputs:
        raise SurgeryError(f"subgraph {subgraph} has no inputs/outputs to expose")
    sig = model.add_signature(key, graph, recovered_names(graph.inputs, "inputs"), recovered_names(graph.outputs, "outputs"))
    model.signatures.remove(sig)
    model.signatures.insert(0, sig)
    return sig
