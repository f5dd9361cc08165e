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

Expected failures raise subclasses of :class:`MtpSurgeonError` (its
``exit_code`` is what the CLI exits with): :class:`MalformedFileError` (not a
valid model, exit 2), :class:`UsageError` (exit 2), :class:`OutputExistsError`
(an output exists and ``force`` was not given), :class:`SurgeryError`,
:class:`NothingToRestore`, :class:`EngineUnavailableError`,
:class:`SpeculativeDecodingUnavailableError`, :class:`EngineError`, :class:`BuildRefused`.

``open_file(path)`` gives the low-level reader (a ``TFLiteModel`` or a
``LiteRTLMContainer`` over one read-only memory map).
"""
from mtpsurgeon._version import __version__
from mtpsurgeon.api import bench, build_drafter, extract, inspect, list_tensors, restore
from mtpsurgeon.api.build_drafter import BuildRefused
from mtpsurgeon.api.results import BenchResult, BuildResult, ExtractResult, Report, RestoreResult, TensorInfo
from mtpsurgeon.api.tune import tune, tune_search
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
from mtpsurgeon.formats.open import open_file

__all__ = [
    "inspect", "list_tensors", "extract", "restore", "bench", "build_drafter", "tune", "tune_search", "open_file",
    "Report", "TensorInfo", "ExtractResult", "RestoreResult", "BenchResult", "BuildResult", "BuildRefused",
    "MtpSurgeonError", "MalformedFileError", "UsageError", "OutputExistsError", "SurgeryError", "NothingToRestore",
    "EngineUnavailableError", "SpeculativeDecodingUnavailableError", "EngineError",
    "__version__",
]
