"""Open any supported file by sniffing its magic bytes."""
from __future__ import annotations

import os

from mtpsurgeon.errors import MalformedFileError
from mtpsurgeon.formats.litertlm.reader import LiteRTLMContainer, read_litertlm
from mtpsurgeon.formats.litertlm.schema import MAGIC
from mtpsurgeon.formats.mapped import MappedFile
from mtpsurgeon.formats.regular import check_regular_file
from mtpsurgeon.formats.tflite import TFLiteModel, read_tflite
from mtpsurgeon.formats.tflite.schema import FILE_IDENTIFIER

ModelFile = TFLiteModel | LiteRTLMContainer


def open_file(path: str | os.PathLike) -> ModelFile:
    """Map ``path`` and parse it as a .litertlm container or a .tflite model."""
    check_regular_file(path)  # before any open(): a FIFO would block forever
    source = MappedFile(path)
    head = bytes(source.view[:8])
    try:
        if head == MAGIC:
            return read_litertlm(source)
        if len(head) == 8 and head[4:8] == FILE_IDENTIFIER:
            return read_tflite(source)
    except BaseException:
        source.close()
        raise
    source.close()
    raise MalformedFileError(path, f"not a .tflite or .litertlm file (first bytes {head!r})")
