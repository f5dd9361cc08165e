"""Model: the IR (:class:`ModelData`) plus reading and writing TFLite flatbuffers.

Imports run one way: this module uses importer.py and exporter.py, which know
only model_data.py, graph.py and elements.py.
"""
from __future__ import annotations

from typing import Any

from mtpsurgeon.formats.tflite.schema import fb
from mtpsurgeon.surgery.ir.elements import Buffer
from mtpsurgeon.surgery.ir.exporter import export_model
from mtpsurgeon.surgery.ir.importer import import_model
from mtpsurgeon.surgery.ir.model_data import ModelData, Signature, names_from_tensors

__all__ = ["Model", "ModelData", "Signature", "names_from_tensors"]


class Model(ModelData):
    """A whole model (see :class:`ModelData`) that can be read from and written to TFLite."""

    @classmethod
    def from_tflite(cls, tflite_model: Any) -> "Model":
        """Build from a :class:`TFLiteModel` (zero-copy: weights stay views of its map)."""
        view = tflite_model.source.slice(tflite_model.offset, tflite_model.length, "model")
        m = cls.from_buffer(view)
        m.source = tflite_model
        m._inline_external(tflite_model)
        return m

    def _inline_external(self, tflite_model: Any) -> None:
        """Make tensors whose bytes live in an external weights file hold them (views of that file's map).

        The weights file is opened through the input policy
        (:mod:`mtpsurgeon.inputs`); a model written from this IR is
        self-contained, so it computes the same wherever it is written.
        """
        if not tflite_model.records.external_buffers:
            return
        by_id: dict[int, Buffer] = {}
        for gi, g in enumerate(self.graphs):
            for ti, t in enumerate(g.tensors):
                if t.external_buffer:
                    if t.external_buffer not in by_id:
                        by_id[t.external_buffer] = Buffer(tflite_model.tensor_bytes(tflite_model.tensor(gi, ti)))
                    t.buffer, t.external_buffer = by_id[t.external_buffer], 0
        self.external_buffer_groups = self.external_buffers = None

    @classmethod
    def from_buffer(cls, view: memoryview | bytes) -> "Model":
        """Build from a TFLite flatbuffer held in memory (kept by reference)."""
        view = memoryview(view)
        mt = fb.ModelT.InitFromObj(fb.Model.GetRootAs(view, 0))
        return import_model(mt, view, cls())

    def to_modelT(self) -> "fb.ModelT":
        """Export to the object API. Buffer data are zero-copy uint8 views."""
        return export_model(self)
