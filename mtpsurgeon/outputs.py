"""Safe output files: written under a temporary name, renamed when complete.

    with atomic_output(path, force=False) as tmp:
        write(tmp)            # any failure leaves no partial file behind
        verify(tmp)           # still under the temporary name
    # now renamed to `path`

An existing ``path`` is refused unless ``force``; the temporary file lives in
the same directory so the final rename is atomic.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from mtpsurgeon.errors import MtpSurgeonError, OutputExistsError


def check_writable(path: str | os.PathLike, force: bool) -> Path:
    """Refuse an existing output without ``force``; return it as a Path."""
    p = Path(path)
    if p.exists() and not force:
        raise OutputExistsError(p)
    if p.exists() and p.is_dir():
        raise MtpSurgeonError(f"{p}: is a directory")
    return p


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place on success."""
    final = check_writable(path, force)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.partial-{os.getpid()}")
    try:
        yield tmp
        if not tmp.exists():
            raise MtpSurgeonError(f"{final}: nothing was written")
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name the same existing file (guards the input)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
