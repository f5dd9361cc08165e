"""Read safetensors checkpoints with the ``safetensors`` library, as numpy (bf16 included).

numpy has no bfloat16; ``ml_dtypes`` (a dependency of ai-edge-litert) registers
one, so BF16 tensors load as ``ml_dtypes.bfloat16`` arrays and convert exactly
to float32. Tensors are read one at a time, on demand.
"""
from __future__ import annotations

import os
from pathlib import Path

import ml_dtypes  # noqa: F401  (registers numpy's 'bfloat16' for safetensors' numpy loader)
import numpy as np

from mtpsurgeon.errors import MalformedFileError

#: safetensors dtypes a weight may be stored in.
FLOAT_DTYPES = frozenset({"F32", "F16", "BF16"})


class SafetensorsSet:
    """The tensors of one or more .safetensors files, by name: dtype and shape up front, data on demand."""

    def __init__(self, paths: list[str | os.PathLike]) -> None:
        from safetensors import safe_open

        self.paths = [Path(p) for p in paths]
        self.where: dict[str, Path] = {}
        self.dtypes: dict[str, str] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        for p in self.paths:
            try:
                with safe_open(str(p), framework="np") as f:
                    for name in f.keys():
                        s = f.get_slice(name)
                        self.where[name] = p
                        self.dtypes[name] = s.get_dtype()
                        self.shapes[name] = tuple(int(d) for d in s.get_shape())
            except Exception as exc:  # safetensors raises its own SafetensorError as well as OSError / ValueError
                raise MalformedFileError(p, f"not a readable safetensors file ({type(exc).__name__}: {exc})") from None

    def __contains__(self, name: str) -> bool:
        return name in self.where

    def names(self) -> list[str]:
        return list(self.where)

    def float32(self, name: str) -> np.ndarray:
        """Tensor ``name`` as a float32 array (exact for F16 and BF16)."""
        from safetensors import safe_open

        with safe_open(str(self.where[name]), framework="np") as f:
            arr = f.get_tensor(name)
        return np.ascontiguousarray(arr, dtype=np.float32)


def safetensors_files(folder: str | os.PathLike) -> list[Path]:
    """The .safetensors files of a checkpoint folder, sorted (sharded checkpoints have several)."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix == ".safetensors" and p.is_file())
