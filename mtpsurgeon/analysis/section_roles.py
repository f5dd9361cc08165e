"""What each ``.litertlm`` section is for, its ``backend_constraint``, and where the engine uses the drafter.

A TFLite section's role is its ``model_type`` item (the values of
``litert_lm_builder.TfLiteModelType``); ``backend_constraint`` (an item the
official builder writes as a comma-separated list of ``cpu``, ``gpu``,
``npu``, ``gpu_artisan``) restricts the backends the LiteRT-LM engine loads
the section on. LiteRT-LM's MTP path (``llm_litert_mtp_drafter.cc``) runs on
the CPU backend only: a GPU engine created with speculative decoding fails
(google-ai-edge/gallery#791); NPU builds draft through ``tf_lite_mtp_aux``.

    >>> backends("cpu, GPU")
    ('cpu', 'gpu')
    >>> SECTION_ROLES["tf_lite_mtp_aux"].split(":")[0]
    'MTP helper of NPU builds'
"""
from __future__ import annotations

from mtpsurgeon.formats.litertlm.reader import SectionRecord
from mtpsurgeon.formats.litertlm.schema import MTP_AUX, MTP_DRAFTER, PREFILL_DECODE

BACKEND_KEY = "backend_constraint"
PER_LAYER_EMBEDDER = "tf_lite_per_layer_embedder"

#: model_type → what the section holds (every value of litert_lm_builder 0.18.1's TfLiteModelType).
SECTION_ROLES: dict[str, str] = {
    "tf_lite_prefill_decode": "the base model (prefill, decode and verify signatures)",
    "tf_lite_embedder": "token embedder (the base model reads embeddings from it)",
    PER_LAYER_EMBEDDER: "per-layer embeddings of the base model",
    "tf_lite_aux": "auxiliary model of the base (runtime helpers)",
    "tf_lite_audio_frontend": "audio front end (features from samples)",
    "tf_lite_audio_encoder_hw": "audio encoder",
    "tf_lite_audio_adapter": "audio adapter (encoder output to text embeddings)",
    "tf_lite_end_of_audio": "end-of-audio embedding",
    "tf_lite_vision_encoder": "vision encoder",
    "tf_lite_vision_adapter": "vision adapter (encoder output to text embeddings)",
    "tf_lite_end_of_vision": "end-of-vision embedding",
    "tf_lite_artisan_text_decoder": "text decoder of GPU/web builds for the gpu_artisan backend (takes the place "
                                    "of tf_lite_prefill_decode there; no MTP path)",
    MTP_DRAFTER: "MTP drafter for speculative decoding (LiteRT-LM's MTP path, CPU backend)",
    MTP_AUX: "MTP helper of NPU builds: signatures 'rope' (input_pos) and 'mask' (time_step, input_tokens) whose "
             "outputs feed the drafter; the NPU executor runs it on CPU; needs per-layer embeddings",
    "tf_lite_text_encoder": "text encoder",
}


def backends(value: object) -> tuple[str, ...] | None:
    """A ``backend_constraint`` item as lower-case backend names (None when the section has none)."""
    if value is None:
        return None
    names = tuple(b.strip().lower() for b in str(value).split(",") if b.strip())
    return names or None


def section_role(s: SectionRecord) -> str | None:
    """What a section holds, when its model_type is one LiteRT-LM defines (None: untagged or unknown)."""
    return SECTION_ROLES.get(s.model_type) if s.model_type else None


def _allows(s: SectionRecord | None, backend: str) -> bool:
    allowed = None if s is None else backends(s.item(BACKEND_KEY))
    return allowed is None or backend in allowed


def drafter_backends(sections: tuple[SectionRecord, ...] | list[SectionRecord]) -> dict[str, dict]:
    """Per engine backend (cpu, gpu, npu): does the LiteRT-LM engine draft with this container's drafter, and why."""
    by_type = {s.model_type: s for s in sections if s.model_type}
    drafter, base, aux = by_type.get(MTP_DRAFTER), by_type.get(PREFILL_DECODE), by_type.get(MTP_AUX)
    if drafter is None:
        why = f"no {MTP_DRAFTER} section: speculative decoding is unavailable on every backend"
        return {b: {"uses_drafter": False, "why": why} for b in ("cpu", "gpu", "npu")}
    out: dict[str, dict] = {}
    if not _allows(drafter, "cpu"):
        out["cpu"] = {"uses_drafter": False, "why": f"the drafter's backend_constraint "
                      f"({drafter.item(BACKEND_KEY)}) excludes cpu, and the MTP path runs on CPU only"}
    elif base is not None and not _allows(base, "cpu"):
        out["cpu"] = {"uses_drafter": False, "why": f"the base model's backend_constraint ({base.item(BACKEND_KEY)}) "
                      "excludes cpu"}
    else:
        out["cpu"] = {"uses_drafter": True, "why": "LiteRT-LM's MTP path (enable_speculative_decoding)"}
    out["gpu"] = {"uses_drafter": False, "why": "the MTP path runs on the CPU backend only: a GPU engine created "
                  "with speculative decoding fails (google-ai-edge/gallery#791); without it, no drafting"}
    if aux is None:
        out["npu"] = {"uses_drafter": False, "why": f"NPU builds draft through a {MTP_AUX} section; this file has none"}
    elif PER_LAYER_EMBEDDER not in by_type:
        out["npu"] = {"uses_drafter": False, "why": f"{MTP_AUX} is present but the NPU MTP path needs per-layer "
                      f"embeddings ({PER_LAYER_EMBEDDER}), which this file lacks"}
    else:
        out["npu"] = {"uses_drafter": True, "why": f"the NPU executor feeds the drafter from {MTP_AUX} "
                      "('rope' and 'mask' signatures, run on CPU)"}
    return out
