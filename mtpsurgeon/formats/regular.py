"""Inputs must be regular files: a FIFO, socket or device would block ``open()`` or never end."""
from __future__ import annotations

import os
import stat

from mtpsurgeon.errors import MalformedFileError

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def not_regular_reason(mode: int) -> str | None:
    """Why a file of this ``st_mode`` is not acceptable as an input, or None."""
    if stat.S_ISREG(mode):
        return None
    for test, what in _KINDS:
        if test(mode):
            return f"is {what}, not a regular file"
    return "is not a regular file"


def check_regular_file(path: str | os.PathLike) -> os.stat_result:
    """stat ``path`` (following links) without opening it; refuse anything but a regular file."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise MalformedFileError(path, f"cannot open: {exc.strerror or exc}") from exc
    reason = not_regular_reason(st.st_mode)
    if reason:
        raise MalformedFileError(path, reason)
    return st


def open_regular(path: str | os.PathLike):
    """Open ``path`` for reading without ever blocking, and check it is a regular file.

    ``O_NONBLOCK`` makes opening a FIFO that was swapped in after the stat
    return at once; the check is repeated on the open descriptor.
    """
    check_regular_file(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise MalformedFileError(path, f"cannot open: {exc.strerror or exc}") from exc
    reason = not_regular_reason(os.fstat(fd).st_mode)
    if reason:
        os.close(fd)
        raise MalformedFileError(path, reason)
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")
