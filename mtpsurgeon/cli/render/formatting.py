"""Small text helpers shared by the views."""
from __future__ import annotations


def human_bytes(n: int) -> str:
    """1536 → '1.5 KiB'."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def human_count(n: int) -> str:
    """1234567 → '1.23M'."""
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= div:
            return f"{n / div:.2f}{suffix}"
    return str(n)


def spec(dtype: str, shape) -> str:
    """('FLOAT32', [1, 4]) → 'f32[1,4]'."""
    short = {"FLOAT32": "f32", "FLOAT16": "f16", "INT32": "i32", "INT8": "i8", "INT4": "i4", "INT2": "i2", "UINT8": "u8",
             "BOOL": "bool", "INT64": "i64", "INT16": "i16", "BFLOAT16": "bf16", "UINT4": "u4"}.get(dtype, dtype.lower())
    return f"{short}[{','.join(str(d) for d in shape)}]"
