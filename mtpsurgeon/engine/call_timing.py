"""Time, per call, the model calls the LiteRT-LM engine makes, on a container's own sections.

    calls = time_engine_calls("model.litertlm", threads=4)   # -> list[CallTime]

What the engine runs (``llm_litert_mtp_drafter.cc``, ``embedding_lookup_text.cc``):
the base section's ``decode`` (T = 1) per token with MTP off; with MTP on, per
cycle, G drafter steps (the drafter section's signature 0) and one ``verify``
over G + 1 tokens; and the embedder section's signature 0 (one token per call)
for every token it embeds. Each is timed in the LiteRT interpreter with the
XNNPACK kernels the engine's CPU backend uses and the engine's thread count.

Memory: the interpreter packs a copy of the weights of every signature of a
model it runs (see :mod:`mtpsurgeon.surgery.single_signature`), so each call
is timed on a temporary .tflite holding only its signature: a kernel-level
copy of the section when the section is already that (a drafter, an
embedder), else the section reduced to the signature, written with its
weights streamed from the container's map. One child process
(:mod:`~mtpsurgeon.engine.timing_worker`) per call, one after the other, each
temporary file deleted before the next: the peak is one signature's packed
weights, as in the engine, and the parent never holds a copy of any weights.
The temporary folder (``TMPDIR``) needs room for the base section once.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from mtpsurgeon.errors import EngineError, MalformedFileError
from mtpsurgeon.formats.copy import FileRange, copy_range
from mtpsurgeon.formats.litertlm import LiteRTLMContainer
from mtpsurgeon.formats.litertlm.schema import EMBEDDER, MTP_DRAFTER, PER_LAYER_EMBEDDER, PREFILL_DECODE
from mtpsurgeon.formats.open import open_file
from mtpsurgeon.jsonrecord import JsonRecord

ENGINE_CPU_THREADS = 4  #: LiteRT-LM's CPU default (``CpuConfig::number_of_threads``) when none is set
DECODE, VERIFY = "decode", "verify"  #: the base signatures the runtime calls by name
#: role -> (section model_type, signature: a key, or None for signature 0 as the runtime takes it)
ROLES = {"decode": (PREFILL_DECODE, DECODE), "verify": (PREFILL_DECODE, VERIFY), "draft_step": (MTP_DRAFTER, None),
         "embedder": (EMBEDDER, None), "per_layer_embedder": (PER_LAYER_EMBEDDER, None)}
OPTIONAL = {"embedder", "per_layer_embedder"}  #: absent when the base embeds tokens itself


@dataclass(frozen=True)
class CallTime(JsonRecord):
    """One model call timed in the interpreter: median over ``calls`` after warm-up."""

    role: str  #: 'decode' | 'verify' | 'draft_step' | 'embedder' | 'per_layer_embedder'
    section: int
    signature: str
    tokens: int  #: T (verify: G + 1)
    calls: int
    median_ms: float
    min_ms: float


@dataclass(frozen=True)
class TimingPlan:
    """How to time the calls: threads, where in the cache, how many calls."""

    threads: int = ENGINE_CPU_THREADS
    position: int | None = None  #: cache position of the first token; None: the middle of the cache
    warmup: int = 3
    min_calls: int = 7
    min_seconds: float = 0.3
    max_calls: int = 400
    timeout: float = 1800


def _single_signature_file(container: LiteRTLMContainer, index: int, key: str, work: Path) -> Path:
    """A .tflite of section ``index`` holding only signature ``key`` as subgraph 0."""
    model = container.model(index)
    if model.records.external_buffers:
        raise MalformedFileError(container.path, f"section {index} keeps weights in external buffers, which the "
                                                 "interpreter cannot load from a section: its calls are not timed")
    path = work / f"section{index}-{len(list(work.iterdir()))}.tflite"
    sigs = model.signatures
    if len(sigs) == 1 and sigs[0].key == key and sigs[0].subgraph == 0:
        s = container.sections[index]
        with open(path, "wb") as f:
            copy_range(FileRange(container.path, s.begin, s.size), f)
    else:
        # Deferred: the IR pulls numpy and the schema, which a bare `extract --section` never needs.
        from mtpsurgeon.surgery.single_signature import write_single_signature

        write_single_signature(model, key, path)
    return path


def _run_child(model: Path, key: str, plan: TimingPlan) -> dict:
    request = {"model": str(model), "signature": key, "threads": plan.threads, "position": plan.position,
               "warmup": plan.warmup, "min_calls": plan.min_calls, "min_seconds": plan.min_seconds,
               "max_calls": plan.max_calls}
    with tempfile.TemporaryDirectory(prefix="mtpsurgeon-time-") as tmp:
        req, res = Path(tmp) / "request.json", Path(tmp) / "result.json"
        req.write_text(json.dumps(request), encoding="utf-8")
        try:
            proc = subprocess.run([sys.executable, "-m", "mtpsurgeon.engine.timing_worker", str(req), str(res)],
                                  capture_output=True, text=True, errors="replace", timeout=plan.timeout, cwd=tmp)
        except subprocess.TimeoutExpired:
            return {"error": f"did not finish within {plan.timeout:.0f} s"}
        if proc.returncode != 0 or not res.exists():
            tail = next((line for line in reversed(proc.stderr.splitlines()) if line.strip()), "")
            return {"error": f"the interpreter process exited with status {proc.returncode}: {tail[:200]}"}
        return json.loads(res.read_text(encoding="utf-8"))


def time_engine_calls(path: str | os.PathLike, plan: TimingPlan = TimingPlan(), *,
                      container: LiteRTLMContainer | None = None, roles: Iterable[str] = ROLES) -> list[CallTime]:
    """Time the calls of :data:`ROLES` (or just ``roles``) the container has, one at a time.

    Raises :class:`~mtpsurgeon.errors.EngineError` when a call cannot be timed.
    """
    if container is not None:
        return _time_all(path, container, plan, list(roles))
    file = open_file(path)
    try:
        if not isinstance(file, LiteRTLMContainer):
            raise MalformedFileError(Path(path), "the cost model times a .litertlm container's sections")
        return _time_all(path, file, plan, list(roles))
    finally:
        file.source.close()


def _time_all(path: str | os.PathLike, file: LiteRTLMContainer, plan: TimingPlan, roles: list[str]) -> list[CallTime]:
    out: list[CallTime] = []
    with tempfile.TemporaryDirectory(prefix="mtpsurgeon-cost-") as tmp:
        for role, (model_type, key) in ROLES.items():
            if role not in roles:
                continue
            section = file.find(model_type)
            if section is None:
                if role in OPTIONAL:
                    continue
                raise EngineError(f"{path}: no '{model_type}' section, so '{role}' cannot be timed")
            sigs = file.model(section.index).signatures
            if not sigs or (key is not None and key not in {s.key for s in sigs}):
                raise EngineError(f"{path}: section {section.index} ({model_type}) has no signature "
                                  f"'{key if key is not None else 0}' to time for '{role}'")
            key = key if key is not None else sigs[0].key
            single = _single_signature_file(file, section.index, key, Path(tmp))
            try:
                got = _run_child(single, key, plan)
            finally:
                single.unlink()
            if got.get("error"):
                raise EngineError(f"{path}: timing '{key}' of section {section.index} in the interpreter failed: "
                                  f"{got['error']}")
            out.append(CallTime(role, section.index, key, int(got["tokens"]), int(got["calls"]),
                                float(got["median_ms"]), float(got["min_ms"])))
    return out
