"""mtpsurgeon: find, extract and restore the hidden MTP drafter in LiteRT models.

Every CLI verb is a function here, returning typed results whose
``.to_json()`` is exactly what the verb's ``--json`` prints::

    import mtpsurgeon
    report = mtpsurgeon.inspect("model.litertlm")          # Report
    report.verdict                                          # 'ready' | 'hidden' | 'absent'
    mtpsurgeon.extract("model.litertlm", "out/", dtype="f32", names="hf")   # ExtractResult
    mtpsurgeon.restore("model.litertlm", "fixed.litertlm")  # RestoreResult
    mtpsurgeon.bench("fixed.litertlm")                      # BenchResult (needs mtpsurgeon[engine])
    mtpsurgeon.build_drafter("assistant/", "base.litertlm", "with-mtp.litertlm")   # BuildResult
    mtpsurgeon.tune("model.litertlm", 1, "g1.litertlm")       # TuneResult (verify re-specialized for G=1)
    mtpsurgeon.enable_mtp("12B.litertlm", "12B-verify.litertlm")   # EnableResult (verify + activations added)

Expected failures raise subclasses of :class:`MtpSurgeonError` (its
``exit_code`` is what the CLI exits with): :class:`MalformedFileError` (not a
valid model, exit 2), :class:`UsageError` (exit 2), :class:`OutputExistsError`
(an output exists and ``force`` was not given), :class:`SurgeryError`,
:class:`NothingToRestore`, :class:`EngineUnavailableError`,
:class:`SpeculativeDecodingUnavailableError`, :class:`EngineError`, :class:`BuildRefused`.

A model's external weights (``ExternalBufferGroup`` names) are read only from
the model's own folder, or from ``weights_dir=`` (every verb's keyword, or
``with reading_weights_from(DIR):``); any other name raises
:class:`SideFileRefused` (exit 2). See :mod:`mtpsurgeon.inputs`.

``open_file(path)`` gives the low-level reader (a ``TFLiteModel`` or a
``LiteRTLMContainer`` over one read-only memory map).
"""
import sys
import types

from mtpsurgeon._lazy import lazy_attributes
from mtpsurgeon._version import __version__
from mtpsurgeon.errors import (
    EngineError,
    EngineUnavailableError,
    MalformedFileError,
    MtpSurgeonError,
    NothingToRestore,
    OutputExistsError,
    SpeculativeDecodingUnavailableError,
    SurgeryError,
    UsageError,
)

__all__ = [
    "inspect", "list_tensors", "extract", "restore", "bench", "build_drafter", "tune", "tune_search", "enable_mtp",
    "open_file", "Report", "TensorInfo", "ExtractResult", "RestoreResult", "BenchResult", "BuildResult", "BuildRefused",
    "EnableResult", "MtpSurgeonError", "MalformedFileError", "UsageError", "OutputExistsError", "SurgeryError", "NothingToRestore",
    "EngineUnavailableError", "SpeculativeDecodingUnavailableError", "EngineError", "SideFileRefused",
    "reading_weights_from", "__version__",
]

#: public name -> module defining it. Imported on first use, not at ``import mtpsurgeon``, so the
#: CLI's start-up (``mtpsurgeon --version``) does not load numpy, flatbuffers or the schemas.
_LAZY = {
    **dict.fromkeys(("bench", "build_drafter", "inspect", "list_tensors", "restore"), "mtpsurgeon.api"),
    "BuildRefused": "mtpsurgeon.api.build_drafter",
    **dict.fromkeys(("BenchResult", "BuildResult", "ExtractResult", "Report", "RestoreResult", "TensorInfo"),
                    "mtpsurgeon.api.results"),
    "tune": "mtpsurgeon.api.tune",
    "enable_mtp": "mtpsurgeon.api.enable_mtp",
    "EnableResult": "mtpsurgeon.api.results",
    "tune_search": "mtpsurgeon.api.tune",
    "open_file": "mtpsurgeon.formats.open",
    **dict.fromkeys(("SideFileRefused", "reading_weights_from"), "mtpsurgeon.inputs"),
}


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)


class _Facade(types.ModuleType):
    """``mtpsurgeon.extract`` is the API function, although ``mtpsurgeon/extract/`` is also a subpackage.

    Importing a submodule binds it as an attribute of its parent; this
    property keeps the public function in that place (lazily imported too).
    """

    @property
    def extract(self):
        from mtpsurgeon.api.extract import extract

        return extract

    @extract.setter
    def extract(self, value) -> None:
        pass  # the import system binding the subpackage mtpsurgeon.extract: the function stays


sys.modules[__name__].__class__ = _Facade
