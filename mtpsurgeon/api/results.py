"""The typed results of the public API, one class per JSON object of the CLI.

Every class is a frozen :class:`~mtpsurgeon.jsonrecord.JsonRecord`:
attributes for the documented keys, ``.to_json()`` for exactly the dict the
matching ``--json`` flag prints (docs/how-it-works.md, "The --json schema"; docs/cli.md per verb). They hold
plain data only: no open files, nothing to close.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mtpsurgeon.engine.call_timing import CallTime
from mtpsurgeon.engine.cost import CostModel
from mtpsurgeon.engine.stats import BenchResult, PromptComparison
from mtpsurgeon.jsonrecord import JsonRecord

# --- inspect ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorIO(JsonRecord):
    """One signature input or output."""

    name: str
    tensor: int
    shape: list[int]
    dtype: str


@dataclass(frozen=True)
class SignatureInfo(JsonRecord):
    """A SignatureDef: key, subgraph and its named inputs/outputs."""

    _nested = {"inputs": TensorIO, "outputs": TensorIO}
    key: str
    subgraph: int
    inputs: list[TensorIO]
    outputs: list[TensorIO]


@dataclass(frozen=True)
class SubgraphInfo(JsonRecord):
    """A subgraph's size, I/O tensor indices and what reaches it (None: nothing)."""

    index: int
    name: str
    tensors: int
    operators: int
    inputs: list[int]
    outputs: list[int]
    reached_by: str | None


@dataclass(frozen=True)
class TensorInfo(JsonRecord):
    """One tensor row (orphans, ``inspect --tensors``); ``extra`` may hold ``mtp``, ``orphan``,
    ``spurious_quantization``."""

    section: int | None
    subgraph: int
    index: int
    name: str
    shape: list[int]
    dtype: str
    buffer: int
    bytes: int
    storage: str
    constant: bool
    quantization: dict[str, Any] | None


@dataclass(frozen=True)
class Orphans(JsonRecord):
    """Orphan tensors, buffers, subgraphs and operator codes (each entry names its section)."""

    _nested = {"tensors": TensorInfo}
    tensors: list[TensorInfo]
    buffers: list[Any]
    subgraphs: list[Any]
    operator_codes: list[Any]


@dataclass(frozen=True)
class ModelInfo(JsonRecord):
    """One TFLite model (a .tflite file, or one section of a container)."""

    _nested = {"subgraphs": SubgraphInfo, "signatures": SignatureInfo, "orphans": Orphans}
    section: int | None
    label: str
    offset: int
    size: int
    version: int
    description: str | None
    subgraphs: list[SubgraphInfo]
    signatures: list[SignatureInfo]
    operator_codes: int
    op_histogram: dict[str, int]
    params_by_dtype: dict[str, dict[str, int]]
    quantization: dict[str, Any]
    buffers: dict[str, int]
    metadata: list[str]
    orphans: Orphans


@dataclass(frozen=True)
class SectionInfo(JsonRecord):
    """One section of a .litertlm container."""

    index: int
    data_type: str
    model_type: str | None
    begin: int
    end: int
    size: int
    aligned: bool
    items: dict[str, Any]
    backend_constraint: list[str] | None = None  #: the backends the engine may load it on (None: any)
    role: str | None = None  #: what a section of this model_type holds (None: untagged or a type LiteRT-LM lacks)


@dataclass(frozen=True)
class ContainerInfo(JsonRecord):
    """The .litertlm header: version, system metadata, LLM metadata summary."""

    version: str
    header_end: int
    system_metadata: dict[str, Any]
    llm_metadata: dict[str, Any] | None


@dataclass(frozen=True)
class BaseInfo(JsonRecord):
    """Dimensions of the base (prefill/decode) model that a drafter must fit."""

    label: str
    hidden: int | None
    hidden_from: str
    vocab: int | None
    cache_len: int | None
    kv: dict[str, dict[str, Any]]
    has_verify: bool
    verify_len: int | None
    activations_outputs: list[str]

    @property
    def draft_steps(self) -> int | None:
        """G, the drafts per verify step: len(verify ``input_pos``) − 1 (None without verify)."""
        return self.verify_len - 1 if self.verify_len else None


@dataclass(frozen=True)
class LinkCheckInfo(JsonRecord):
    """One drafter ↔ base link check."""

    check: str
    passed: bool
    expected: Any
    actual: Any


@dataclass(frozen=True)
class FindingInfo(JsonRecord):
    """Where an MTP drafter (or heads, or their weights) is, and whether it is hidden."""

    _nested = {"links": LinkCheckInfo}
    kind: str
    hidden: bool
    where: str
    section: int | None
    subgraph: int | None
    confidence: str
    evidence: list[str]
    remedy: str | None
    tensors: list[Any]
    links: list[LinkCheckInfo]
    dims: dict[str, Any] | None
    interface: dict[str, Any] | None


@dataclass(frozen=True)
class MtpInfo(JsonRecord):
    """The MTP verdict ('ready' | 'hidden' | 'absent'), its summary, fix and findings."""

    _nested = {"findings": FindingInfo}
    verdict: str
    summary: str
    fix: str | None
    findings: list[FindingInfo]
    #: .litertlm only: per engine backend (cpu, gpu, npu), ``{"uses_drafter": bool, "why": str}``
    backends: dict[str, dict[str, Any]] | None = None


