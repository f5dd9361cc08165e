"""mtpsurgeon: find, extract and restore the hidden MTP drafter in LiteRT models.

Library entry points::

    from mtpsurgeon import open_file
    with open_file("model.litertlm") as f:   # TFLiteModel or LiteRTLMContainer
        ...
"""
from mtpsurgeon.errors import MalformedFileError, MtpSurgeonError
from mtpsurgeon.formats.open import open_file

__version__ = "0.1.0"

__all__ = ["open_file", "MtpSurgeonError", "MalformedFileError", "__version__"]
