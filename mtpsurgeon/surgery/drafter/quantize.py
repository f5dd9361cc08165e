"""Weight-only quantization of drafter matrices, in numpy, bit-exact with ai-edge-quantizer.

Symmetric, zero point 0, along output channels (``quantized_dimension`` 0):

* ``int8``    INT8 per channel, narrow range [-127, 127], scale = max|w| / 127;
* ``int4c``   INT4 per channel, range [-8, 7], scale = max|w| / 7;
* ``int4b32`` INT4 in blocks of 32 inputs, FLOAT16 scales [out, in/32]
  (rounded to bfloat16 precision first, as ai-edge-quantizer does).

Rounding is ``np.rint`` (half to even) of ``w / scale``; bounds below 1e-9
become 1e-9. INT4 is packed two per byte, low nibble first. The test suite
re-quantizes the fixture's float drafter and compares the bytes with the
fixture's ai-edge-quantizer output.
"""
from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from mtpsurgeon.errors import UsageError

MODES = ("f32", "int8", "int4c", "int4b32")
_MIN_BOUND = 1e-9


@dataclass
class QuantizedWeight:
    """Packed data, its TensorType name, and per-channel scales or blockwise FLOAT16 scales."""

    data: np.ndarray  #: int8 values, or uint8 packed nibbles for INT4
    dtype: str  #: 'INT8' or 'INT4'
    scales: np.ndarray  #: float32 [out] (per channel) or float16 [out, in/block] (blockwise)
    block_size: int = 0


def pack_int4(q: np.ndarray) -> np.ndarray:
    """Signed 4-bit values, two per byte, low nibble first (row-major; an odd tail is zero-padded)."""
    flat = (q.reshape(-1).astype(np.int8) & 0x0F).astype(np.uint8)
    if flat.size % 2:
        flat = np.append(flat, np.uint8(0))
    return (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8)


def quantize_weight(w: np.ndarray, scheme: str) -> QuantizedWeight:
    """Quantize a float32 [out, in] matrix with ``scheme`` ('int8', 'int4c', 'int4b32', or 'int4b<N>')."""
    w = np.ascontiguousarray(w, dtype=np.float32)
    if w.ndim != 2:
        raise UsageError(f"can only quantize matrices, not shape {list(w.shape)}")
    if scheme == "int8":
        return _per_channel(w, 8)
    if scheme == "int4c":
        return _per_channel(w, 4)
    if scheme.startswith("int4b"):
        return _blockwise(w, int(scheme[5:]))
    raise UsageError(f"unknown quantization '{scheme}' (choose from {', '.join(MODES)})")


#: Rows quantized at once: rows are independent, so chunking changes no value, only peak memory.
_CHUNK_ELEMENTS = 1 << 22


def _per_channel(w: np.ndarray, bits: int) -> QuantizedWeight:
    qmax = 2 ** (bits - 1) - 1
    qmin = -qmax if bits >= 8 else -(2 ** (bits - 1))  # narrow range only for >= 8 bits
    bound = np.maximum(np.maximum(np.abs(w.min(axis=1, keepdims=True)), np.abs(w.max(axis=1, keepdims=True))),
                       _MIN_BOUND)
    scale = (bound / qmax).astype(np.float32)
    q = np.empty(w.shape, np.int8)
    rows = max(1, _CHUNK_ELEMENTS // max(1, w.shape[1]))
    for r in range(0, w.shape[0], rows):
        x = np.divide(w[r:r + rows], scale[r:r + rows])
        np.rint(x, out=x)
        q[r:r + rows] = np.clip(x, qmin, qmax, out=x)
    data = q if bits == 8 else pack_int4(q)
    return QuantizedWeight(data, "INT8" if bits == 8 else "INT4", scale.reshape(-1))


def _blockwise(w: np.ndarray, block: int) -> QuantizedWeight:
    out, inp = w.shape
    if block <= 0 or inp % block:
        raise UsageError(f"blockwise-{block} quantization needs an input width divisible by {block}, not {inp}")
    blocks = w.reshape(out, inp // block, block)
    bound = np.maximum(np.maximum(np.abs(blocks.min(axis=2, keepdims=True)), np.abs(blocks.max(axis=2, keepdims=True))),
                       _MIN_BOUND)
    scale = (bound / 7).astype(np.float32)
    scale = scale.astype(ml_dtypes.bfloat16).astype(np.float16).astype(np.float32)
    q = np.clip(np.rint(np.divide(blocks, scale)), -8, 7).astype(np.int8).reshape(out, inp)
    return QuantizedWeight(pack_int4(q), "INT4", scale.reshape(out, inp // block).astype(np.float16), block)


def scheme_for(role: str, mode: str) -> str | None:
    """The scheme of a matrix with ``role`` under ``--quant mode`` (None: float32).

    The tied LM head stays INT8 per channel under the INT4 modes, as in
    Google's shipped drafters and the litert-torch + ai-edge-quantizer fixtures.
    """
    if mode == "f32":
        return None
    if mode == "int8" or role == "lm_head":
        return "int8"
    return {"int4c": "int4c", "int4b32": "int4b32"}[mode]