@dataclass(frozen=True)
class Report(JsonRecord):
    """Everything ``mtpsurgeon inspect --json`` reports about one file.

    ``container`` and ``sections`` are None / empty for a .tflite file.
    """

    _nested = {"container": ContainerInfo, "sections": SectionInfo, "models": ModelInfo, "orphans": Orphans,
               "base": BaseInfo, "mtp": MtpInfo}
    schema_version: int
    file: str
    size: int
    format: str
    models: list[ModelInfo]
    orphans: Orphans
    base: BaseInfo | None
    mtp: MtpInfo
    container: ContainerInfo | None = None
    sections: list[SectionInfo] | None = None

    @property
    def verdict(self) -> str:
        """Shortcut for ``mtp.verdict``."""
        return self.mtp.verdict


# --- extract ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtractedModel(JsonRecord):
    """A standalone .tflite written by extract (a section copy or a subgraph)."""

    path: str
    sha256: str
    kind: str  #: 'section' | 'subgraph'
    source: str


@dataclass(frozen=True)
class SkippedTensor(JsonRecord):
    """A tensor a dump left out, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class DumpInfo(JsonRecord):
    """One safetensors file written."""

    _nested = {"skipped": SkippedTensor}
    path: str
    dtype: str
    names: str
    tensors: int
    companions: int
    parameters: int
    bytes_in: int
    bytes_out: int
    notes: list[str]
    skipped: list[SkippedTensor]
    config: str | None
    parity: dict[str, Any] | None = None  #: --check-parity: worst differences vs transformers, ``passed``
    unfaithful: list[str] | None = None  #: --allow-partial: what the graph computes that config.json does not


@dataclass(frozen=True)
class ExtractResult(JsonRecord):
    """What ``mtpsurgeon extract --json`` prints: the files written."""

    _nested = {"models": ExtractedModel, "dumps": DumpInfo}
    file: str
    output: str
    models: list[ExtractedModel]
    dumps: list[DumpInfo]
    removed_stale: list[str] | None = None  #: temporary files of earlier killed runs, removed
    notes: list[str] | None = None
    input_sha256: str | None = None  #: the input file's sha256 (``hash_input`` only)


# --- restore ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyRun(JsonRecord):
    """One signature of the patched model run in the LiteRT interpreter."""

    label: str
    signature: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class RestoreResult(JsonRecord):
    """What ``mtpsurgeon restore --json`` prints.

    ``status``: 'restored', 'planned' (dry run) or 'nothing-to-do' (MTP was
    already ready; ``message`` says so). ``bench`` is set by ``--bench``.
    """

    _nested = {"verify": VerifyRun, "bench": BenchResult}
    file: str
    status: str
    output: str | None
    dump: str | None
    plan: list[str]
    relinked_tensors: int = 0
    binding: list[str] | None = None
    verify: list[VerifyRun] | None = None
    message: str | None = None
    bench: BenchResult | None = None
    checks: list[dict[str, Any]] | None = None  #: drafter/base link checks the plan ran
    refused: str | None = None  #: why the plan may not run (link checks), None if it may
    dumps: list[str] | None = None  #: every dump file written
    removed_stale: list[str] | None = None  #: temporary files of earlier killed runs, removed
    input_sha256: str | None = None  #: the input file's sha256 (``hash_input`` only)


# --- enable-mtp ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnableResult(JsonRecord):
    """What ``mtpsurgeon enable-mtp --json`` prints: what was added to a base exported without MTP.

    ``equivalence``: verify over G + 1 tokens vs G + 1 decode calls in the LiteRT interpreter
    (``ok``, ``bit_identical``, ``max_abs_diff`` per output, ``detail``).
    """

    base: str
    output: str
    section: int | None  #: the rewritten prefill/decode section (None: a .tflite base)
    draft_steps: int
    verify_tokens: int
    activations: str  #: the decode tensor exposed as ``activations`` ("" if decode had it)
    hidden: int
    lm_head: str  #: the LM-head matmul's output the activations feed
    token_inputs: list[str]
    state: list[str]
    equivalence: dict[str, Any]
    unchanged_signatures: list[str]
    unchanged_sections: list[int]
    notes: list[str]
    batched: bool = False  #: `verify` is one batched pass over the tokens (not G + 1 decode calls)
    unbatched_reason: str = ""  #: why it is not batched ("" when it is)


# --- build-drafter ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildResult(JsonRecord):
    """What ``mtpsurgeon build-drafter --json`` prints."""

    _nested = {"verify": VerifyRun, "mtp_added": EnableResult}
    checkpoint: str
    base: str
    output: str
    quant: str
    blocks: int
    parameters: int
    drafter_bytes: int
    section: int | None
    checks: list[dict[str, Any]]
    notes: list[str]
    verify: list[VerifyRun]
    mtp_added: "EnableResult | None" = None  #: set when the base had no verify/activations and they were added


__all__ = [
    "BaseInfo", "BenchResult", "BuildResult", "CallTime", "ContainerInfo", "CostModel", "DumpInfo", "EnableResult", "ExtractResult",
    "ExtractedModel", "FindingInfo", "LinkCheckInfo", "ModelInfo", "MtpInfo", "Orphans", "PromptComparison", "Report", "RestoreResult",
    "SectionInfo", "SignatureInfo",
    "SkippedTensor", "SubgraphInfo", "TensorIO", "TensorInfo", "VerifyRun",
]
