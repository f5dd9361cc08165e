"""Re-specialize a base model's `verify` signature to another token count.

The LiteRT-LM runtime drafts G = len(verify `input_pos`) - 1 tokens per
speculative cycle, fixed at export. This transformation changes G after the
fact: symbolic shape inference (:mod:`mtpsurgeon.surgery.ir.symbolic`) finds
every shape and every shape constant that is a function of verify's token
count T; they are evaluated again at T' = G + 1. Nothing else changes: the
other signatures' graphs keep their fingerprint, a container's other sections
are copied byte for byte.

The result is gated before it is renamed into place: in the LiteRT interpreter
`verify` over T' tokens must equal T' consecutive `decode` calls, the other
signatures must be structurally unchanged, and (in a container with a drafter)
every drafter link check must pass, including "draft steps = G".

    from mtpsurgeon.surgery.respecialize_verify import tune_draft_steps
    result = tune_draft_steps("gemma4-mini.litertlm", 1, "g1.litertlm")
"""
from __future__ import annotations

import copy
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mtpsurgeon.errors import SurgeryError, UsageError, malformed_model
from mtpsurgeon.formats.litertlm import LiteRTLMContainer
from mtpsurgeon.formats.litertlm.writer import Replace, rewrite_container
from mtpsurgeon.formats.open import ModelFile, open_file
from mtpsurgeon.formats.tflite import TFLiteModel
from mtpsurgeon.formats.tflite.writer import write_tflite
from mtpsurgeon.outputs import atomic_output, check_writable, same_file
from mtpsurgeon.surgery.ir import Buffer, Model
from mtpsurgeon.surgery.ir.fingerprint import signature_fingerprint
from mtpsurgeon.surgery.ir.symbolic import SymbolicShapes, infer_shapes
from mtpsurgeon.surgery.ir.symbolic.context import label, quote
from mtpsurgeon.surgery.ir.symbolic.expr import evaluate, show
from mtpsurgeon.surgery.quantized_boundary import float_twin
from mtpsurgeon.surgery.verify_vs_decode import Equivalence, check_verify_matches_decode

VERIFY = "verify"
DECODE = "decode"


@dataclass
class Respecialization:
    """What changed in the IR."""

    source_tokens: int
    tokens: int
    tensors: int  #: activations whose shape changed
    constants: list[str] = field(default_factory=list)  #: "name: [1, T, 64] -> [1, 2, 64]"
    options: int = 0


@dataclass
class TuneResult:
    output: Path
    draft_steps: int
    source_draft_steps: int
    section: int | None
    change: Respecialization
    equivalence: Equivalence
    unchanged_signatures: list[str]
    links: list[dict] = field(default_factory=list)  #: drafter link checks on the written file
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "output": str(self.output), "draft_steps": self.draft_steps,
            "source_draft_steps": self.source_draft_steps, "section": self.section,
            "verify_tokens": self.change.tokens, "source_verify_tokens": self.change.source_tokens,
            "rewritten_tensors": self.change.tensors, "rewritten_constants": self.change.constants,
            "equivalence": {"ok": self.equivalence.ok(), "bit_identical": self.equivalence.bit_identical,
                            "max_abs_diff": self.equivalence.max_abs_diff, "detail": self.equivalence.describe()},
            "unchanged_signatures": self.unchanged_signatures, "links": self.links, "notes": self.notes,
        }


