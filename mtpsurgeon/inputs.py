"""Input policy: a file *named by a model* is read only from the model's own folder.

The counterpart of :mod:`mtpsurgeon.outputs`. A model file is untrusted, and
some of its strings name other files: ``ExternalBufferGroup.name`` (weights
kept beside the model, as converters write them), and any future side file
(a ``TFLiteWeights`` section reference, a tokenizer path). Such a name never
chooses what is read. :class:`WeightsFolder` resolves it only inside one folder
— the model's own, or the one the user gave (``--weights-dir`` /
``weights_dir=``):

* the name is one plain file name: not empty, no ``/`` or ``\\``, not ``.`` or
  ``..``, no NUL or control characters, valid UTF-8, at most 255 bytes;
* the file is opened relative to the folder's descriptor with ``O_NOFOLLOW``,
  so what is opened is an entry of that folder; a symbolic link is followed
  only when its target is itself an entry of the same folder;
* the opened descriptor must be a regular file (``fstat``): never a FIFO,
  socket or device, and opening never blocks.

Anything else raises :class:`SideFileRefused` (exit 2) naming the model, the
group and the (escaped) name; nothing is read and nothing is written.

The folder is bound when a model file is opened (see
:func:`weights_folder_for`): inside ``with reading_weights_from(DIR):`` every
model opened uses ``DIR``; otherwise its own folder. Every verb opens models
through :func:`mtpsurgeon.formats.open.open_file`, so every verb applies it.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, TypeVar

from mtpsurgeon.errors import MalformedFileError, UsageError

#: Longest name accepted (the usual file-name limit, in bytes).
MAX_NAME_BYTES = 255
#: How much of a refused name a message shows (a corrupt length can make it megabytes long).
SHOWN = 120

_CHOSEN: contextvars.ContextVar[Path | None] = contextvars.ContextVar("mtpsurgeon_weights_dir", default=None)


F = TypeVar("F", bound=Callable)


class SideFileRefused(MalformedFileError):
    """A model names a side file the input policy does not allow (exit 2)."""


def shown(name: str) -> str:
    """``name`` quoted with every control character escaped, cut to :data:`SHOWN` characters."""
    cut = f"… (+{len(name) - SHOWN} characters)" if len(name) > SHOWN else ""
    return ascii(name[:SHOWN]) + cut


def name_problem(name: object) -> str | None:
    """Why ``name`` is not one plain file name, or None when it is."""
    if not isinstance(name, str) or not name:
        return "is empty"
    if "/" in name or "\\" in name:
        return "holds a path separator (only a plain file name is allowed)"
    if name in (".", ".."):
        return "is not a file name"
    if "\ufffd" in name:
        return "is not valid UTF-8"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        return "holds control characters"
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        return f"is longer than {MAX_NAME_BYTES} bytes"
    return None


@dataclass(frozen=True)
class WeightsFolder:
    """The one folder side files named by one model are read from."""

    folder: Path
    explicit: bool = False  #: given by the user (``--weights-dir``) rather than the model's own folder

    def _where(self) -> str:
        return f"--weights-dir {self.folder}" if self.explicit else "the model's folder"

    def check_name(self, model: object, what: str, name: str) -> None:
        """Refuse ``name`` (the name ``what`` gives, e.g. ``external buffer group 0``) unless it is a plain file name."""
        problem = name_problem(name)
        if problem:
            raise SideFileRefused(model, f"{what} names {shown(name)}, which {problem}: refused (side files are read "
                                         f"only from {self._where()})")

    def open(self, model: object, what: str, name: str) -> tuple[Path, BinaryIO]:
        """Open side file ``name`` read-only inside the folder: ``(its path, an open file)``; refuse anything else."""
        self.check_name(model, what, name)

        def refuse(problem: str) -> SideFileRefused:
            return SideFileRefused(model, f"{what} names {shown(name)}, which {problem}")

        flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            folder_fd = os.open(self.folder, flags)
        except OSError as exc:
            raise refuse(f"cannot be looked up: {self._where()} cannot be opened ({exc.strerror or exc})") from exc
        try:
            entry = self._entry(folder_fd, name, refuse)
            fd = self._open_entry(folder_fd, entry, refuse)
        finally:
            os.close(folder_fd)
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            os.close(fd)
            raise refuse("is not a regular file (a FIFO, socket or device is never read)")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return self.folder / entry, os.fdopen(fd, "rb")

    def _entry(self, folder_fd: int, name: str, refuse) -> str:
        """The folder entry ``name`` stands for: itself, or the target of a link that stays in the folder."""
        try:
            st = os.lstat(name, dir_fd=folder_fd) if os.lstat in os.supports_dir_fd else os.lstat(self.folder / name)
        except FileNotFoundError as exc:
            raise refuse(f"is not in {self._where()} ({self.folder})") from exc
        except OSError as exc:
            raise refuse(f"cannot be looked up ({exc.strerror or exc})") from exc
        if not stat.S_ISLNK(st.st_mode):
            return name
        target = Path(os.path.realpath(self.folder / name))
        if target.parent != Path(os.path.realpath(self.folder)):
            raise refuse(f"is a symbolic link to a file outside {self._where()}: refused")
        return target.name

    def _open_entry(self, folder_fd: int, entry: str, refuse) -> int:
        flags = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
                 | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
        try:
            return os.open(entry, flags, dir_fd=folder_fd) if os.open in os.supports_dir_fd \
                else os.open(self.folder / entry, flags)
        except FileNotFoundError as exc:
            raise refuse(f"is not in {self._where()} ({self.folder})") from exc
        except OSError as exc:  # ELOOP: the entry became a link after it was looked up
            raise refuse(f"cannot be opened safely ({exc.strerror or exc})") from exc


def weights_folder_for(model_path: str | os.PathLike) -> WeightsFolder:
    """The policy for a model opened now: the folder of :func:`reading_weights_from`, else the model's own."""
    chosen = _CHOSEN.get()
    if chosen is not None:
        return WeightsFolder(chosen, explicit=True)
    return WeightsFolder(Path(os.path.abspath(model_path)).parent)


@contextlib.contextmanager
def reading_weights_from(folder: str | os.PathLike | None) -> Iterator[None]:
    """Models opened inside this block read the side files they name from ``folder`` (None: their own folder)."""
    if folder is None:
        yield
        return
    path = Path(os.path.abspath(folder))
    if not path.is_dir():
        raise UsageError(f"--weights-dir {folder}: not a folder")
    token = _CHOSEN.set(path)
    try:
        yield
    finally:
        _CHOSEN.reset(token)


def accepts_weights_dir(fn: F) -> F:
    """Give library call ``fn`` the keyword ``weights_dir``: the models it opens read their side files from there.

    Works for generator functions too (the bodies of ``contextlib.contextmanager``
    calls): the folder then holds while the generator runs.
    """
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def wrapper(*args, weights_dir: str | os.PathLike | None = None, **kwargs):
            with reading_weights_from(weights_dir):
                return (yield from fn(*args, **kwargs))
    else:
        @functools.wraps(fn)
        def wrapper(*args, weights_dir: str | os.PathLike | None = None, **kwargs):
            with reading_weights_from(weights_dir):
                return fn(*args, **kwargs)
    sig = inspect.signature(fn)
    params = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
    params.append(inspect.Parameter("weights_dir", inspect.Parameter.KEYWORD_ONLY, default=None,
                                    annotation="str | os.PathLike | None"))
    params += [p for p in sig.parameters.values() if p.kind is p.VAR_KEYWORD]
    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
