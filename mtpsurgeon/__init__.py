"""mtpsurgeon: find, extract and restore the hidden MTP drafter in LiteRT models.

Library entry points::

    from mtpsurgeon import open_file
    with open_file("model.litertlm") as f:   # TFLiteModel or LiteRTLMContainer
        ...
"""
from mtpsurgeon.errors import MalformedFileError, MtpSurgeonError

__version__ = "0.1.0"

__all__ = ["open_file", "MtpSurgeonError", "MalformedFileError", "__version__"]


def __getattr__(name: str):
    """Import the readers (flatbuffers, numpy, the schemas) on first use, not at ``import mtpsurgeon``."""
    if name == "open_file":
        from mtpsurgeon.formats.open import open_file

        return open_file
    raise AttributeError(f"module 'mtpsurgeon' has no attribute {name!r}")
