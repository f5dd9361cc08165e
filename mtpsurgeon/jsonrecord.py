"""Typed, immutable views of JSON objects: the base of every public result type.

A :class:`JsonRecord` subclass is a frozen dataclass whose fields are the keys
of one JSON object. ``from_json`` builds it (nested records through
``_nested``), ``to_json`` gives the same dict back: keys the class does not
declare are kept in ``extra`` and written out again, and key order follows
the source object, so ``R.from_json(d).to_json() == d`` for every documented
``--json`` payload. A key the object lacks reads as None and is not written.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Point(JsonRecord):
...     x: int
...     y: int
>>> p = Point.from_json({"x": 1, "y": 2, "label": "a"})
>>> (p.x, p.extra["label"], p.to_json())
(1, 'a', {'x': 1, 'y': 2, 'label': 'a'})
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

R = TypeVar("R", bound="JsonRecord")


@dataclass(frozen=True)
class JsonRecord:
    """Base class; see the module documentation."""

    #: field name -> JsonRecord subclass for nested objects (or lists of them)
    _nested: ClassVar[dict[str, type["JsonRecord"]]] = {}

    extra: dict[str, Any] = field(default_factory=dict, repr=False, compare=False, kw_only=True)
    _keys: tuple[str, ...] = field(default=(), repr=False, compare=False, kw_only=True)

    @classmethod
    def _field_names(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name not in ("extra", "_keys")]

    @classmethod
    def from_json(cls: type[R], data: dict[str, Any]) -> R:
        """Build from a JSON object (unknown keys go to ``extra``; absent keys read as None)."""
        names = set(cls._field_names())
        kwargs: dict[str, Any] = {k: None for k in names if k not in data}
        kwargs.update({k: _load(cls._nested.get(k), v) for k, v in data.items() if k in names})
        extra = {k: v for k, v in data.items() if k not in names}
        return cls(**kwargs, extra=extra, _keys=tuple(data))

    def to_json(self) -> dict[str, Any]:
        """The plain JSON dict (the same one ``from_json`` was given)."""
        keys = self._keys or (*self._field_names(), *self.extra)
        return {k: self.extra[k] if k in self.extra else _dump(getattr(self, k)) for k in keys}


def _load(kind: type[JsonRecord] | None, value: Any) -> Any:
    if kind is None or value is None:
        return value
    if isinstance(value, list):
        return [kind.from_json(v) for v in value]
    return kind.from_json(value)


def _dump(value: Any) -> Any:
    if isinstance(value, JsonRecord):
        return value.to_json()
    if isinstance(value, (list, tuple)):
        return [_dump(v) for v in value]
    if isinstance(value, dict):
        return {k: _dump(v) for k, v in value.items()}
    return value
