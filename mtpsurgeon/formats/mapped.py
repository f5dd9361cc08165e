"""One read-only memory map per input file, with bounds-checked views."""
from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import BinaryIO

from mtpsurgeon.errors import MalformedFileError
from mtpsurgeon.formats.copy import sha256_file
from mtpsurgeon.formats.regular import open_regular
from mtpsurgeon.inputs import WeightsFolder, weights_folder_for


class MappedFile:
    """A file mapped read-only; slices are zero-copy memoryviews.

    The map is shared by every reader that looks into the file (a container
    and the TFLite models inside its sections), so weights are never copied.
    """

    def __init__(self, path: str | os.PathLike, fh: BinaryIO | None = None) -> None:
        """Map ``path``, or the file ``fh`` already opened for it (e.g. by the input policy)."""
        self.path = Path(path)
        self._fh = open_regular(self.path) if fh is None else fh  # never blocks on a FIFO or device
        #: where side files this file's models name are read from (bound now: see mtpsurgeon.inputs)
        self.side_files: WeightsFolder = weights_folder_for(self.path)
        size = os.fstat(self._fh.fileno()).st_size
        self.size = size
        if size == 0:
            self._fh.close()
            raise MalformedFileError(self.path, "file is empty")
        self._map = mmap.mmap(self._fh.fileno(), 0, access=mmap.ACCESS_READ)
        self.view = memoryview(self._map)

    def slice(self, offset: int, length: int, what: str = "data") -> memoryview:
        """Return bytes [offset, offset+length) or raise naming what overflowed."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise MalformedFileError(
                self.path,
                f"{what} at offset {offset} with size {length} runs past the end of the file ({self.size} bytes)",
            )
        return self.view[offset : offset + length]

    def release_pages(self, offset: int = 0, length: int | None = None) -> None:
        """Let the kernel drop this range's pages from our resident set (they fault back in on use).

        Called after a model's metadata has been parsed into records: a
        multi-MB flatbuffer need not stay resident while it is analysed.
        """
        advise = getattr(self._map, "madvise", None)
        flag = getattr(mmap, "MADV_DONTNEED", None)
        if advise is None or flag is None:
            return
        length = self.size - offset if length is None else length
        start = offset - offset % mmap.PAGESIZE
        try:
            advise(flag, start, min(self.size, offset + length) - start)
        except (OSError, ValueError):
            pass  # advice only

    def sha256(self, offset: int = 0, length: int | None = None) -> str:
        """sha256 of a byte range (the whole file by default), read through one reused buffer.

        Not through the map: hashing a multi-GB range must not fault it into
        this process's resident set.
        """
        length = self.size - offset if length is None else length
        self.slice(offset, length, "hashed range")  # bounds check only
        return sha256_file(self.path, offset, length)

    def close(self) -> None:
        """Release the map. Views handed out must no longer be used."""
        try:
            self.view.release()
            self._map.close()
        except (BufferError, ValueError):
            pass  # a live numpy view still holds the map; the OS frees it at exit
        self._fh.close()

    def __enter__(self) -> "MappedFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
