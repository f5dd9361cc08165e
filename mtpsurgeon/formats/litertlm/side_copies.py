"""Byte-for-byte copies of TFLite sections whose weights live in side files.

A section copied unchanged keeps its ``ExternalBufferGroup`` names, which a
reader resolves in the folder of the file that holds the copy. Written into
another folder than the one its side files were read from, the copy would not
find them — or would find other files of the same names there and compute
something else. Such a copy is refused before anything is written.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from mtpsurgeon.errors import MalformedFileError, UsageError
from mtpsurgeon.inputs import SideFileRefused, shown


def check_copies_find_side_files(container: Any, indices: Iterable[int], out: str | os.PathLike) -> None:
    """Refuse to copy sections ``indices`` of ``container`` to ``out`` if one names side files out would miss.

    A section that cannot be parsed is copied as before (nothing is resolved
    for it); a hostile side-file name in one is refused (:mod:`mtpsurgeon.inputs`).
    """
    side_files = getattr(getattr(container, "source", None), "side_files", None)
    if side_files is None:
        return
    folder = Path(os.path.realpath(side_files.folder))
    dest = Path(os.path.realpath(Path(out).parent))
    if dest == folder:
        return
    for index in indices:
        s = container.sections[index]
        if not s.is_tflite:
            continue
        try:
            groups = container.model(index).records.external_buffer_groups
        except SideFileRefused:
            raise
        except MalformedFileError:
            continue
        if groups:
            names = ", ".join(shown(g) for g in groups[:3]) + (f" (+{len(groups) - 3})" if len(groups) > 3 else "")
            raise UsageError(f"{container.path}: section {index} ({s.model_type or 'untagged'}) reads its weights "
                             f"from {names} in {folder}; copied unchanged into {dest} it would look for them there: "
                             f"write the output into {folder}")
