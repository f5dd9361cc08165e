"""A model reduced to one signature, written as its own .tflite: what a runtime packs for that signature alone.

The LiteRT interpreter's XNNPACK delegate packs a copy of the weights of
every signature subgraph of a model when the model first runs (measured: a
model with `decode` and `verify` over the same 512 MiB of weights holds
1 GiB of packed weights after one `decode` call; the same model reduced to
`decode`, 0.5 GiB). Timing one signature in bounded memory therefore needs a
file holding only that signature and the graphs it calls.

    write_single_signature(base_section_model, "decode", "/tmp/x/decode.tflite")

Weights stay views of the source's memory map and are streamed out by the
writer (offset buffers), so the process holds no copy of them.
"""
from __future__ import annotations

import os

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.formats.tflite.model import TFLiteModel
from mtpsurgeon.formats.tflite.writer import write_tflite
from mtpsurgeon.surgery.ir import Model


def keep_one_signature(model: Model, key: str) -> Model:
    """Drop every other signature and every graph the kept one does not reach; its graph becomes graph 0."""
    sig = model.signature(key)
    if sig is None:
        raise SurgeryError(f"the model has no signature '{key}' (it has {[s.key for s in model.signatures]})")
    reached = model.reachable_graphs([sig.graph])  # the signature's graph first, then what it calls
    model.signatures = [sig]
    # A graph outside ``reached`` is called only by graphs outside it, so all of them go together.
    model.graphs = reached
    model.cleanup(remove_unused_nodes=False)
    return model


def write_single_signature(source: TFLiteModel, key: str, path: str | os.PathLike) -> int:
    """Write ``source`` reduced to signature ``key`` to ``path`` (weights streamed); returns the file size."""
    model = keep_one_signature(Model.from_tflite(source), key)
    write_tflite(model, path, force=True, force_offset_buffers=True)
    return os.path.getsize(path)
