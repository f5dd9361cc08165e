"""(b) Re-tag a drafter section whose model_type is missing or wrong."""
from __future__ import annotations

from mtpsurgeon.formats.litertlm.schema import MODEL_TYPE_KEY, MTP_DRAFTER
from mtpsurgeon.formats.litertlm.writer import Retag


def retag_edit(section_index: int) -> Retag:
    """An edit setting the section's model_type item to `tf_lite_mtp_drafter`."""
    return Retag(section_index, set={MODEL_TYPE_KEY: MTP_DRAFTER})
