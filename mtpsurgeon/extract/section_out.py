"""A container section copied out byte for byte, from the header alone (``extract --section S``).

This path reads the ``.litertlm`` header (no TFLite parsing, no analysis)
and copies the section's byte range once, hashing it on the way, so its cost
is the copy plus the interpreter's start-up. It imports nothing heavy (no
numpy, flatbuffers or LiteRT schema): ``python -X importtime`` shows it.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mtpsurgeon.errors import MalformedFileError, OutputError, UsageError
from mtpsurgeon.formats.copy import FileRange, copy_range, sha256_file
from mtpsurgeon.formats.identify import TFLITE_IDENTIFIER
from mtpsurgeon.formats.litertlm.reader import LiteRTLMContainer
from mtpsurgeon.formats.open import open_file
from mtpsurgeon.outputs import OutputSet, atomic_output
from mtpsurgeon.paths import safe_component


def section_file_name(base: str, index: int, model_type: str | None) -> str:
    """``<stem>.section<N>.<model_type>.tflite``; the model_type comes from the file, so it is sanitised."""
    kind = safe_component((model_type or "untagged").removeprefix("tf_lite_"), "untagged")
    return f"{base}.section{index}.{kind}.tflite"


def section_index(container: LiteRTLMContainer, section: str) -> int:
    """'3', 'mtp_drafter' or 'tf_lite_mtp_drafter' → a section index (UsageError when there is none)."""
    if section.isdigit():
        index = int(section)
        if index >= len(container.sections):
            raise UsageError(f"{container.path}: no section {index} (the container has {len(container.sections)})")
        return index
    wanted = section if section.startswith("tf_lite_") else f"tf_lite_{section}"
    s = container.find(wanted)
    if s is None:
        raise UsageError(f"{container.path}: no section with model_type '{wanted}'")
    return s.index


def write_section(container: Any, index: int, out_path: str | os.PathLike, force: bool = False,
                  progress: Callable[[int], None] | None = None) -> str:
    """Write section ``index`` byte for byte to ``out_path`` (atomically); return its sha256.

    The bytes are read once, through one reused buffer (not the memory map,
    so the resident set stays flat), and hashed on the way.
    """
    if not 0 <= index < len(container.sections):
        raise UsageError(f"section {index} does not exist ({len(container.sections)} sections)")
    s = container.sections[index]
    digest = hashlib.sha256()
    with atomic_output(out_path, force) as tmp, open(tmp, "wb") as f:
        if copy_range(FileRange(container.path, s.begin, s.size), f, digest=digest, progress=progress) != s.size:
            raise UsageError(f"{container.path}: section {index} is cut short (the file changed while being read)")
    return digest.hexdigest()


@dataclass
class SectionOut:
    """What :func:`copy_section_out` wrote."""

    model: dict  #: {path, sha256, kind, source, section_sha256}, as ``extract --json`` lists models
    cleaned: list[Path] = field(default_factory=list)  #: stale temporary files of killed runs, removed
    input_sha256: str | None = None


def copy_section_out(path: str | os.PathLike, section: str, out_dir: str | os.PathLike, *, force: bool = False,
                     hash_input: bool = False, progress: Callable[[int, int], None] | None = None) -> SectionOut:
    """Copy one TFLite section of the container at ``path`` into ``out_dir`` as ``<stem>.section<N>.<type>.tflite``.

    Only the header is parsed; the section's first bytes are checked for the
    TFLite file identifier. The file goes through an :class:`OutputSet`
    (temporary name, renamed when complete). ``progress(nbytes, total)`` is
    called as bytes are copied; ``hash_input`` also hashes the whole input.
    """
    out_dir = Path(out_dir)
    if os.path.lexists(out_dir) and not out_dir.is_dir():
        raise OutputError(out_dir, "exists and is not a directory")
    container = open_file(path, container_for="--section")
    try:
        index = section_index(container, section)
        s = container.sections[index]
        if not s.is_tflite:
            raise UsageError(f"{container.path}: section {index} is not a TFLite model")
        if s.size < 8 or bytes(container.source.slice(s.begin + 4, 4, f"section {index}")) != TFLITE_IDENTIFIER:
            label = f"section {index} ({s.model_type or 'untagged'})"
            raise MalformedFileError(container.path, f"{label}: not a TFLite model (missing 'TFL3' file identifier)")
        input_sha = sha256_file(container.path) if hash_input else None
        advance = (lambda n: progress(n, s.size)) if progress is not None else None
        target = out_dir / section_file_name(Path(path).stem, index, s.model_type)
        with OutputSet(force=force, inputs=[container.path]) as outs:
            digest = write_section(container, index, outs.add(target), True, progress=advance)
        model = {"path": str(target), "sha256": digest, "kind": "section", "source": f"section {index}",
                 "section_sha256": digest}
        return SectionOut(model, list(outs.cleaned), input_sha)
    finally:
        container.source.close()