def respecialize(model: Model, tokens: int, shapes: SymbolicShapes | None = None) -> Respecialization:
    """Rewrite ``model``'s verify graphs in place for ``tokens`` tokens (see module docstring)."""
    shapes = shapes or infer_shapes(model, VERIFY)
    others = [g for s in model.signatures if s.key != VERIFY for g in model.reachable_graphs([s.graph])]
    shared = [quote(g.name) for g in shapes.graphs if g in others]
    if shared:
        raise SurgeryError(f"graphs {shared} of '{VERIFY}' are also used by other signatures; "
                           "re-specializing them would change those signatures")
    change = Respecialization(shapes.t0, tokens, 0)
    for t, dims in shapes.dims.values():
        if t.is_constant:
            continue
        new = evaluate(dims, tokens)
        if any(v <= 0 for v in new):
            raise SurgeryError(f"tensor {label(t)} {show(dims)} would have shape {new} at T={tokens}")
        if new != list(t.shape):
            change.tensors += 1
            if t.shape_signature is not None:
                t.shape_signature = [-1 if s == -1 else v for s, v in zip(t.shape_signature, new)]
            t.shape = new
    fixed: set[int] = set()  # constants with a T-independent reading keep their values for it
    for use in shapes.constants:
        if not use.depends_on_t:
            fixed.add(id(use.tensor))
    for k, use in enumerate(shapes.t_constants):
        t = use.tensor
        values = evaluate(use.exprs, tokens)
        if any(v == 0 or v < -1 for v in values):
            raise SurgeryError(f"{use.role} {label(t)} {show(use.exprs)} would hold {values} at T={tokens}")
        old = np.asarray(t.numpy())
        new_values = np.asarray(values, dtype=old.dtype).reshape(old.shape)
        if id(t) not in fixed:  # the first T-dependent reading takes the tensor itself
            t.buffer = Buffer(new_values)  # never edit a shared buffer
            fixed.add(id(t))
        else:  # a constant the converter shared between readings that now differ: one copy per further reading
            copy_t = use.graph.add_constant(f"{t.name};T{k}", new_values, quantization=t.quantization)
            for node, slot in use.uses:
                node.inputs[slot] = copy_t
        change.constants.append(f"{label(t)}: {show(use.exprs)} -> {values}")
    for opt in shapes.t_options:
        o = copy.copy(opt.node.options)
        setattr(o, opt.field, np.asarray(evaluate(opt.exprs, tokens), dtype=np.int32))
        opt.node.options = o
        change.options += 1
    return change


def _base_section(src: ModelFile) -> tuple[TFLiteModel, int | None]:
    if isinstance(src, TFLiteModel):
        if VERIFY not in {s.key for s in src.signatures}:
            raise UsageError(f"{src.path}: the model has no '{VERIFY}' signature (nothing to tune)")
        return src, None
    for sec in src.tflite_sections():
        m = src.model(sec.index)
        if VERIFY in {s.key for s in m.signatures}:
            return m, sec.index
    raise UsageError(f"{src.path}: no section has a '{VERIFY}' signature (nothing to tune)")


def _link_checks(path: Path) -> list[dict]:
    from mtpsurgeon.analysis import analyze

    report = analyze(path)
    return [dict(c.to_json(), where=f.where) for f in report.findings for c in f.links]


def open_for_rewrite(model: str | os.PathLike | ModelFile, draft_steps: int, out: str | os.PathLike,
                     force: bool) -> tuple[ModelFile, Path]:
    """The opened input and the output path of a verify rewrite; refuses G < 1, out = input, an existing out."""
    if draft_steps < 1:
        raise UsageError(f"--draft-steps {draft_steps}: must be >= 1 (with 0 draft steps the engine drafts nothing)")
    src = model if isinstance(model, (TFLiteModel, LiteRTLMContainer)) else open_file(model)
    out = Path(out)
    if same_file(out, src.path):
        raise SurgeryError(f"{out}: refusing to overwrite the input file")
    check_writable(out, force)
    return src, out


def write_rewritten(ir: Model, base: TFLiteModel, src: ModelFile, section: int | None, tmp: Path,
                    work: Path) -> Path:
    """Write the rewritten base model: to ``tmp`` itself (a .tflite input), or to ``work`` and into a copy of
    the container at ``tmp`` with section ``section`` replaced. Returns the path of the written base model."""
    base_path = tmp if section is None else work / "base.tflite"
    write_base(ir, base, base_path)
    if section is not None:
        rewrite_container(src, [Replace(section, base_path)], tmp, force=True)
    return base_path


def tune_draft_steps(model: str | os.PathLike | ModelFile, draft_steps: int, out: str | os.PathLike, *,
                     force: bool = False, seed: int = 0) -> TuneResult:
    """Write ``model`` with `verify` re-specialized to ``draft_steps`` + 1 tokens, gated (see module docstring)."""
    src, out = open_for_rewrite(model, draft_steps, out, force)
    base, section = _base_section(src)
    with malformed_model(base.path, f"reading {base.label or 'the base model'} into the IR"):
        ir = Model.from_tflite(base)
    try:
        shapes = infer_shapes(ir, VERIFY)
    except SurgeryError as exc:
        raise SurgeryError(f"{src.path}: cannot re-specialize '{VERIFY}': {exc}") from None
    tokens = draft_steps + 1
    cache = ir.signature(VERIFY).inputs.get("mask")
    if cache is not None and tokens >= cache.shape[-1]:
        raise UsageError(f"--draft-steps {draft_steps}: {tokens} tokens do not fit the KV cache ({cache.shape[-1]})")
    before = {s.key: signature_fingerprint(ir, s.key) for s in ir.signatures if s.key != VERIFY}
    change = respecialize(ir, tokens, shapes)
    with atomic_output(out, force) as tmp:
        with tempfile.TemporaryDirectory(prefix=".tune-", dir=tmp.parent) as work:
            base_path = write_rewritten(ir, base, src, section, tmp, Path(work))
            result = _gate(src, section, base_path, tmp, before, change, draft_steps, shapes.t0 - 1, seed, Path(work))
        result.output = out
    return result


