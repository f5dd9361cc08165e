"""Build a drafter from a Hugging Face checkpoint for a base model, gate it, and write it.

    built = build_drafter("assistant/", "model.litertlm", quant="int4c")
    write_built(built, "model+mtp.litertlm", verify=True)

Order: read the checkpoint (:func:`~mtpsurgeon.surgery.drafter.spec.load_spec`),
read the base's interface, emit the graph, export it, then gate it with the
same drafter ↔ base link checks ``inspect`` runs (H, vocab, KV inputs, mask,
verify, G). Any failure raises :class:`BuildRefused` listing every failing
check; nothing is written. Outputs are written under a temporary name, the
drafter is run in the LiteRT interpreter with the base's KV shapes/dtypes
(``verify``), and only then renamed into place.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mtpsurgeon.analysis.dims import BaseDims, base_dims
from mtpsurgeon.analysis.drafter import find_drafters
from mtpsurgeon.analysis.links import LinkCheck, link_checks
from mtpsurgeon.errors import SurgeryError, UsageError
from mtpsurgeon.formats.litertlm import LiteRTLMContainer
from mtpsurgeon.formats.litertlm.schema import EMBEDDER, MTP_DRAFTER, PREFILL_DECODE
from mtpsurgeon.formats.litertlm.writer import Add, Replace, SectionSpec, rewrite_container
from mtpsurgeon.formats.open import open_file
from mtpsurgeon.formats.tflite import TFLiteModel
from mtpsurgeon.formats.tflite.writer import tflite_bytes
from mtpsurgeon.outputs import OutputSet
from mtpsurgeon.surgery.drafter.base_interface import drafter_interface
from mtpsurgeon.surgery.drafter.emit import SIGNATURE, emit_drafter
from mtpsurgeon.surgery.drafter.quantize import MODES
from mtpsurgeon.surgery.drafter.refusal import BuildRefused
from mtpsurgeon.surgery.drafter.spec import DrafterSpec, load_spec
from mtpsurgeon.surgery.verify import SignatureRun, run_signatures


@dataclass
class BuiltDrafter:
    """A gated drafter model, ready to write."""

    data: bytes
    spec: DrafterSpec
    base_path: Path
    base: BaseDims
    container: LiteRTLMContainer | None
    quant: str
    checks: list[LinkCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class BuildResult:
    output: Path
    runs: list[SignatureRun] = field(default_factory=list)
    section: int | None = None  #: index of the drafter section in a written container


def open_base(path: str | os.PathLike) -> tuple[TFLiteModel, BaseDims, LiteRTLMContainer | None]:
    """The base's prefill/decode model and its dimensions (a .litertlm, or a .tflite base model)."""
    f = open_file(path)
    if isinstance(f, LiteRTLMContainer):
        sec = f.find(PREFILL_DECODE)
        if sec is None:
            raise UsageError(f"{path}: no '{PREFILL_DECODE}' section to build a drafter for")
        emb = f.find(EMBEDDER)
        model = f.model(sec.index)
        return model, base_dims(model, f"section {sec.index} ({PREFILL_DECODE})", f.model(emb.index) if emb else None), f
    return f, base_dims(f, "model"), None


def _model_from_bytes(data: bytes, tmpdir: str) -> TFLiteModel:
    p = Path(tmpdir) / "drafter.tflite"
    p.write_bytes(data)
    m = open_file(p)
    if not isinstance(m, TFLiteModel):
        raise SurgeryError("internal: the emitted drafter is not a .tflite model")
    return m


def build_drafter(checkpoint: str | os.PathLike, base: str | os.PathLike, *, config: str | os.PathLike | None = None,
                  quant: str = "f32", kv_layers: dict[str, int] | None = None, rope: bool = True) -> BuiltDrafter:
    """Build and gate a drafter; raises :class:`BuildRefused` with every failing check."""
    if quant not in MODES:
        raise UsageError(f"--quant {quant}: choose from {', '.join(MODES)}")
    spec = load_spec(checkpoint, config, rope=rope)
    model, dims, container = open_base(base)
    notes = list(spec.notes)
    pre = [LinkCheck("checkpoint backbone_hidden_size = base hidden", spec.backbone_hidden == dims.hidden,
                     dims.hidden, spec.backbone_hidden),
           LinkCheck("checkpoint vocab = base vocab", spec.vocab == dims.vocab, dims.vocab, spec.vocab)]
    iface, kv_checks = drafter_interface(spec, dims, model, kv_layers, notes)
    checks = pre + kv_checks
    if iface is None:
        raise BuildRefused(checkpoint, checks)
    ir = emit_drafter(spec, iface, quant)
    # the graph now holds what it needs: release the float32 weights before the flatbuffer is packed
    spec.parameter_count = spec.parameters
    spec.weights.clear()
    data = tflite_bytes(ir)
    del ir
    with tempfile.TemporaryDirectory(prefix="mtpsurgeon-build-") as tmp:
        built = _model_from_bytes(data, tmp)
        matches = [m for m in find_drafters(built, set()) if m.io.signature_key == SIGNATURE]
        if not matches:
            raise SurgeryError("internal: the emitted drafter is not recognised as a drafter")
        checks += link_checks(matches[0], dims)
        built.source.close()
    if any(not c.passed for c in checks):
        raise BuildRefused(checkpoint, checks)
    if spec.softcap:
        notes.append(f"logits soft-capped in the graph: {spec.softcap} * tanh(x / {spec.softcap}) "
                     "(final_logit_softcapping; LM head = model.embed_tokens as stored)")
    return BuiltDrafter(data, spec, Path(base), dims, container, quant, checks, notes)


def write_built(built: BuiltDrafter, out: str | os.PathLike, *, force: bool = False, verify: bool = True,
                replace: bool = False, inputs: list[str | os.PathLike | None] | None = None) -> BuildResult:
    """Write the drafter alone (``.tflite``) or grafted into the base container (``.litertlm``)."""
    out = Path(out)
    if out.suffix not in (".tflite", ".litertlm"):
        raise UsageError(f"{out}: the output must end in .litertlm (grafted) or .tflite (the drafter alone)")
    outs = OutputSet(force=force, inputs=[built.base_path, *(inputs or [])])
    outs.check(out)
    result = BuildResult(out)
    with outs:
        tmp = outs.add(out)
        if out.suffix == ".tflite":
            tmp.write_bytes(built.data)
        else:
            c = built.container
            if c is None:
                raise UsageError(f"{out}: a .litertlm output needs a .litertlm --base (got {built.base_path}); "
                                 "write -o OUT.tflite for a standalone drafter")
            existing = c.find(MTP_DRAFTER)
            spec = SectionSpec.tflite(memoryview(built.data), MTP_DRAFTER)
            if existing is not None and not replace:
                raise SurgeryError(f"{built.base_path}: already has a drafter (section {existing.index}); "
                                   "pass --replace to swap it")
            edit = Replace(existing.index, built.data) if existing is not None else Add(spec)
            rewrite_container(c, [edit], tmp, force=True)
            result.section = existing.index if existing is not None else len(c.sections)
        if verify:
            result.runs = run_signatures(built.data, "built drafter", [SIGNATURE])
            failed = [r for r in result.runs if not r.ok]
            if failed:
                raise SurgeryError(f"{out}: the built drafter failed in the LiteRT interpreter: "
                                   + "; ".join(r.detail for r in failed))
    return result
