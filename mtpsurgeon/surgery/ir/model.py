"""Model: the IR (:class:`ModelData`) plus reading and writing TFLite flatbuffers.

Imports run one way: this module uses importer.py and exporter.py, which know
only model_data.py, graph.py and elements.py.
"""
from __future__ import annotations

from typing import Any

from mtpsurgeon.formats.tflite.schema import fb
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
        return m

    @classmethod
    def from_buffer(cls, view: memoryview | bytes) -> "Model":
        """Build from a TFLite flatbuffer held in memory (kept by reference)."""
        view = memoryview(view)
        mt = fb.ModelT.InitFromObj(fb.Model.GetRootAs(view, 0))
        return import_model(mt, view, cls())

    def to_modelT(self) -> "fb.ModelT":
        """Export to the object API. Buffer data are zero-copy uint8 views."""
        return export_model(self)
