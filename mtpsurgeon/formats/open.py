"""Open any supported file by sniffing its magic bytes."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Union

from mtpsurgeon.errors import MalformedFileError, UsageError
from mtpsurgeon.formats.identify import file_kind
from mtpsurgeon.formats.litertlm.reader import LiteRTLMContainer, read_litertlm
from mtpsurgeon.formats.mapped import MappedFile
from mtpsurgeon.formats.regular import check_regular_file
from mtpsurgeon.inputs import reading_weights_from

if TYPE_CHECKING:
    from mtpsurgeon.formats.tflite import TFLiteModel

ModelFile = Union["TFLiteModel", LiteRTLMContainer]


def open_file(path: str | os.PathLike, *, container_for: str | None = None,
              weights_dir: str | os.PathLike | None = None) -> ModelFile:
    """Map ``path`` and parse it as a .litertlm container or a .tflite model.

    ``container_for`` (what needs it, e.g. ``'--section'``) accepts only a
    container: a .tflite model is then a usage error, and the TFLite reader
    (numpy, the LiteRT schema) is never imported. The external weights the
    models name are read through the input policy (:mod:`mtpsurgeon.inputs`):
    from ``weights_dir`` if given, else the current ``reading_weights_from``
    folder, else the file's own folder.
    """
    check_regular_file(path)  # before any open(): a FIFO would block forever
    with reading_weights_from(weights_dir):
        source = MappedFile(path)  # binds the folder side files are read from
    head = bytes(source.view[:8])
    kind = file_kind(head)
    try:
        if kind == "litertlm":
            return read_litertlm(source)
        if kind == "tflite" and container_for is None:
            from mtpsurgeon.formats.tflite import read_tflite

            return read_tflite(source)
    except BaseException:
        source.close()
        raise
    source.close()
    if kind == "tflite":
        raise UsageError(f"{path}: {container_for} needs a .litertlm container")
    raise MalformedFileError(path, f"not a .tflite or .litertlm file (first bytes {head!r})")
