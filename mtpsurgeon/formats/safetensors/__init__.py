"""safetensors output: a streaming writer of our own (the safetensors package is test-only)."""
from mtpsurgeon.formats.safetensors.writer import (
    DTYPE_SIZES,
    NUMPY_DTYPES,
    SafetensorsWriteError,
    SafetensorsWriter,
)

__all__ = ["SafetensorsWriter", "SafetensorsWriteError", "DTYPE_SIZES", "NUMPY_DTYPES"]
