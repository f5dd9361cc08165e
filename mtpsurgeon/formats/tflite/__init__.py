"""TFLite / LiteRT flatbuffer models: zero-copy reader, dtypes, writer."""
from mtpsurgeon.formats.tflite.model import TFLiteModel
from mtpsurgeon.formats.tflite.reader import read_tflite

__all__ = ["TFLiteModel", "read_tflite"]
