"""``mtpsurgeon.extract``: MTP weights to safetensors, drafters to standalone ``.tflite``."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from mtpsurgeon.api.results import ExtractResult
from mtpsurgeon.errors import UsageError
from mtpsurgeon.inputs import accepts_weights_dir

SELECTIONS = ("mtp", "orphans", "all")


def default_output(path: str | os.PathLike) -> Path:
    """``MODEL-extracted/`` beside the model."""
    p = Path(path)
    return p.with_name(p.stem + "-extracted")


@accepts_weights_dir
def extract(path: str | os.PathLike, out_dir: str | os.PathLike | None = None, *, select: str = "mtp",
            section: str | int | None = None, subgraph: int | None = None, signature: str | None = None,
            match: str | None = None, dtype: str = "raw", names: str = "original", models: bool = True,
            force: bool = False, progress: Callable[[int, int], None] | None = None, allow_partial: bool = False,
            check_parity: bool = False, hash_input: bool = False) -> ExtractResult:
    """Write a model's MTP weights (or another selection) as safetensors and standalone models.

    ``select``: ``'mtp'`` (the MTP findings), ``'orphans'`` or ``'all'`` (every
    constant); ``section`` (index or model_type), ``subgraph``, ``signature``
    and ``match`` (a glob on names) narrow it. ``dtype``: ``'raw'`` (stored
    bytes + scales) or ``'f32'`` / ``'f16'`` / ``'bf16'`` (exactly dequantized);
    ``names='hf'`` writes transformers ``gemma4_assistant`` names and
    ``config.json`` (a folder ``from_pretrained`` loads: ``model.safetensors``,
    ``config.json``, ``README.md``); a selected weight it cannot name raises
    :class:`~mtpsurgeon.extract.dump.PartialMappingError` unless ``allow_partial``, and so does
    a graph feature no ``gemma4_assistant`` config expresses
    (:class:`~mtpsurgeon.extract.dump.UnfaithfulConfigError`);
    ``check_parity`` runs the checkpoint in transformers against the LiteRT
    drafter (``dumps[i].parity``; needs torch and transformers).
    ``models=False`` writes no ``.tflite``. All files are written as one set:
    all or nothing. Existing outputs
    are refused (:class:`~mtpsurgeon.errors.OutputExistsError`) unless
    ``force``. ``progress(nbytes, total)`` is called as stored bytes are read.
    Provenance: each section copied out is hashed while copied and that hash
    is reused by its dump; the whole input is hashed only with ``hash_input``
    (``input_sha256``, and ``mtpsurgeon.source_sha256`` in the dumps).

    ``section`` alone (no other selection, ``dtype='raw'``, original names,
    ``models=True``) copies that section out byte for byte and nothing else:
    only the container's header is read (no analysis, no numpy), so it runs
    at the speed of the copy. Ask for a dump of its weights with
    ``select='all'`` (every constant), ``'orphans'``, ``match``, a ``dtype``
    or ``names='hf'``.

    >>> import mtpsurgeon, tempfile, os
    >>> out = tempfile.mkdtemp()
    >>> result = mtpsurgeon.extract("fixtures/hidden/untagged-drafter.litertlm", out, dtype="f32", names="hf")
    >>> [m.kind for m in result.models], result.dumps[0].tensors, os.path.basename(result.dumps[0].path)
    (['section'], 44, 'model.safetensors')
    >>> from safetensors.numpy import load_file
    >>> load_file(result.dumps[0].path)["pre_projection.weight"].shape
    (64, 128)
    """
    if select not in SELECTIONS:
        raise UsageError(f"unknown selection '{select}' (choose from {', '.join(SELECTIONS)})")
    out = Path(out_dir) if out_dir is not None else default_output(path)
    if section_only(select=select, section=section, subgraph=subgraph, signature=signature, match=match, dtype=dtype,
                    names=names, models=models, check_parity=check_parity):
        return _copy_section(path, str(section), out, force=force, hash_input=hash_input, progress=progress)
    from mtpsurgeon.api.inspect import analysed
    from mtpsurgeon.extract.dump import total_input_bytes
    from mtpsurgeon.extract.run import run_extract
    from mtpsurgeon.extract.selection import select as select_tensors

    with analysed(path) as analysis:
        selections = select_tensors(analysis, orphans=select == "orphans", everything=select == "all",
                                    section=None if section is None else str(section), subgraph=subgraph,
                                    signature=signature, pattern=match)
        total = sum(total_input_bytes(s.model, s.tensors) for s in selections)
        advance = (lambda n: progress(n, total)) if progress is not None else None
        done = run_extract(analysis, selections, out, dtype=dtype, names=names, models=models, force=force,
                           progress=advance, allow_partial=allow_partial, check_parity=check_parity,
                           hash_input=hash_input)
        return ExtractResult.from_json({
            "file": str(path), "output": str(out), "models": done.models,
            "dumps": [{"path": str(d.path), "dtype": d.dtype, "names": d.names, "tensors": d.tensors,
                       "companions": d.companions, "parameters": d.parameters, "bytes_in": d.bytes_in,
                       "bytes_out": d.bytes_out, "notes": d.notes,
                       "skipped": [{"name": t.name, "reason": why} for t, why in d.skipped],
                       "config": str(d.config_path) if d.config_path else None,
                       "parity": d.parity.to_json() if d.parity is not None else None,
                       "unfaithful": d.unfaithful or None} for d in done.dumps],
            "removed_stale": [str(p) for p in done.cleaned], "notes": done.notes,
            "input_sha256": done.source_sha256,
        })


def section_only(*, select: str, section: str | int | None, subgraph: int | None, signature: str | None,
                 match: str | None, dtype: str, names: str, models: bool, check_parity: bool) -> bool:
    """True when the request is one section copied out and nothing else (the header-only path)."""
    return (section is not None and select == "mtp" and subgraph is None and signature is None and match is None
            and dtype == "raw" and names == "original" and models and not check_parity)


def _copy_section(path: str | os.PathLike, section: str, out: Path, *, force: bool, hash_input: bool,
                  progress: Callable[[int, int], None] | None) -> ExtractResult:
    from mtpsurgeon.extract.section_out import copy_section_out

    done = copy_section_out(path, section, out, force=force, hash_input=hash_input, progress=progress)
    return ExtractResult.from_json({
        "file": str(path), "output": str(out), "models": [done.model], "dumps": [],
        "removed_stale": [str(p) for p in done.cleaned], "notes": [], "input_sha256": done.input_sha256,
    })
