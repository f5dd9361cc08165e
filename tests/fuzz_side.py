"""Side-file cases for the fuzz campaign (tests/fuzz.py): models whose weights live in a file they name.

Each case takes a fixture, moves the constants of one TFLite model (the file
itself, or one TFLite section of a container) into a weights file beside it, as
converters write them (:mod:`weightskit`), and then breaks one thing about that
side file: the group's name (``../``, absolute, separators, NUL, control
characters, 300 bytes, a symbolic link leaving the folder, a FIFO, a folder, a
device, the model itself), the file (missing, empty) or the table (offsets and
lengths past the end, an undeclared group). ``plain`` breaks nothing: those
runs must keep working.

The leak oracle: every run has a *sentinel* file outside the model's folder
filled with a token unique to the run (``outside/secret.bin``), and every
hostile name points at it (or at ``/dev/zero``). A run whose stdout, stderr or
outputs contain the token has read it: a leak. In the forked child an audit
hook on ``open`` also records every open of a path inside that outside folder
or of ``/dev/zero`` (see :func:`watch_opens`).
"""
from __future__ import annotations

import os
import random
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).parent))

import weightskit  # noqa: E402

#: Which side-file fault a case has (``plain``: none).
SIDE_KINDS = ("plain", "dotdot", "absolute", "separator", "nul", "control", "long", "symlink_out", "symlink_in",
              "fifo", "directory", "device_link", "device_abs", "missing", "empty", "offset_past_end",
              "length_past_end", "bad_group_index", "self")
#: The token is repeated in blocks of this size, so any copied run of 2 blocks holds it whole.
BLOCK = 16
TOKEN_BYTES = 12
WEIGHTS = "model.weights"


@dataclass
class SideFile:
    """What a side-file case wrote: where the sentinel is and the token that betrays a read of it."""

    kind: str
    description: str
    token: bytes
    outside: Path  #: the folder holding the sentinel (never the model's folder)
    forbidden: tuple[str, ...]  #: real paths whose opening is a leak


