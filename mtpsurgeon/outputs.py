"""Output-path policy and all-or-nothing output sets, used by every command.

Policy (:func:`check_output`), applied to every file a command writes:

* an output that is, or links to, one of the command's inputs is refused, even
  with ``--force``;
* a symbolic link at the destination is refused, never followed;
* an existing output is refused unless ``force``; a folder is never replaced;
* a destination below a regular file is refused with one line.

Sets (:class:`OutputSet`): every file of one command is written under a
temporary name ``.NAME.partial-PID`` beside its destination; only when all of
them are complete (and verified by the caller) are they renamed into place.
On any failure the temporary files are removed, so a destination holds either
the whole set or nothing new. Temporary files left by an earlier run that was
killed (its PID no longer alive) are removed when the same output is written
again, and listed in :attr:`OutputSet.cleaned`.

    with OutputSet(force=False, inputs=[model]) as outs:
        a, b = outs.add("out.tflite"), outs.add("out.safetensors")
        write(a); write(b); verify(a)
    # both renamed into place here, or neither

:func:`atomic_output` is the one-file form. OS errors while writing (``ENOSPC``,
``EFBIG``, ``EROFS``, ...) become :class:`OutputError`: one line naming the file.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from pathlib import Path
from typing import Callable, Iterable, Iterator

from mtpsurgeon.errors import OutputError, OutputExistsError

_PARTIAL = re.compile(r"^\.(?P<name>.+)\.partial-(?P<pid>\d+)$")


def partial_name(final: Path, pid: int | None = None) -> Path:
    """The temporary name of ``final`` while this process writes it."""
    return final.with_name(f".{final.name}.partial-{os.getpid() if pid is None else pid}")


def is_partial(path: str | os.PathLike) -> bool:
    """True for a temporary name made by :func:`partial_name`."""
    return _PARTIAL.match(Path(path).name) is not None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a leftover from an earlier process that had our PID
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_partials(final: Path) -> list[Path]:
    """Temporary files of ``final`` left by processes that no longer run."""
    out = []
    try:
        entries = list(final.parent.iterdir())
    except OSError:
        return out
    for p in entries:
        m = _PARTIAL.match(p.name)
        if m and m.group("name") == final.name and not _alive(int(m.group("pid"))):
            out.append(p)
    return sorted(out)


def _describe_error(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        reason = "no space left on the device"
    elif exc.errno == errno.EFBIG:
        reason = "file too large for the file system (or the size limit)"
    elif exc.errno == errno.EROFS:
        reason = "read-only file system"
    elif exc.errno == errno.EDQUOT:
        reason = "disk quota exceeded"
    return f"cannot write: {reason}"


def _first_existing_ancestor(p: Path) -> Path | None:
    for parent in p.parents:
        if os.path.lexists(parent):
            return parent
    return None


def check_output(path: str | os.PathLike, force: bool = False, inputs: Iterable[str | os.PathLike | None] = ()) -> Path:
    """Apply the output policy to ``path`` (see the module doc); return it as a Path."""
    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        st = None
    except OSError as exc:
        raise OutputError(p, f"cannot check the output: {exc.strerror or exc}") from exc
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise OutputError(p, "is a symbolic link; refusing to write through it (remove it or pick another name)")
    for src in inputs:
        if src is not None and st is not None and same_file(p, src):
            raise OutputError(p, f"is an input of this command ({src}); refusing to overwrite it, even with --force")
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError(p, "is a directory")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OutputError(p, "exists and is not a regular file; refusing to replace it")
    if st is not None and not force:
        raise OutputExistsError(p)
    anc = _first_existing_ancestor(p)
    if anc is not None and not anc.is_dir():
        raise OutputError(p, f"cannot create it: {anc} is not a directory")
    return p


def check_writable(path: str | os.PathLike, force: bool) -> Path:
    """Refuse an existing output without ``force``; return it as a Path (no input known)."""
    return check_output(path, force)


class OutputSet:
    """Files of one command, written under temporary names, renamed into place together."""

    def __init__(self, *, force: bool = False, inputs: Iterable[str | os.PathLike | None] = ()) -> None:
        self.force = force
        self.inputs = [Path(p) for p in inputs if p is not None]
        self.files: list[tuple[Path, Path]] = []  #: (destination, temporary name)
        self._verify: dict[Path, Callable[[Path], None]] = {}
        self.cleaned: list[Path] = []  #: stale temporary files of earlier killed runs, removed
        self.created_dirs: list[Path] = []  #: folders made for the outputs (removed again on failure if empty)
        self.committed = False

    def check(self, path: str | os.PathLike) -> Path:
        """Apply the policy to ``path`` without adding it (for early refusal)."""
        return check_output(path, self.force, self.inputs)

    def add(self, path: str | os.PathLike, verify: Callable[[Path], None] | None = None) -> Path:
        """Register ``path`` as an output; return the temporary name to write it under.

        ``verify(temporary path)`` runs before the set is moved into place and may raise.
        """
        final = self.check(path)
        if any(_same_name(final, f) for f, _ in self.files):
            raise OutputError(final, "is written twice by this command (two outputs with the same name)")
        missing = [d for d in reversed(final.parents) if not os.path.lexists(d)]
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            self.created_dirs.extend(d for d in missing if d not in self.created_dirs)
        except OSError as exc:
            raise OutputError(final.parent, f"cannot create the folder: {exc.strerror or exc}") from exc
        for stale in stale_partials(final):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
                self.cleaned.append(stale)
        tmp = partial_name(final)
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        self.files.append((final, tmp))
        if verify is not None:
            self._verify[tmp] = verify
        return tmp

    def final(self, tmp: str | os.PathLike) -> Path:
        """The destination of a temporary name handed out by :meth:`add`."""
        for f, t in self.files:
            if t == Path(tmp):
                return f
        return Path(tmp)

    def commit(self) -> None:
        """Rename every temporary file into place; all must exist and pass the policy again."""
        for final, tmp in self.files:
            if not tmp.exists():
                raise OutputError(final, "nothing was written")
            if tmp in self._verify:
                self._verify[tmp](tmp)
            self.check(final)  # the destination may have changed while we wrote
        done: list[Path] = []
        try:
            for final, tmp in self.files:
                os.replace(tmp, final)
                done.append(final)
        except OSError as exc:
            for d in done:  # best effort: do not leave half a set behind
                with contextlib.suppress(OSError):
                    d.unlink()
            raise OutputError(final, f"cannot move into place: {exc.strerror or exc}") from exc
        self.committed = True

    def discard(self) -> None:
        """Remove every temporary file (after a failure)."""
        for _, tmp in self.files:
            with contextlib.suppress(OSError):
                tmp.unlink()
        for d in reversed(self.created_dirs):
            with contextlib.suppress(OSError):
                d.rmdir()

    def __enter__(self) -> "OutputSet":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self.discard()
                raise
            return False
        self.discard()
        if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError) and exc.errno is not None:
            target = self._output_named(exc.filename)
            if target is not None:
                raise OutputError(target, _describe_error(exc)) from exc
        return False

    def _output_named(self, filename: object) -> Path | None:
        """The destination an OS error refers to (an error without a file name is a write error)."""
        if not self.files:
            return None
        if filename is None:
            return self.files[-1][0]
        name = Path(os.fsdecode(filename)) if isinstance(filename, (str, bytes, os.PathLike)) else None
        for final, tmp in self.files:
            if name is not None and (_same_name(name, final) or _same_name(name, tmp) or
                                     (is_partial(name) and name.parent == tmp.parent and tmp.name in name.name)):
                return final
        return None


def _same_name(a: Path, b: Path) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, force: bool = False,
                  inputs: Iterable[str | os.PathLike | None] = ()) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place on success.

    A path that already is a temporary name of an :class:`OutputSet` is
    yielded as is: the set renames it when the whole set is complete.
    """
    if is_partial(path):
        yield Path(path)
        return
    with OutputSet(force=force, inputs=inputs) as outs:
        yield outs.add(path)


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name the same existing file (guards the input)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
