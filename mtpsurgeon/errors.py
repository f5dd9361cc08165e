"""Exceptions that the CLI turns into one-line messages and exit codes."""
from __future__ import annotations

import contextlib
import struct
from typing import Iterator


class MtpSurgeonError(Exception):
    """Base class: an expected failure with a message fit for a user."""

    exit_code = 1


class MalformedFileError(MtpSurgeonError):
    """The input file is not a valid model of the format it claims (exit 2)."""

    exit_code = 2

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class UsageError(MtpSurgeonError):
    """The request cannot be carried out as asked (exit 2)."""

    exit_code = 2


class OutputExistsError(MtpSurgeonError):
    """An output exists and --force was not given (exit 1)."""

    def __init__(self, path: object) -> None:
        super().__init__(f"{path}: already exists (use --force to overwrite)")


class OutputError(MtpSurgeonError):
    """An output cannot or may not be written: policy refusal, full disk, read-only (exit 1)."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        super().__init__(f"{path}: {problem}")


class SurgeryError(MtpSurgeonError):
    """A transformation could not be carried out safely (exit 1)."""


#: What a corrupt model can make the flatbuffer object API or packer raise
#: (``struct.error`` reading past a table, ``TypeError("bad number ...")`` packing
#: an out-of-range value, bad indices, undecodable strings).
MALFORMED_SYMPTOMS = (struct.error, OverflowError, UnicodeDecodeError, IndexError, KeyError, TypeError, ValueError)


@contextlib.contextmanager
def malformed_model(path: object, doing: str) -> Iterator[None]:
    """Turn a low-level failure while ``doing`` something with the model at ``path`` into exit 2."""
    try:
        yield
    except MtpSurgeonError:
        raise
    except MALFORMED_SYMPTOMS as exc:
        raise MalformedFileError(path, f"{doing} failed: the model is malformed ({type(exc).__name__}: {exc})") from exc


class NothingToRestore(MtpSurgeonError):
    """restore: the model is already complete (exit 0) or has nothing hidden (exit 1)."""

    def __init__(self, message: str, complete: bool) -> None:
        super().__init__(message)
        self.complete = complete
        self.exit_code = 0 if complete else 1


class EngineUnavailableError(MtpSurgeonError):
    """The optional LiteRT-LM engine (``litert-lm-api``, extra ``mtpsurgeon[engine]``) is not installed (exit 1)."""


class SpeculativeDecodingUnavailableError(MtpSurgeonError):
    """The model has no drafter the engine could use for speculative decoding (exit 1)."""


class EngineError(MtpSurgeonError):
    """The LiteRT-LM engine failed or aborted on the model (exit 1)."""
