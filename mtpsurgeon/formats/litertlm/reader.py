"""Read a .litertlm container: header, system metadata and sections, in place.

Layout: ``LITERTLM`` magic, three uint32 version numbers, padding, a uint64
header-end offset at byte 24, the header flatbuffer (``LiteRTLMMetaData``)
from byte 32, then sections on 16 KiB boundaries. TFLite sections are parsed
where they lie in the shared memory map; nothing is copied.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from mtpsurgeon.errors import MalformedFileError
from mtpsurgeon.formats.litertlm.header import HeaderError, parse_header
from mtpsurgeon.formats.litertlm.schema import (
    HEADER_BEGIN,
    MAGIC,
    MODEL_TYPE_KEY,
    SECTION_ALIGNMENT,
    SUPPORTED_MAJOR,
    section_type_name,
)
from mtpsurgeon.formats.mapped import MappedFile

if TYPE_CHECKING:
    from mtpsurgeon.formats.tflite import TFLiteModel


@dataclass(frozen=True)
class SectionRecord:
    """One section: its items (key/value metadata), data type and byte range."""

    index: int
    data_type: int
    data_type_name: str
    items: tuple[tuple[str, Any], ...]
    begin: int
    end: int
    item_types: tuple[int, ...] = ()  #: each item's stored ``VData`` code, for rewriting it faithfully

    @property
    def size(self) -> int:
        return self.end - self.begin

    @property
    def aligned(self) -> bool:
        return self.begin % SECTION_ALIGNMENT == 0

    @property
    def model_type(self) -> str | None:
        """The ``model_type`` item of a TFLite section (its role), if any."""
        for k, v in self.items:
            if k == MODEL_TYPE_KEY:
                return v if isinstance(v, str) else str(v)
        return None

    @property
    def is_tflite(self) -> bool:
        return self.data_type_name == "TFLiteModel"

    def item(self, key: str) -> Any:
        return next((v for k, v in self.items if k == key), None)


class LiteRTLMContainer:
    """A parsed .litertlm file. ``model(i)`` parses TFLite section ``i`` lazily."""

    def __init__(self, source: MappedFile, version: tuple[int, int, int], header_end: int,
                 system_metadata: tuple[tuple[str, Any, int], ...], sections: tuple[SectionRecord, ...]) -> None:
        self.source = source
        self.version = version
        self.header_end = header_end
        self.system_metadata = tuple((k, v) for k, v, _ in system_metadata)
        self.system_metadata_types = tuple(t for _, _, t in system_metadata)  #: stored ``VData`` codes
        self.sections = sections
        self._models: dict[int, TFLiteModel] = {}

    @property
    def path(self):
        return self.source.path

    def model(self, index: int) -> TFLiteModel:
        """The TFLite model stored in section ``index`` (parsed once, zero-copy)."""
        if index not in self._models:
            from mtpsurgeon.formats.tflite import read_tflite  # numpy and the LiteRT schema: only when a model is read

            s = self.sections[index]
            if not s.is_tflite:
                raise MalformedFileError(self.path, f"section {index} (model_type '{s.model_type}') holds {s.data_type_name}, "
                                                    "not a TFLite model")
            self._models[index] = read_tflite(self.source, s.begin, s.size, label=f"section {index} ({s.model_type or 'untagged'})")
        return self._models[index]

    def tflite_sections(self) -> list[SectionRecord]:
        return [s for s in self.sections if s.is_tflite]

    def find(self, model_type: str) -> SectionRecord | None:
        """First section whose model_type equals ``model_type``."""
        return next((s for s in self.sections if s.model_type == model_type), None)

    def section_bytes(self, index: int) -> memoryview:
        s = self.sections[index]
        return self.source.slice(s.begin, s.size, f"section {index}")

    def section_sha256(self, index: int) -> str:
        s = self.sections[index]
        return self.source.sha256(s.begin, s.size)

    @cached_property
    def llm_metadata(self) -> dict[str, Any] | None:
        """Summary of the first LlmMetadataProto section, or None."""
        from mtpsurgeon.formats.litertlm.llm_metadata import summarize

        s = next((s for s in self.sections if s.data_type_name == "LlmMetadataProto"), None)
        return None if s is None else summarize(bytes(self.section_bytes(s.index)))

    def __repr__(self) -> str:
        return f"<LiteRTLMContainer {self.path.name}: v{'.'.join(map(str, self.version))}, {len(self.sections)} sections>"


def read_litertlm(source: MappedFile) -> LiteRTLMContainer:
    """Parse the header of a mapped .litertlm file and check every section range."""
    path = source.path
    if source.size < HEADER_BEGIN:
        raise MalformedFileError(path, f"truncated .litertlm header ({source.size} bytes, need at least {HEADER_BEGIN})")
    head = bytes(source.slice(0, HEADER_BEGIN, "header"))
    if head[:8] != MAGIC:
        raise MalformedFileError(path, "not a .litertlm file (missing 'LITERTLM' magic)")
    major, minor, patch = struct.unpack_from("<3I", head, 8)
    if major != SUPPORTED_MAJOR:
        raise MalformedFileError(path, f"unsupported .litertlm major version {major} (supported: {SUPPORTED_MAJOR})")
    (header_end,) = struct.unpack_from("<Q", head, 24)
    if not HEADER_BEGIN < header_end <= source.size:
        raise MalformedFileError(path, f"header end offset {header_end} is outside the file ({source.size} bytes)")
    buf = source.slice(HEADER_BEGIN, header_end - HEADER_BEGIN, "header flatbuffer")
    try:
        system, raw_sections = parse_header(buf)
        sections = _sections(raw_sections, header_end, source.size)
    except HeaderError as exc:
        raise MalformedFileError(path, f"corrupt header flatbuffer: {exc}") from exc
    except _BadHeader as exc:
        raise MalformedFileError(path, str(exc)) from exc
    return LiteRTLMContainer(source, (major, minor, patch), header_end, system, sections)


class _BadHeader(Exception):
    pass


def _sections(raw: tuple, header_end: int, file_size: int) -> tuple[SectionRecord, ...]:
    out = []
    for i, (dt, typed, begin, end) in enumerate(raw):
        if not header_end <= begin <= end <= file_size:
            raise _BadHeader(f"section {i}: byte range [{begin}, {end}) is outside the data area [{header_end}, {file_size})")
        items = tuple((k, v) for k, v, _ in typed)
        out.append(SectionRecord(i, dt, section_type_name(dt), items, begin, end, tuple(t for _, _, t in typed)))
    ordered = sorted(out, key=lambda s: s.begin)
    for a, b in zip(ordered, ordered[1:]):
        if b.begin < a.end:
            raise _BadHeader(f"section {b.index} overlaps section {a.index}")
    return tuple(out)
