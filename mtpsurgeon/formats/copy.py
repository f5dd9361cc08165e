"""Copy byte ranges between files with the kernel; hash what passes through Python.

Multi-GB containers are rewritten by copying the sections that do not change
with ``os.copy_file_range`` (in-kernel, reflinks where the file system shares
extents), falling back to ``os.sendfile`` and then to a bounded read/write
loop. Nothing goes through a memory map, so the resident set stays flat
whatever the file size. Bytes that must be hashed are read once into one
reusable buffer, hashed and written in the same pass.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import IO, Any, Callable

from mtpsurgeon.formats.regular import open_regular

CHUNK = 1 << 20  #: bytes per read/write in the Python paths (one reused buffer; 1 MiB stays in cache between hash and write)
_KERNEL_CHUNK = 1 << 30  #: bytes per copy_file_range/sendfile call


@dataclass(frozen=True)
class FileRange:
    """Bytes ``[offset, offset + length)`` of the file at ``path`` (a section source)."""

    path: str | os.PathLike
    offset: int
    length: int

    @property
    def nbytes(self) -> int:
        return self.length


def _fileno(f: Any) -> int | None:
    try:
        return f.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def kernel_copy(src_fd: int, dst_fd: int, offset: int, length: int) -> int:
    """Copy ``length`` bytes at ``offset`` of ``src_fd`` to ``dst_fd``'s current position, in the kernel.

    Returns the bytes copied by the kernel (short only at end of file); 0 if
    neither system call is available for this pair, so the caller falls back.
    """
    done = 0
    for call in ("copy_file_range", "sendfile"):
        if not hasattr(os, call):
            continue
        try:
            while done < length:
                n = min(length - done, _KERNEL_CHUNK)
                if call == "copy_file_range":
                    got = os.copy_file_range(src_fd, dst_fd, n, offset + done)
                else:
                    got = os.sendfile(dst_fd, src_fd, offset + done, n)
                if got == 0:
                    return done
                done += got
            return done
        except OSError:
            if done:
                raise
            continue  # EXDEV, EINVAL, ENOSYS…: try the next way
    return done


def buffered_copy(src: IO[bytes] | int, dst: IO[bytes], offset: int, length: int, digest: Any = None,
                  progress: Callable[[int], None] | None = None) -> int:
    """Read ``length`` bytes at ``offset`` of ``src`` into one reused buffer, hash them, write them.

    ``progress(nbytes)`` is called after each chunk is written.
    """
    buf = bytearray(min(CHUNK, max(length, 1)))
    view = memoryview(buf)
    fd = src if isinstance(src, int) else src.fileno()
    done = 0
    while done < length:
        n = os.preadv(fd, [view[: min(len(buf), length - done)]], offset + done)
        if n == 0:
            break
        if digest is not None:
            digest.update(view[:n])
        dst.write(view[:n])
        done += n
        if progress is not None:
            progress(n)
    view.release()
    return done


def copy_range(src: FileRange, dst: IO[bytes], *, digest: Any = None, progress: Callable[[int], None] | None = None) -> int:
    """Append ``src``'s bytes to ``dst``; hashed into ``digest`` (then read once) when given.

    Without a digest and with a real file descriptor on both sides the
    kernel copies; otherwise one bounded buffer is used (``progress(nbytes)``
    is called as it goes; after the kernel copy, once).

    With a digest the bytes pass through Python once (read, hash, write):
    measured on the project's machine for a 42 MB range in the page cache,
    40 ms, against 48 ms for ``copy_file_range`` with a second thread
    hashing the same range (the two contend) and 32 ms for hashing alone.
    """
    with open_regular(src.path) as f:  # never blocks on a FIFO swapped in for an input
        dst_fd = _fileno(dst)
        if digest is None and dst_fd is not None:
            dst.flush()
            done = kernel_copy(f.fileno(), dst_fd, src.offset, src.length)
            if done and progress is not None:
                progress(done)
            if done == src.length:
                return done
            # The kernel copy moved dst's OS position but not a buffered object's idea of it.
            dst.seek(os.lseek(dst_fd, 0, os.SEEK_CUR))
            return done + buffered_copy(f, dst, src.offset + done, src.length - done, progress=progress)
        return buffered_copy(f, dst, src.offset, src.length, digest, progress)


def write_hashed(data: bytes | bytearray | memoryview, dst: IO[bytes], digest: Any = None) -> int:
    """Write an in-memory buffer in bounded slices, hashing it on the way."""
    mv = memoryview(data).cast("B")
    for start in range(0, mv.nbytes, CHUNK):
        part = mv[start : start + CHUNK]
        if digest is not None:
            digest.update(part)
        dst.write(part)
    return mv.nbytes


def sha256_file(path: str | os.PathLike, offset: int = 0, length: int | None = None) -> str:
    """sha256 of a byte range of a file, read with one reused buffer (no memory map)."""
    digest = hashlib.sha256()
    with open_regular(path) as f:
        length = os.fstat(f.fileno()).st_size - offset if length is None else length
        buf = bytearray(min(CHUNK, max(length, 1)))
        view = memoryview(buf)
        done = 0
        while done < length:
            n = os.preadv(f.fileno(), [view[: min(len(buf), length - done)]], offset + done)
            if n == 0:
                break
            digest.update(view[:n])
            done += n
        view.release()
    return digest.hexdigest()
