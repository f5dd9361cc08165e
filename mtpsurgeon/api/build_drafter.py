"""``mtpsurgeon.build_drafter``: a LiteRT-LM drafter from a Hugging Face ``gemma4_assistant`` checkpoint."""
from __future__ import annotations

import os
from typing import Callable

from mtpsurgeon.api.results import BuildResult
from mtpsurgeon.surgery.drafter import BuildRefused, build_drafter as _build, write_built
from mtpsurgeon.surgery.drafter.quantize import MODES
from mtpsurgeon.inputs import accepts_weights_dir

PathLike = str | os.PathLike

__all__ = ["BuildRefused", "MODES", "build_drafter"]


@accepts_weights_dir
def build_drafter(checkpoint: PathLike, base: PathLike, out: PathLike, *, config: PathLike | None = None,
                  quant: str = "f32", kv_layers: dict[str, int] | None = None, rope: bool = True,
                  replace: bool = False, verify: bool = True, force: bool = False,
                  on_stage: Callable[[str], None] | None = None) -> BuildResult:
    """Build a drafter from ``checkpoint`` (a folder with config.json + safetensors, or one file with
    ``config``) for ``base``, and write it: ``out`` ending in ``.litertlm`` grafts it into the base
    container as a ``tf_lite_mtp_drafter`` section, ``.tflite`` writes the drafter alone.

    ``quant``: ``f32``, ``int8``, ``int4c`` (INT4 per channel) or ``int4b32`` (INT4 blockwise 32,
    FLOAT16 scales); norms stay float. ``kv_layers`` picks the base KV layers read
    (``{"sliding_attention": 22, "full_attention": 23}``; default the last of each). A checkpoint that
    does not fit the base raises :class:`BuildRefused` listing every failing check; nothing is written.
    ``on_stage`` is told 'building' and 'writing'.
    """
    if on_stage is not None:
        on_stage("building")
    built = _build(checkpoint, base, config=config, quant=quant, kv_layers=kv_layers, rope=rope)
    if on_stage is not None:
        on_stage("writing")
    result = write_built(built, out, force=force, verify=verify, replace=replace, inputs=[checkpoint, config])
    return BuildResult.from_json({
        "checkpoint": str(checkpoint), "base": str(base), "output": str(result.output), "quant": quant,
        "blocks": len(built.spec.blocks), "parameters": built.spec.parameters, "drafter_bytes": len(built.data),
        "section": result.section, "checks": [c.to_json() for c in built.checks], "notes": built.notes,
        "verify": [vars(r) for r in result.runs]})
