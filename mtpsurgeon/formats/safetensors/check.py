"""A cheap completeness check of a written safetensors file, run before it is moved into place."""
from __future__ import annotations

import json
import os
from pathlib import Path

from mtpsurgeon.errors import OutputError


def check_complete(path: str | os.PathLike) -> None:
    """Raise unless the header parses and the tensors' data ends exactly where the file does."""
    p = Path(path)
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n < 2 or 8 + n > size:
            raise OutputError(p, f"incomplete safetensors file (header length {n}, file {size} bytes)")
        try:
            header = json.loads(f.read(n))
        except ValueError as exc:
            raise OutputError(p, f"incomplete safetensors file (header: {exc})") from None
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end != size:
        raise OutputError(p, f"incomplete safetensors file ({8 + n + end} bytes declared, {size} written)")
