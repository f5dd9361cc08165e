"""(a) Graft a drafter into a container that lacks one, as a new section."""
from __future__ import annotations

import os
from dataclasses import dataclass

from mtpsurgeon.analysis.drafter import DrafterMatch, find_drafters
from mtpsurgeon.errors import UsageError
from mtpsurgeon.formats.litertlm import LiteRTLMContainer
from mtpsurgeon.formats.litertlm.schema import MTP_DRAFTER
from mtpsurgeon.formats.litertlm.writer import Add, SectionSpec
from mtpsurgeon.formats.open import open_file
from mtpsurgeon.formats.tflite import TFLiteModel


@dataclass
class DrafterSource:
    """A drafter model found in a --drafter file, and the bytes to graft."""

    model: TFLiteModel
    match: DrafterMatch
    label: str

    @property
    def data(self) -> memoryview:
        return self.model.source.slice(self.model.offset, self.model.length, "drafter")


def load_drafter(path: str | os.PathLike) -> DrafterSource:
    """Open a drafter .tflite, or the drafter section of another container."""
    f = open_file(path)
    candidates: list[tuple[TFLiteModel, str]]
    if isinstance(f, LiteRTLMContainer):
        tagged = f.find(MTP_DRAFTER)
        sections = [tagged] if tagged is not None else f.tflite_sections()
        candidates = [(f.model(s.index), f"{path} section {s.index}") for s in sections]
    else:
        candidates = [(f, str(path))]
    for model, label in candidates:
        matches = [m for m in find_drafters(model, set()) if m.io.signature_key is not None]
        if matches:
            return DrafterSource(model, matches[0], label)
    raise UsageError(f"{path}: no signed drafter model found (expected a signature with 'activations' in and "
                     "'logits' + 'projected_activations' out)")


def graft_edit(drafter: DrafterSource) -> Add:
    """An edit appending the drafter as a `tf_lite_mtp_drafter` section."""
    return Add(SectionSpec.tflite(drafter.data, MTP_DRAFTER))
