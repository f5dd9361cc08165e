"""Package attributes imported on first use (PEP 562), so start-up loads only what a command runs."""
from __future__ import annotations

import importlib
import sys
from typing import Callable, Iterable


def lazy_attributes(package: str, homes: dict[str, str],
                    public: Iterable[str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: each name in ``homes`` is imported from its module
    (an absolute name) when first asked for, then cached in the package's namespace."""
    public = tuple(public)

    def __getattr__(name: str) -> object:
        module = homes.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        vars(sys.modules[package])[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(public))

    return __getattr__, __dir__
