"""``mtpsurgeon.build_drafter``: a LiteRT-LM drafter from a Hugging Face ``gemma4_assistant`` checkpoint."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from mtpsurgeon.api.enable_mtp import outcome_result
from mtpsurgeon.api.results import BuildResult
from mtpsurgeon.errors import UsageError
from mtpsurgeon.formats.open import open_file
from mtpsurgeon.outputs import check_writable
from mtpsurgeon.surgery.enable_mtp import base_model_of, enable_mtp, needs_mtp
from mtpsurgeon.surgery.drafter import BuildRefused, build_drafter as _build, write_built
from mtpsurgeon.surgery.drafter.quantize import MODES
from mtpsurgeon.inputs import accepts_weights_dir

PathLike = str | os.PathLike

__all__ = ["BuildRefused", "MODES", "build_drafter"]


@accepts_weights_dir
def build_drafter(checkpoint: PathLike, base: PathLike, out: PathLike, *, config: PathLike | None = None,
                  quant: str = "f32", kv_layers: dict[str, int] | None = None, rope: bool = True,
                  replace: bool = False, verify: bool = True, force: bool = False, draft_steps: int | None = None,
                  on_stage: Callable[[str], None] | None = None) -> BuildResult:
    """Build a drafter from ``checkpoint`` (a folder with config.json + safetensors, or one file with
    ``config``) for ``base``, and write it: ``out`` ending in ``.litertlm`` grafts it into the base
    container as a ``tf_lite_mtp_drafter`` section, ``.tflite`` writes the drafter alone.

    ``quant``: ``f32``, ``int8``, ``int4c`` (INT4 per channel) or ``int4b32`` (INT4 blockwise 32,
    FLOAT16 scales); norms stay float. ``kv_layers`` picks the base KV layers read
    (``{"sliding_attention": 22, "full_attention": 23}``; default the last of each). A checkpoint that
    does not fit the base raises :class:`BuildRefused` listing every failing check; nothing is written.
    A base exported without MTP (no ``verify`` signature, no ``activations`` output of ``decode``)
    first gets them, as :func:`mtpsurgeon.enable_mtp` adds them, for ``draft_steps`` (default 3) draft
    tokens per cycle; the result's ``mtp_added`` says what was added. ``on_stage`` is told
    'enabling' (then), 'building' and 'writing'.
    """
    model, _ = base_model_of(open_file(base))
    if not needs_mtp(model):
        if draft_steps is not None:
            raise UsageError(f"{base}: the base already has 'verify'; --draft-steps applies only when it is added "
                             "(change it with `mtpsurgeon tune`)")
        return _build_and_write(checkpoint, base, base, out, None, config=config, quant=quant, kv_layers=kv_layers,
                                rope=rope, replace=replace, verify=verify, force=force, on_stage=on_stage)
    check_writable(Path(out), force)
    if on_stage is not None:
        on_stage("enabling")
    with tempfile.TemporaryDirectory(prefix=".mtpsurgeon-enable-", dir=Path(out).resolve().parent) as work:
        enabled = Path(work) / f"base-with-verify{Path(base).suffix}"
        added = outcome_result(base, enable_mtp(base, enabled, draft_steps=3 if draft_steps is None else draft_steps))
        return _build_and_write(checkpoint, base, enabled, out, added, config=config, quant=quant,
                                kv_layers=kv_layers, rope=rope, replace=replace, verify=verify, force=force,
                                on_stage=on_stage)


def _build_and_write(checkpoint: PathLike, base: PathLike, model: PathLike, out: PathLike, added, *, config, quant,
                     kv_layers, rope, replace, verify, force, on_stage) -> BuildResult:
    if on_stage is not None:
        on_stage("building")
    built = _build(checkpoint, model, config=config, quant=quant, kv_layers=kv_layers, rope=rope)
    if on_stage is not None:
        on_stage("writing")
    result = write_built(built, out, force=force, verify=verify, replace=replace, inputs=[checkpoint, config, base])
    record = {
        "checkpoint": str(checkpoint), "base": str(base), "output": str(result.output), "quant": quant,
        "blocks": len(built.spec.blocks), "parameters": built.spec.parameters, "drafter_bytes": len(built.data),
        "section": result.section, "checks": [c.to_json() for c in built.checks], "notes": built.notes,
        "verify": [vars(r) for r in result.runs]}
    if added is not None:
        record["mtp_added"] = added.to_json()
    return BuildResult.from_json(record)
