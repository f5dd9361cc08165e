"""Write .litertlm containers; rewrite one with sections dropped, added, re-tagged or replaced.

Layout follows the official builder (``litert_lm_builder.litertlm_builder``):
magic, three uint32 version numbers, zero padding to byte 24, the uint64
header end, the ``LiteRTLMMetaData`` flatbuffer from byte 32, then every
section on a 16 KiB boundary with zero padding between, the file ending where
the last section ends. As there, the header is packed first with placeholder
offsets to learn its size, then packed again with the real offsets (same
size, asserted). Since every section's size is known up front, the file is
then written front to back (no seeks, so any binary stream works). Item
values keep their flatbuffer ``VData`` types.

Sections taken unchanged from another file (a :class:`FileRange`) are copied
by the kernel (``formats.copy``); every other section — new bytes, or a
section whose header entry changed — is hashed while it is written, and its
sha256 is returned, so provenance never needs a second read.
"""
from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Iterable, Union

import flatbuffers

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.formats.copy import FileRange, copy_range, write_hashed
from mtpsurgeon.formats.litertlm.schema import (
    HEADER_BEGIN,
    MAGIC,
    MODEL_TYPE_KEY,
    SECTION_ALIGNMENT,
    SECTION_TYPE_CODES,
    VDATA_NAMES,
    hs,
)
from mtpsurgeon.outputs import atomic_output

def default_version() -> tuple[int, int, int]:
    """The version the installed official builder writes (imports the builder: only for new containers)."""
    try:
        from litert_lm_builder import litertlm_core as core

        return core.LITERTLM_MAJOR_VERSION, core.LITERTLM_MINOR_VERSION, core.LITERTLM_PATCH_VERSION
    except Exception:  # pragma: no cover - absl missing
        return 1, 7, 0

VDATA_CODES: dict[str, int] = {v: k for k, v in VDATA_NAMES.items()}

Source = Union[memoryview, bytes, bytearray, str, os.PathLike, FileRange]


@dataclass(frozen=True)
class Item:
    """A key/value pair with its flatbuffer value type (``hs.VData`` code)."""

    key: str
    value: Any
    vtype: int

    @classmethod
    def of(cls, key: str, value: Any, vtype: int | str | None = None) -> "Item":
        """Infer the type from the value (str, bool, int → Int32/Int64, float → Float32) unless given."""
        if isinstance(vtype, str):
            vtype = VDATA_CODES[vtype]
        if vtype is None:
            if isinstance(value, str):
                vtype = hs.VData.StringValue
            elif isinstance(value, bool):
                vtype = hs.VData.Bool
            elif isinstance(value, int):
                vtype = hs.VData.Int32 if -(2**31) <= value < 2**31 else hs.VData.Int64
            elif isinstance(value, float):
                vtype = hs.VData.Float32
            else:
                raise SurgeryError(f"item '{key}': cannot store a {type(value).__name__}")
        return cls(key, value, vtype)

    def to_kvp(self) -> "hs.KeyValuePairT":
        name = VDATA_NAMES.get(self.vtype)
        if name in (None, "NONE"):
            raise SurgeryError(f"item '{self.key}': unknown value type {self.vtype}")
        return hs.KeyValuePairT(key=self.key, valueType=self.vtype, value=getattr(hs, f"{name}T")(self.value))


@dataclass
class SectionSpec:
    """One section to write: data type, typed items and where its bytes come from.

    ``source`` is bytes or a memoryview, a file path, or a :class:`FileRange`
    (a byte range of another file, e.g. a section of the container being
    rewritten). ``changed`` is False only for a section carried over as it
    was (same bytes, same header entry): those are copied by the kernel and
    not hashed.
    """

    data_type: int | str
    items: list[Item]
    source: Source
    changed: bool = True

    @property
    def data_type_code(self) -> int:
        if isinstance(self.data_type, str):
            if self.data_type not in SECTION_TYPE_CODES:
                raise SurgeryError(f"unknown section data type '{self.data_type}'")
            return SECTION_TYPE_CODES[self.data_type]
        return int(self.data_type)

    @property
    def size(self) -> int:
        if isinstance(self.source, FileRange):
            return self.source.length
        if isinstance(self.source, (str, os.PathLike)):
            return os.path.getsize(self.source)
        return memoryview(self.source).nbytes

    @property
    def model_type(self) -> str | None:
        return next((i.value for i in self.items if i.key == MODEL_TYPE_KEY), None)

    @classmethod
    def tflite(cls, source: Source, model_type: str, extra: Iterable[Item] = ()) -> "SectionSpec":
        """A TFLiteModel section tagged with ``model_type`` (e.g. ``tf_lite_mtp_drafter``)."""
        return cls(SECTION_TYPE_CODES["TFLiteModel"], [Item.of(MODEL_TYPE_KEY, model_type), *extra], source)


