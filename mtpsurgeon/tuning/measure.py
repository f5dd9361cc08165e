"""Measure one container with the LiteRT-LM engine: speed with MTP on and off.

    m = measure("g1.litertlm", ["w1 w2", "w3 w4"])
    m.tok_s_on, m.tok_s_off, m.success_rate, m.identical

This is the only engine-facing call of :mod:`mtpsurgeon.tuning`; it runs the
engine in a child process (:mod:`mtpsurgeon.tuning.engine_probe`) so a crash
cannot take the caller down. A shared bench engine can replace it by keeping
this signature.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from mtpsurgeon.errors import MtpSurgeonError


@dataclass
class Measurement:
    tok_s_on: float  #: decode tokens/s with speculative decoding on
    tok_s_off: float  #: ... and off
    success_rate: float | None  #: the drafter's acceptance rate (engine log), None if not logged
    identical: bool  #: greedy text with MTP on == off for every prompt (see :func:`same_greedy`)
    tokens: int = 0  #: decode tokens behind tok_s_on (fastest pass per prompt)
    texts_on: list[str] = field(default_factory=list)
    texts_off: list[str] = field(default_factory=list)

    @property
    def speedup(self) -> float:
        return self.tok_s_on / self.tok_s_off if self.tok_s_off else float("nan")

    def to_json(self) -> dict:
        d = asdict(self)
        d["speedup"] = self.speedup
        return d


def same_greedy(on: Sequence[str], off: Sequence[str]) -> bool:
    """Greedy output is unchanged by MTP: each MTP-off text starts the MTP-on one.

    With drafting on, the engine may emit accepted drafts past the token limit,
    so an MTP-on text can be longer; it must never differ.
    """
    return len(on) == len(off) and all(a.startswith(b) for a, b in zip(on, off))


def _context_length(path: Path) -> int:
    """The engine's context: the base model's KV cache length (128 if it cannot be read)."""
    from mtpsurgeon.analysis import analyze

    try:
        base = analyze(path).base
    except MtpSurgeonError:
        return 128
    return base.cache_len if base is not None and base.cache_len else 128


def _probe(path: Path, spec: str, prompts_file: Path, max_tokens: int, repeats: int, context: int,
           timeout: float) -> dict:
    cmd = [sys.executable, "-m", "mtpsurgeon.tuning.engine_probe", str(path), "--spec", spec,
           "--prompts-file", str(prompts_file), "--max-tokens", str(max_tokens), "--repeats", str(repeats),
           "--max-num-tokens", str(context)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise MtpSurgeonError(f"{path}: the LiteRT-LM engine did not finish within {timeout:.0f} s") from None
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or not lines:
        raise MtpSurgeonError(f"{path}: the LiteRT-LM engine failed (exit {r.returncode}): {r.stderr.strip()[-300:]}")
    out = json.loads(lines[-1])
    if out.get("error"):
        raise MtpSurgeonError(f"{path}: the LiteRT-LM engine refused it (MTP {spec}): {out['error']}")
    return out


def measure(path: str | os.PathLike, prompts: Sequence[str], *, max_tokens: int = 32, repeats: int = 3,
            timeout: float = 600) -> Measurement:
    """Greedy decoding of ``prompts`` with MTP on and off; tokens/s by the engine's own benchmark.

    Each prompt is decoded ``repeats`` times per mode and its fastest pass counts.
    """
    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="mtpsurgeon-measure-") as d:
        pf = Path(d) / "prompts.txt"
        pf.write_text("\n".join(p.replace("\n", " ") for p in prompts) + "\n", encoding="utf-8")
        context = _context_length(path)
        on = _probe(path, "on", pf, max_tokens, repeats, context, timeout)
        off = _probe(path, "off", pf, max_tokens, repeats, context, timeout)
    rates = on["success_rates"]
    return Measurement(
        tok_s_on=on["tokens"] / on["seconds"] if on["seconds"] else 0.0,
        tok_s_off=off["tokens"] / off["seconds"] if off["seconds"] else 0.0,
        success_rate=sum(rates) / len(rates) if rates else None,
        identical=same_greedy(on["texts"], off["texts"]),
        tokens=on["tokens"], texts_on=on["texts"], texts_off=off["texts"],
    )
