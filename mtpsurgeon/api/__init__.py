"""The public Python API: one function per CLI verb, typed results with ``.to_json()``.

Layer: between the CLI (which calls these and renders) and extract / surgery /
engine. :mod:`.inspect`, :mod:`.extract`, :mod:`.restore` and :mod:`.bench`
hold one verb each; :mod:`.results` the result types.

Each name is imported on first use, so a CLI verb loads only the modules it
runs (``inspect`` never imports the drafter builder or the engine).
"""
from __future__ import annotations

import importlib
import sys
import types

from mtpsurgeon._lazy import lazy_attributes

__all__ = ["bench", "build_drafter", "enable_mtp", "extract", "inspect", "inspect_json", "list_tensors", "tensor_rows", "restore",
           "BenchResult", "ExtractResult", "Report", "RestoreResult", "TensorInfo", "reading_weights_from",
           "SideFileRefused"]

#: public name -> the module defining it
_HOME = {
    "bench": "bench", "build_drafter": "build_drafter", "enable_mtp": "enable_mtp", "extract": "extract", "restore": "restore",
    **dict.fromkeys(("inspect", "inspect_json", "list_tensors", "tensor_rows"), "inspect"),
    **dict.fromkeys(("BenchResult", "ExtractResult", "Report", "RestoreResult", "TensorInfo"), "results"),
}


#: the input policy (side files a model names are read only from its folder or ``weights_dir``)
_INPUTS = dict.fromkeys(("reading_weights_from", "SideFileRefused"), "mtpsurgeon.inputs")

__getattr__, __dir__ = lazy_attributes(__name__, {**{k: f"{__name__}.{v}" for k, v in _HOME.items()}, **_INPUTS},
                                       __all__)


def _function_over_module(name: str) -> property:
    """``api.NAME`` is the function although ``api/NAME.py`` is a submodule (importing it binds it here)."""

    def get(self):
        return getattr(importlib.import_module(f"{__name__}.{name}"), name)

    def ignore(self, value) -> None:
        pass

    return property(get, ignore, doc=f"mtpsurgeon.api.{name}.{name}")


class _Api(types.ModuleType):
    pass


for _name in ("bench", "build_drafter", "enable_mtp", "extract", "inspect", "restore"):
    setattr(_Api, _name, _function_over_module(_name))

sys.modules[__name__].__class__ = _Api