@dataclass(frozen=True)
class LiteRTLMWriteResult:
    size: int
    header_end: int
    sections: tuple[tuple[int, int], ...]  #: (begin, end) of each section written
    #: sha256 of each section hashed while written (every changed or new one); None for kernel-copied ones
    section_sha256: tuple[str | None, ...] = ()


def _align(n: int, a: int = SECTION_ALIGNMENT) -> int:
    return (n + a - 1) // a * a


def _pack_header(system: list[Item], sections: list[SectionSpec], ranges: list[tuple[int, int]]) -> bytes:
    meta = hs.LiteRTLMMetaDataT(
        systemMetadata=hs.SystemMetadataT(entries=[i.to_kvp() for i in system]),
        sectionMetadata=hs.SectionMetadataT(objects=[
            hs.SectionObjectT(items=[i.to_kvp() for i in s.items], dataType=s.data_type_code,
                              beginOffset=b, endOffset=e)
            for s, (b, e) in zip(sections, ranges)
        ]),
    )
    builder = flatbuffers.Builder(SECTION_ALIGNMENT)
    builder.Finish(meta.Pack(builder))
    return bytes(builder.Output())


def write_litertlm(sections: list[SectionSpec], system_metadata: Iterable[Item], out: str | os.PathLike | IO[bytes],
                   version: tuple[int, int, int] | None = None, *, force: bool = False) -> LiteRTLMWriteResult:
    """Write a container holding ``sections`` in order; a path is written atomically.

    ``version`` defaults to the one the installed litert-lm-builder writes.
    """
    version = version or default_version()
    system = list(system_metadata)
    sizes = [s.size for s in sections]
    placeholder = _pack_header(system, sections, [(1, 1)] * len(sections))  # non-default: same width as real offsets
    header_end = HEADER_BEGIN + len(placeholder)
    ranges, pos = [], _align(header_end)
    for n in sizes:
        ranges.append((pos, pos + n))
        pos = _align(pos + n)
    header = _pack_header(system, sections, ranges)
    if len(header) != len(placeholder):
        raise SurgeryError(f"internal: header size changed from {len(placeholder)} to {len(header)} between packs")
    if isinstance(out, (str, os.PathLike)):
        with atomic_output(out, force) as tmp, open(tmp, "wb") as f:
            size, hashes = _emit(f, version, header, sections, ranges, sizes)
    else:
        size, hashes = _emit(out, version, header, sections, ranges, sizes)
    return LiteRTLMWriteResult(size, header_end, tuple(ranges), tuple(hashes))


def _emit(f: IO[bytes], version: tuple[int, int, int], header: bytes, sections: list[SectionSpec],
          ranges: list[tuple[int, int]], sizes: list[int]) -> tuple[int, list[str | None]]:
    head = MAGIC + struct.pack("<3I", *version)
    head += b"\0" * (24 - len(head)) + struct.pack("<Q", HEADER_BEGIN + len(header))
    f.write(head)
    f.write(header)
    pos = HEADER_BEGIN + len(header)
    hashes: list[str | None] = []
    for spec, (begin, end), n in zip(sections, ranges, sizes):
        f.write(b"\0" * (begin - pos))
        digest = hashlib.sha256() if spec.changed else None
        written = _copy(spec.source, f, digest)
        if written != n:
            raise SurgeryError(f"section source changed size while writing ({n} → {written} bytes)")
        hashes.append(digest.hexdigest() if digest is not None else None)
        pos = end
    f.flush()
    return pos, hashes


def _copy(source: Source, f: IO[bytes], digest) -> int:
    if isinstance(source, (str, os.PathLike)):
        source = FileRange(source, 0, os.path.getsize(source))
    if isinstance(source, FileRange):
        return copy_range(source, f, digest=digest)
    return write_hashed(source, f, digest)


# ------------------------------------------------------------------ rewriting
def typed_header(container: Any) -> tuple[list[Item], list[list[Item]]]:
    """System metadata and each section's items, with their stored VData types (kept by the reader)."""
    system = [Item(k, v, t) for (k, v), t in zip(container.system_metadata, container.system_metadata_types)]
    return system, [[Item(k, v, t) for (k, v), t in zip(s.items, s.item_types)] for s in container.sections]


