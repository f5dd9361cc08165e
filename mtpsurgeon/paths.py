"""One sanitiser for every string from a model file that becomes part of a path.

A model file is untrusted: a section's ``model_type``, a tensor or signature
name may hold ``/``, ``..``, control characters or thousands of bytes.
:func:`safe_component` turns any of them into one harmless file-name
component: no separators, no ``..``, no leading dot, no control or
non-printable characters, bounded length (a hash keeps long names distinct).
"""
from __future__ import annotations

import hashlib
import re
import unicodedata

#: Longest component produced; leaves room for a ``.partial-PID`` temp prefix/suffix
#: and an extension within the usual 255-byte file-name limit.
MAX_COMPONENT = 120
_ALLOWED = re.compile(r"[^A-Za-z0-9._+-]")


def _printable(ch: str) -> bool:
    return unicodedata.category(ch)[0] not in ("C", "Z") or ch == " "


def safe_component(name: str, fallback: str = "unnamed", max_len: int = MAX_COMPONENT) -> str:
    """``name`` as a single safe file-name component (never empty, ``.`` or ``..``).

    Only ``[A-Za-z0-9._+-]`` survive; every other character becomes ``_``;
    runs of dots collapse to one and leading dots/underscores are dropped, so
    the result can neither climb out of a folder nor hide itself.
    """
    clean = _ALLOWED.sub("_", "".join(ch if _printable(ch) else "_" for ch in str(name)))
    clean = re.sub(r"\.{2,}", ".", clean).lstrip("._").rstrip(".")
    clean = re.sub(r"_{2,}", "_", clean)
    if not clean:
        clean = safe_component(fallback, "unnamed", max_len) if fallback != name else "unnamed"
    if len(clean) > max_len:
        digest = hashlib.sha256(str(name).encode("utf-8", "surrogatepass")).hexdigest()[:10]
        clean = f"{clean[: max_len - 11]}_{digest}"
    return clean
