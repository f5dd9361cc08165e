"""The .litertlm container (LiteRT-LM): header, sections, writer."""
from mtpsurgeon.formats.litertlm.reader import LiteRTLMContainer, SectionRecord, read_litertlm

__all__ = ["LiteRTLMContainer", "SectionRecord", "read_litertlm"]