def section_specs(container: Any) -> list[SectionSpec]:
    """One spec per existing section, unchanged: its bytes a range of the container's file (kernel-copied)."""
    _, items = typed_header(container)
    return [SectionSpec(s.data_type, items[s.index], FileRange(container.path, s.begin, s.size), changed=False)
            for s in container.sections]


@dataclass(frozen=True)
class Drop:
    """Remove section ``index``."""

    index: int


@dataclass(frozen=True)
class Retag:
    """Set items of section ``index`` (replacing same-key items in place) and remove keys.

    Values may be :class:`Item` or plain values; a plain value for an existing
    key keeps that item's stored type.
    """

    index: int
    set: dict[str, Any] = field(default_factory=dict)
    remove: tuple[str, ...] = ()


@dataclass(frozen=True)
class Replace:
    """Replace the bytes of section ``index`` (items and data type kept unless given)."""

    index: int
    source: Source
    data_type: int | str | None = None


@dataclass(frozen=True)
class Add:
    """Insert a new section before the section now at ``before`` (None: at the end)."""

    spec: SectionSpec
    before: int | None = None


Edit = Union[Drop, Retag, Replace, Add]


def _retag(items: list[Item], edit: Retag) -> list[Item]:
    out = [i for i in items if i.key not in edit.remove]
    for key, value in edit.set.items():
        old = next((j for j, i in enumerate(out) if i.key == key), None)
        if isinstance(value, Item):
            new = replace(value, key=key)
        elif old is not None and not (isinstance(value, str) != isinstance(out[old].value, str)):
            new = Item(key, value, out[old].vtype)
        else:
            new = Item.of(key, value)
        if old is None:
            out.append(new)
        else:
            out[old] = new
    return out


def apply_edits(container: Any, edits: Iterable[Edit]) -> list[SectionSpec]:
    """The section list after ``edits`` (indices name the ORIGINAL sections)."""
    specs = section_specs(container)
    n = len(specs)
    dropped: set[int] = set()
    adds: list[Add] = []
    for e in edits:
        if isinstance(e, Add):
            if e.before is not None and not 0 <= e.before <= n:
                raise SurgeryError(f"cannot insert before section {e.before}: the container has {n} sections")
            adds.append(e)
            continue
        if not 0 <= e.index < n:
            raise SurgeryError(f"section {e.index} does not exist (the container has {n} sections)")
        if e.index in dropped:
            raise SurgeryError(f"section {e.index} is dropped and cannot also be edited")
        s = specs[e.index]
        if isinstance(e, Drop):
            dropped.add(e.index)
        elif isinstance(e, Retag):
            s.items = _retag(s.items, e)
            s.changed = True
        elif isinstance(e, Replace):
            s.source = e.source
            s.changed = True
            if e.data_type is not None:
                s.data_type = e.data_type
    out: list[SectionSpec] = []
    for i in range(n + 1):
        out.extend(a.spec for a in adds if (a.before if a.before is not None else n) == i)
        if i < n and i not in dropped:
            out.append(specs[i])
    return out


def rewrite_container(container: Any, edits: Iterable[Edit], out: str | os.PathLike | IO[bytes], *,
                      force: bool = False, version: tuple[int, int, int] | None = None,
                      system_metadata: Iterable[Item] | None = None) -> LiteRTLMWriteResult:
    """Write ``container`` with ``edits`` applied; untouched sections are copied byte for byte by the kernel.

    The result's ``section_sha256`` holds the sha256 of every section that
    was edited or added (hashed as it was written), None for the others.

    The version defaults to the source's (the header keeps its data-type
    codes), the system metadata to the source's, types included.
    """
    edits = list(edits)
    specs = apply_edits(container, edits)
    if isinstance(out, (str, os.PathLike)):
        from mtpsurgeon.formats.litertlm.side_copies import check_copies_find_side_files

        replaced = {e.index for e in edits if isinstance(e, (Replace, Drop))}
        check_copies_find_side_files(container, (i for i in range(len(container.sections)) if i not in replaced), out)
    if system_metadata is None:
        system_metadata, _ = typed_header(container)
    if not isinstance(out, (str, os.PathLike)) or Path(out).resolve() != Path(container.path).resolve():
        return write_litertlm(specs, system_metadata, out, version or tuple(container.version), force=force)
    raise SurgeryError(f"{out}: refusing to overwrite the input container")
