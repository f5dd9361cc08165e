"""Run the official LiteRT-LM engine on a model in a child process, and read what it said.

Each call of :func:`run_engine` starts :mod:`~mtpsurgeon.engine.worker` with
the current interpreter, so an engine that aborts on a malformed model ends
only that child. The model is given to the engine through a private temporary
folder (:func:`private_model_dir`, a symlink or a copy) because the engine
writes XNNPACK cache files beside the model it loads: nothing is ever written
next to the user's file.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from mtpsurgeon.engine import worker

ENGINE_PACKAGE = "litert_lm"  #: import name of PyPI ``litert-lm-api``
INSTALL_HINT = "pip install 'mtpsurgeon[engine]'"
SUCCESS_RATE = re.compile(r"MTP Drafter - Success rate: ([0-9.eE+-]+)")
_FATAL = re.compile(r"^[FE]\d{4} [^\]]*\] (.*)")  #: absl FATAL / ERROR lines
_FRAME = re.compile(r"^\s*@\s+0x[0-9a-f]+\s+(litert::lm::\S+)")  #: a stack frame in the runtime


def engine_available() -> bool:
    """True when the LiteRT-LM engine (``litert-lm-api``) can be imported."""
    try:
        return importlib.util.find_spec(ENGINE_PACKAGE) is not None
    except (ImportError, ValueError):  # ValueError: blocked in sys.modules
        return False


@dataclass
class WorkerOutput:
    """What one engine child reported, plus what its log said."""

    speculative: bool
    result: dict  #: the worker's RESULT (see :mod:`~mtpsurgeon.engine.worker`)
    success_rates: list[float] = field(default_factory=list)  #: every success-rate line of the log
    returncode: int = 0
    log_lines: list[str] = field(default_factory=list, repr=False)  #: the child's stderr (the engine log)

    def _abort_reason(self) -> str:
        fatal = [m.group(1) for m in map(_FATAL.match, self.log_lines) if m]
        frame = next((m.group(1) for m in map(_FRAME.match, self.log_lines) if m), None)
        reason = f": {fatal[-1][:200]}" if fatal else ""
        return reason + (f" (in {frame})" if frame else "")

    @property
    def error(self) -> str | None:
        """One line describing a failure, or None."""
        if self.returncode < 0:
            name = signal.Signals(-self.returncode).name if -self.returncode in signal.valid_signals() else str(-self.returncode)
            return f"the engine aborted with {name}{self._abort_reason()}"
        if self.returncode != 0:
            return f"the engine process exited with status {self.returncode}"
        error = self.result.get("error")
        return None if error is None else " / ".join(line for line in str(error).splitlines() if line.strip())


@contextlib.contextmanager
def private_model_dir(model: str | os.PathLike) -> Iterator[Path]:
    """Yield the model's path inside a fresh temporary folder (a symlink, else a copy)."""
    model = Path(model).resolve()
    with tempfile.TemporaryDirectory(prefix="mtpsurgeon-bench-") as tmp:
        link = Path(tmp) / model.name
        try:
            link.symlink_to(model)
        except OSError:
            shutil.copyfile(model, link)
        yield link


def run_engine(model: Path, *, speculative: bool, prompts: list[str], max_tokens: int, max_num_tokens: int | None,
               backend: str = "cpu", chat_template: bool = False, timeout: float = 1800,
               threads: int | None = None) -> WorkerOutput:
    """Decode ``prompts`` greedily with speculative decoding on or off, in a child process.

    ``threads``: the CPU backend's thread count (None: the engine's default).
    """
    request = {"model": str(model), "speculative": speculative, "prompts": prompts, "max_tokens": max_tokens,
               "max_num_tokens": max_num_tokens, "backend": backend, "chat_template": chat_template,
               "threads": threads}
    with tempfile.TemporaryDirectory(prefix="mtpsurgeon-run-") as tmp:
        req, res = Path(tmp) / "request.json", Path(tmp) / "result.json"
        req.write_text(json.dumps(request), encoding="utf-8")
        try:
            proc = subprocess.run([sys.executable, worker.__file__, str(req), str(res)], capture_output=True,
                                  text=True, errors="replace", timeout=timeout, cwd=tmp)
        except subprocess.TimeoutExpired:
            return WorkerOutput(speculative, {"error": f"the engine did not finish within {timeout:.0f} s"}, returncode=0)
        result = json.loads(res.read_text(encoding="utf-8")) if res.exists() else {}
    rates = [float(x) for x in SUCCESS_RATE.findall(proc.stderr)]
    return WorkerOutput(speculative, result, rates, proc.returncode, proc.stderr.splitlines())