def verify_equivalence(base_path: Path, work: Path, seed: int, kernels: str) -> tuple[Equivalence, list[str]]:
    """verify over T' tokens vs T' decode calls; on the float twin when the state is quantized (see
    :mod:`~mtpsurgeon.surgery.quantized_boundary`: INT8 KV rows written inside one verify call stay float)."""
    written = open_file(base_path)
    twin = Model.from_tflite(written)
    stripped = float_twin(twin, [VERIFY, DECODE])
    if not stripped:
        return check_verify_matches_decode(base_path, seed=seed, kernels=kernels), []
    path = work / "float-twin.tflite"  # streamed like the output itself, removed after the check
    write_base(twin, written, path)
    eq = check_verify_matches_decode(path, seed=seed, kernels=kernels)
    path.unlink()
    return eq, [f"verify vs decode compared with the {stripped} quantized state boundaries of '{VERIFY}' and "
                f"'{DECODE}' removed (DEQUANTIZE after a cache input, QUANTIZE before a cache output): verify "
                "keeps the rows it writes in float within one call, decode re-quantizes after each row"]


def _gate(src: ModelFile, section: int | None, base_path: Path, tmp: Path, before: dict[str, str],
          change: Respecialization, g: int, g0: int, seed: int, work: Path) -> TuneResult:
    """Every check the written file must pass; raises (nothing is renamed into place) on a failure."""
    written = open_file(tmp)
    new_base, _ = _base_section(written)
    if section is not None and _sha(written.section_bytes(section)) != _file_sha(base_path):
        raise SurgeryError(f"{tmp}: the written base section differs from the rewritten model")
    new_ir = Model.from_tflite(new_base)
    after = {k: signature_fingerprint(new_ir, k) for k in before if new_ir.signature(k) is not None}
    changed = sorted(k for k in before if after.get(k) != before[k])
    if changed:
        raise SurgeryError(f"re-specializing '{VERIFY}' changed other signatures: {changed}")
    if isinstance(src, LiteRTLMContainer):
        for sec in src.sections:
            if sec.index != section and _sha(src.section_bytes(sec.index)) != _sha(written.section_bytes(sec.index)):
                raise SurgeryError(f"section {sec.index} changed although only section {section} was rewritten")
    kernels = "xnnpack" if base_path.stat().st_size < GATE_XNNPACK_BELOW else "builtin"
    eq, notes = verify_equivalence(base_path, work, seed, kernels)
    if not eq.ok():
        raise SurgeryError(f"the re-specialized '{VERIFY}' does not match repeated 'decode': {eq.describe()}")
    links = _link_checks(tmp)
    failed = [c for c in links if not c["passed"]]
    if failed:
        raise SurgeryError("drafter link checks fail on the result: "
                           + "; ".join(f"{c['check']} (expected {c['expected']}, got {c['actual']})" for c in failed))
    if not links:
        notes.append("no recognised drafter in this file (none, or hidden: see mtpsurgeon inspect): "
                     "link checks not applicable")
    return TuneResult(Path(tmp), g, g0, section, change, eq, sorted(before), links, notes)


#: The gate runs XNNPACK (the engine's CPU kernels, bit-identical on the fixtures) below
#: this base-model size; above, the reference kernels, which hold no copy of the weights.
GATE_XNNPACK_BELOW = 256 << 20

#: Above this size the rewritten model keeps its weights after the flatbuffer (offset
#: buffers), so writing never holds a copy of them; below, the writer's choice stands.
OFFSET_BUFFERS_FROM = 64 << 20


def write_base(ir: Model, source: TFLiteModel, path: Path) -> None:
    """Stream the rewritten base to ``path``; weights stay views of the input's map.

    Offset buffers when the input uses them or is large, so writing never holds a copy of the weights.
    """
    offsets = source.length >= OFFSET_BUFFERS_FROM or any(b.storage == "offset" for b in source.buffers)
    write_tflite(ir, path, force=True, force_offset_buffers=offsets)


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sha(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()
