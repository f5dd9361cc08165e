"""Named I/O of signatures and subgraphs, normalised for matching by role."""
from __future__ import annotations

import re
from dataclasses import dataclass

from mtpsurgeon.analysis.interface import drafter_inputs, drafter_outputs
from mtpsurgeon.formats.tflite import TFLiteModel
from mtpsurgeon.formats.tflite.records import SignatureRecord, TensorRecord

_KV_NAME = re.compile(r"kv_cache_[kv]_\d+")


@dataclass(frozen=True)
class NamedIO:
    """Inputs and outputs of one entry point, by (normalised) name."""

    source: str  #: "signature 'decode'" or "subgraph 3 inputs/outputs"
    subgraph: int
    signature_key: str | None
    inputs: dict[str, TensorRecord]
    outputs: dict[str, TensorRecord]


def signature_io(model: TFLiteModel, sig: SignatureRecord) -> NamedIO:
    tensors = model.subgraphs[sig.subgraph].tensors
    return NamedIO(
        f"signature '{sig.key}'",
        sig.subgraph,
        sig.key,
        {n: tensors[i] for n, i in sig.inputs},
        {n: tensors[i] for n, i in sig.outputs},
    )


def role_name(tensor_name: str, prefix: str | None = None) -> str:
    """Strip converter decorations: ``mtp_drafter_activations:0`` → ``activations``."""
    name = tensor_name.split(":")[0]
    for suffix in ("_output", "_out"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    kv = _KV_NAME.search(name)
    if kv:
        return kv.group(0)
    if prefix and name.startswith(prefix + "_"):
        name = name[len(prefix) + 1 :]
    for known in ("projected_activations", "activations", "logits", "input_pos", "mask", "param_tensor", "tokens", "embeddings"):
        if name == known or name.endswith("_" + known) or name.endswith("/" + known):
            return known
    return name


def subgraph_io(model: TFLiteModel, sg_index: int, base_kv: dict[str, TensorRecord] | None = None) -> NamedIO:
    """I/O of a subgraph that no signature names, keyed by recovered role names.

    Names come from the tensor names with converter decorations stripped; when
    those do not give a drafter's interface (``StatefulPartitionedCall:0``),
    from shapes (:mod:`mtpsurgeon.analysis.interface`).
    """
    sg = model.subgraphs[sg_index]
    ins = [sg.tensors[i] for i in sg.inputs if i >= 0]
    outs = [sg.tensors[i] for i in sg.outputs if i >= 0]
    inputs = {role_name(t.name): t for t in ins}
    outputs = {role_name(t.name): t for t in outs}
    source = f"subgraph {sg_index} inputs/outputs"
    if not {"logits", "projected_activations"} <= outputs.keys() or "activations" not in inputs:
        by_shape = drafter_outputs(outs)
        by_shape_in = by_shape and drafter_inputs(ins, by_shape["projected_activations"].shape[-1], base_kv)
        if by_shape and by_shape_in:
            inputs, outputs = by_shape_in, by_shape
            source += " (names recovered from shapes)"
    return NamedIO(source, sg_index, None, inputs, outputs)


def kv_inputs(io: NamedIO) -> dict[str, TensorRecord]:
    """Inputs fed from a KV cache (the runtime feeds any input whose name has 'kv')."""
    return {n: t for n, t in io.inputs.items() if "kv" in n}


def last_dim(t: TensorRecord | None) -> int | None:
    return t.shape[-1] if t is not None and t.shape else None
