"""``mtpsurgeon.inspect``: what is in a model file, what is orphaned, where the MTP drafter is."""
from __future__ import annotations

import contextlib
import fnmatch
import os
from typing import Any, Iterator

from mtpsurgeon.analysis import Report as Analysis
from mtpsurgeon.analysis import analyze
from mtpsurgeon.analysis.report_json import LazyRows, tensor_json
from mtpsurgeon.api.results import Report, TensorInfo
from mtpsurgeon.errors import UsageError
from mtpsurgeon.inputs import accepts_weights_dir

PathLike = str | os.PathLike


@contextlib.contextmanager
def analysed(path: PathLike, base: PathLike | None = None) -> Iterator[Analysis]:
    """The full analysis of ``path`` (internal objects over the memory map), closed afterwards.

    An explicit ``base`` that holds no base model is refused with the reason
    (:class:`~mtpsurgeon.errors.UsageError`), never silently ignored.
    """
    analysis = analyze(path, base=base)
    try:
        if base is not None and analysis.base is None:
            raise UsageError(f"--base {base}: no base model found in it (no 'tf_lite_prefill_decode' section, and no "
                             "decode / prefill / verify signature), so it cannot be used for link checks")
        yield analysis
    finally:
        analysis.file.source.close()


@accepts_weights_dir
def inspect(path: PathLike, *, base: PathLike | None = None) -> Report:
    """Analyse a ``.tflite`` or ``.litertlm`` file: the data of ``mtpsurgeon inspect --json``.

    ``base`` gives a standalone drafter the base model its link checks need.
    Raises :class:`~mtpsurgeon.errors.MalformedFileError` for a file that is
    not a valid model.

    >>> import mtpsurgeon
    >>> report = mtpsurgeon.inspect("fixtures/hidden/untagged-drafter.litertlm")
    >>> report.verdict, report.mtp.findings[0].kind, report.mtp.findings[0].section
    ('hidden', 'section_untagged', 5)
    >>> report.base.draft_steps
    3
    >>> report.to_json()["mtp"]["verdict"]
    'hidden'
    """
    with analysed(path, base) as analysis:
        return Report.from_json(analysis.to_json())


@contextlib.contextmanager
@accepts_weights_dir
def inspect_json(path: PathLike, *, base: PathLike | None = None) -> Iterator[dict[str, Any]]:
    """The ``inspect --json`` document of ``path``, for streaming: valid inside the ``with`` block only.

    The same data as ``inspect(path).to_json()``, but the orphan tensor
    listings are sized sequences whose rows are made as they are read (a
    model with 200,000 orphan constants is never held as 200,000 dicts).

    >>> import mtpsurgeon.api as api
    >>> with api.inspect_json("fixtures/hidden/untagged-drafter.litertlm") as doc:
    ...     doc["mtp"]["verdict"], isinstance(doc["orphans"]["tensors"], list)
    ('hidden', False)
    """
    with analysed(path, base) as analysis:
        yield analysis.to_json(lazy=True)


def _tensor_rows(analysis: Analysis, orphans: bool, mtp: bool, match: str | None) -> LazyRows:
    picked = []
    for ma in analysis.models:
        mtp_keys = ma.mtp_tensor_keys()
        orphan_keys = {(t.subgraph, t.index) for t in ma.orphans.tensors}
        for t in ma.model.tensors():
            key = (t.subgraph, t.index)
            if (orphans and key not in orphan_keys) or (mtp and key not in mtp_keys):
                continue
            if match and not fnmatch.fnmatchcase(t.name, match):
                continue
            picked.append((ma, t, mtp_keys, orphan_keys))
    return LazyRows(picked, lambda x: tensor_json(*x))


@contextlib.contextmanager
@accepts_weights_dir
def tensor_rows(path: PathLike, *, base: PathLike | None = None, orphans: bool = False, mtp: bool = False,
                match: str | None = None) -> Iterator[LazyRows]:
    """:func:`list_tensors` as JSON rows made on demand (sized, sliceable): valid inside the ``with`` block only."""
    with analysed(path, base) as analysis:
        yield _tensor_rows(analysis, orphans, mtp, match)


@accepts_weights_dir
def list_tensors(path: PathLike, *, base: PathLike | None = None, orphans: bool = False, mtp: bool = False,
                 match: str | None = None) -> list[TensorInfo]:
    """Every tensor of every model in the file (``inspect --tensors``), optionally filtered.

    ``orphans``: only orphaned tensors; ``mtp``: only tensors tied to MTP;
    ``match``: a glob on the tensor name. :func:`tensor_rows` gives the same
    rows as JSON, made as they are read.

    >>> import mtpsurgeon
    >>> rows = mtpsurgeon.list_tensors("fixtures/hidden/pruned-drafter.tflite", orphans=True, match="*pre_projection*")
    >>> [(t.name, t.shape, t.dtype) for t in rows]
    [('pre_projection.weight', [64, 128], 'INT4')]
    """
    with tensor_rows(path, base=base, orphans=orphans, mtp=mtp, match=match) as rows:
        return [TensorInfo.from_json(r) for r in rows]
