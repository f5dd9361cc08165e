"""TensorType → storage facts (bits, numpy dtype) and sub-byte unpacking."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mtpsurgeon.formats.tflite.schema import TENSOR_TYPE_NAMES


@dataclass(frozen=True)
class DType:
    """How one TensorType is stored."""

    code: int
    name: str
    bits: int  #: bits per element (0 for variable-size types)
    numpy: str | None  #: numpy dtype of the stored elements (None: opaque)
    signed: bool = True
    is_float: bool = False

    @property
    def packed(self) -> bool:
        """True for sub-byte types stored several to a byte."""
        return 0 < self.bits < 8

    def nbytes(self, count: int) -> int:
        """Stored size of ``count`` elements (sub-byte types round up)."""
        return (count * self.bits + 7) // 8


_TABLE = [
    DType(0, "FLOAT32", 32, "<f4", is_float=True),
    DType(1, "FLOAT16", 16, "<f2", is_float=True),
    DType(2, "INT32", 32, "<i4"),
    DType(3, "UINT8", 8, "u1", signed=False),
    DType(4, "INT64", 64, "<i8"),
    DType(5, "STRING", 0, None),
    DType(6, "BOOL", 8, "?", signed=False),
    DType(7, "INT16", 16, "<i2"),
    DType(8, "COMPLEX64", 64, "<c8", is_float=True),
    DType(9, "INT8", 8, "i1"),
    DType(10, "FLOAT64", 64, "<f8", is_float=True),
    DType(11, "COMPLEX128", 128, "<c16", is_float=True),
    DType(12, "UINT64", 64, "<u8", signed=False),
    DType(13, "RESOURCE", 0, None),
    DType(14, "VARIANT", 0, None),
    DType(15, "UINT32", 32, "<u4", signed=False),
    DType(16, "UINT16", 16, "<u2", signed=False),
    DType(17, "INT4", 4, "i1"),
    DType(18, "BFLOAT16", 16, "<u2", is_float=True),  # stored as raw 16-bit words
    DType(19, "INT2", 2, "i1"),
    DType(20, "UINT4", 4, "u1", signed=False),
    DType(21, "FLOAT8_E4M3FN", 8, "u1", is_float=True),  # raw bytes
    DType(22, "FLOAT8_E5M2", 8, "u1", is_float=True),  # raw bytes
]
DTYPES: dict[int, DType] = {d.code: d for d in _TABLE}
BY_NAME: dict[str, DType] = {d.name: d for d in _TABLE}

# Every type the installed schema knows must be described here.
_missing = set(TENSOR_TYPE_NAMES) - set(DTYPES)
assert not _missing, f"schema has tensor types mtpsurgeon does not describe: {_missing}"


def unpack_subbyte(raw: np.ndarray | memoryview, bits: int, signed: bool, count: int) -> np.ndarray:
    """Unpack ``count`` values of ``bits`` bits each, lowest bits first.

    LiteRT packs INT4 two to a byte and INT2 four to a byte, the first element
    in the low bits. Signed values are sign-extended (two's complement).
    """
    data = np.frombuffer(raw, dtype=np.uint8)
    per_byte = 8 // bits
    mask = (1 << bits) - 1
    shifts = np.arange(per_byte, dtype=np.uint8) * bits
    values = ((data[:, None] >> shifts) & mask).reshape(-1)[:count]
    if not signed:
        return values.astype(np.uint8)
    values = values.astype(np.int8)
    return np.where(values >= (1 << (bits - 1)), values - (1 << bits), values).astype(np.int8)


def bf16_to_f32(words: np.ndarray) -> np.ndarray:
    """Widen raw bfloat16 words (uint16) to float32 exactly."""
    return (words.astype(np.uint32) << 16).view(np.float32)


def float8_to_f32(raw: np.ndarray, name: str) -> np.ndarray:
    """Decode FLOAT8_E4M3FN or FLOAT8_E5M2 bytes to float32 exactly."""
    b = raw.astype(np.uint32)
    sign = np.where(b & 0x80, -1.0, 1.0).astype(np.float32)
    if name == "FLOAT8_E5M2":
        exp, man, mbits, bias = (b >> 2) & 0x1F, b & 0x3, 2, 15
        special = exp == 0x1F
        inf_or_nan = np.where(man == 0, np.inf, np.nan)
    else:
        exp, man, mbits, bias = (b >> 3) & 0xF, b & 0x7, 3, 7
        special = (exp == 0xF) & (man == 0x7)
        inf_or_nan = np.full(b.shape, np.nan)
    normal = (1.0 + man / (1 << mbits)) * np.exp2(exp.astype(np.float64) - bias)
    subnormal = (man / (1 << mbits)) * np.exp2(1.0 - bias)
    value = np.where(exp == 0, subnormal, normal)
    value = np.where(special, inf_or_nan, value)
    return (sign * value).astype(np.float32)
