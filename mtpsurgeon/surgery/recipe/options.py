"""Operator options: the flatbuffer options table of an operator, from a recipe step."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.formats.tflite.schema import fb

#: Options tables whose name is not CamelCase(op) + "Options".
_OPTIONS_NAME = {
    "MEAN": "ReducerOptions", "SUM": "ReducerOptions", "REDUCE_MAX": "ReducerOptions", "REDUCE_MIN": "ReducerOptions",
    "REDUCE_PROD": "ReducerOptions", "REDUCE_ANY": "ReducerOptions", "REDUCE_ALL": "ReducerOptions",
    "BATCH_MATMUL": "BatchMatMulOptions", "LOG_SOFTMAX": "LogSoftmaxOptions",
}
#: Ops written without an options table unless the recipe gives one (as converters write them).
_NO_DEFAULT_OPTIONS = {"RESHAPE"}
#: Defaults that differ from the schema's (a SOFTMAX with beta 0 is never meant).
_OPTION_DEFAULTS = {"SOFTMAX": {"beta": 1.0}}


def make_options(name: str, item: dict, err: Callable[[str], SurgeryError]) -> Any:
    """The options object of operator ``name`` for recipe step ``item`` (None: no options table)."""
    given = item.get("options", ...)
    if given is None:
        return None
    cls_name = item.get("options_type") or _OPTIONS_NAME.get(name) or \
        "".join(w.capitalize() for w in name.split("_")) + "Options"
    cls = getattr(fb, cls_name + "T", None) if not cls_name.endswith("T") else getattr(fb, cls_name, None)
    if given is ...:
        if cls is None or name in _NO_DEFAULT_OPTIONS:
            return None
        given = {}
    if cls is None:
        raise err(f"{name} has no options table '{cls_name}' (set 'options_type')")
    opts = cls()
    for k, v in {**_OPTION_DEFAULTS.get(name, {}), **given}.items():
        attr = _camel(k)
        if not hasattr(opts, attr):
            raise err(f"{cls_name} has no field '{k}' (fields: {sorted(vars(opts))})")
        if isinstance(v, str) and "ActivationFunction" in attr:
            v = getattr(fb.ActivationFunctionType, v.upper())
        setattr(opts, attr, v)
    return opts


def _camel(k: str) -> str:
    if "_" not in k:
        return k
    first, *rest = k.split("_")
    return first + "".join(w.capitalize() for w in rest)


def _opts_key(opts: Any) -> Any:
    if opts is None:
        return None
    return (type(opts).__name__, tuple(sorted((k, repr(v)) for k, v in vars(opts).items())))


def _union(opts: Any) -> tuple[int, Any, int]:
    """(options_type, options2, options2_type) for Node()."""
    if opts is None:
        return 0, None, 0
    name = type(opts).__name__.removesuffix("T")
    if hasattr(fb.BuiltinOptions, name):
        return getattr(fb.BuiltinOptions, name), None, 0
    return 0, opts, getattr(fb.BuiltinOptions2, name)