def sentinel_bytes(token: bytes, size: int) -> bytes:
    """``size`` bytes (rounded up to a block) of ``token`` + a block counter."""
    blocks = -(-max(size, BLOCK) // BLOCK)
    return b"".join(token + (i & 0xFFFFFFFF).to_bytes(BLOCK - TOKEN_BYTES, "little") for i in range(blocks))


def _target(data: bytes, scratch: Path, rng: random.Random) -> tuple[bytes, Callable[[bytes], bytes], str]:
    """(the TFLite model to externalize, a function giving the whole file with it replaced, where it is)."""
    if data[:8] != b"LITERTLM":
        return data, lambda model: model, "the model"
    from mtpsurgeon.formats.litertlm.reader import read_litertlm
    from mtpsurgeon.formats.litertlm.writer import Replace, rewrite_container
    from mtpsurgeon.formats.mapped import MappedFile

    scratch.write_bytes(data)
    container = read_litertlm(MappedFile(scratch))
    tflite = [s for s in container.sections if s.is_tflite]
    base = [s for s in tflite if s.model_type == "tf_lite_prefill_decode"]
    section = base[0] if base and rng.random() < 0.5 else rng.choice(tflite)  # tune and enable-mtp read the base
    body = bytes(container.source.view[section.begin:section.end])

    def put_back(model: bytes) -> bytes:
        out = scratch.with_name("rewritten.litertlm")
        try:
            rewrite_container(container, [Replace(section.index, model)], out)
            return out.read_bytes()
        finally:
            container.source.close()
            out.unlink(missing_ok=True)
            scratch.unlink(missing_ok=True)

    return body, put_back, f"section {section.index}"


def _name(kind: str, folder: Path, outside: Path, model: Path, rng: random.Random) -> str:
    """The group name a ``kind`` case writes (creating the folder entries it needs)."""
    secret = outside / "secret.bin"
    if kind == "dotdot":
        return rng.choice(["../outside/secret.bin", f"../{folder.name}/../outside/secret.bin", ".."])
    if kind == "absolute":
        return str(secret)
    if kind == "separator":
        (folder / "sub").mkdir(exist_ok=True)
        return rng.choice(["sub/../../outside/secret.bin", "sub\\..\\..\\outside\\secret.bin", "./" + WEIGHTS,
                           WEIGHTS + "/"])
    if kind == "nul":
        return rng.choice([WEIGHTS + "\x00../outside/secret.bin", "\x00", "../outside/secret.bin\x00" + WEIGHTS])
    if kind == "control":
        return rng.choice(["w\x1b[31m.bin", "w\r.bin", "w\x7f.bin", "\x1b]8;;file:///etc/passwd\x07x"])
    if kind == "long":
        return "w" * rng.choice([256, 300, 4096, 70000])
    if kind in ("symlink_out", "symlink_in", "fifo", "directory", "device_link"):
        entry = folder / "side.bin"
        if kind == "symlink_out":
            os.symlink(rng.choice(["../outside/secret.bin", str(secret)]), entry)
        elif kind == "symlink_in":
            os.symlink(WEIGHTS, entry)  # legitimate: a link to a file of the same folder
        elif kind == "fifo":
            os.mkfifo(entry)
        elif kind == "directory":
            entry.mkdir()
        else:
            os.symlink("/dev/zero", entry)
        return entry.name
    if kind == "device_abs":
        return "/dev/zero"
    if kind == "self":
        return model.name
    return WEIGHTS


def make_side_case(data: bytes, model: Path, rng: random.Random, kind: str | None = None,
                   name: str | None = None) -> tuple[bytes, SideFile]:
    """Externalize one TFLite model of ``data`` (to be saved as ``model``) with one side-file fault.

    ``kind`` (default: drawn) and ``name`` (the group name; default: drawn for the kind) pin the case.

    Writes the weights file beside ``model`` (unless ``missing``) and the
    sentinel outside its folder; returns the model's new bytes and the case.
    """
    kind = kind or rng.choice(SIDE_KINDS)
    folder = model.parent
    outside = folder.parent / "outside"
    outside.mkdir(exist_ok=True)
    token = bytes(rng.getrandbits(8) for _ in range(TOKEN_BYTES))
    body, put_back, where = _target(data, folder.parent / "source.litertlm", rng)
    name = _name(kind, folder, outside, model, rng) if name is None else name
    shift = {"offset_past_end": {"offset_shift": rng.choice([1 << 20, 1 << 31, 1 << 62])},
             "length_past_end": {"length_shift": rng.choice([1, 4096, 1 << 40])},
             "bad_group_index": {"group_index": rng.choice([1, 7, 0x7FFFFFFF])}}.get(kind, {})
    ext = weightskit.externalize(body, name, **shift)
    if kind != "missing":
        (folder / WEIGHTS).write_bytes(b"" if kind == "empty" else ext.weights)
    (outside / "secret.bin").write_bytes(sentinel_bytes(token, len(ext.weights)))
    forbidden = (os.path.realpath(outside), "/dev/zero")
    return put_back(ext.model), SideFile(kind, f"side {kind} in {where}: group {ascii(name)[:60]}", token, outside,
                                         forbidden)


# -- the leak oracle ------------------------------------------------------------------------------

def leaks(side: SideFile, places: list[Path]) -> list[str]:
    """Files among ``places`` (files or folders, searched whole) that hold the sentinel's token."""
    found = []
    for place in places:
        files = [place] if place.is_file() else sorted(p for p in place.rglob("*") if is_regular(p))
        for f in files:
            if is_regular(f) and side.token in f.read_bytes():
                found.append(f.name)
    return found


def is_regular(p: Path) -> bool:
    """``p`` itself (not a link's target) is a regular file."""
    try:
        return stat.S_ISREG(os.lstat(p).st_mode)
    except OSError:
        return False


def watch_opens(forbidden: tuple[str, ...], report_fd: int) -> None:
    """In a forked child: write every ``open`` of a path inside ``forbidden`` to ``report_fd`` (one per line).

    Relative paths are resolved against the working folder; an ``os.open`` with
    ``dir_fd`` names its entry relative to that folder, which the event does not
    carry, so those are judged by the token oracle alone.
    """
    roots = tuple(f.rstrip("/") for f in forbidden)

    def hook(event: str, args: tuple) -> None:
        if event != "open" or not args or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        try:
            path = os.path.realpath(os.fsdecode(args[0]))
        except (TypeError, ValueError):
            return
        if any(path == r or path.startswith(r + "/") for r in roots):
            os.write(report_fd, f"{path}\n".encode("utf-8", "backslashreplace"))

    sys.addaudithook(hook)
