"""One measurement session: the engine with MTP off and on, ``repeats`` times each, alternating.

    runs = alternate_runs(path, prompts, max_tokens=32, repeats=3, max_num_tokens=128, draft_steps=3,
                          check=raise_on_failure)

Every (mode, repeat) is one engine in its own child process
(:func:`~mtpsurgeon.engine.runner.run_engine`) on a private symlink of the
model; the order of the modes alternates between repeats to cancel drift.
``check(output, mode)`` raises for a run the caller cannot use; ``threads`` is
the CPU backend's thread count (None: the engine's default).
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

from mtpsurgeon.engine.runner import WorkerOutput, private_model_dir, run_engine
from mtpsurgeon.engine.stats import EngineRun, PromptRun, engine_run


def alternate_runs(path: str | os.PathLike, prompts: Sequence[str], *, max_tokens: int, repeats: int,
                   max_num_tokens: int | None, draft_steps: int | None, check: Callable[[WorkerOutput, str], None],
                   backend: str = "cpu", chat_template: bool = False, timeout: float = 1800,
                   progress: Callable[[str], None] | None = None, threads: int | None = None) -> list[EngineRun]:
    """The runs of one session, in the order they ran; ``progress(message)`` is called before each."""
    runs: list[EngineRun] = []
    with private_model_dir(path) as model:
        for repeat in range(repeats):
            for speculative in ((False, True) if repeat % 2 == 0 else (True, False)):
                mode = "on" if speculative else "off"
                if progress is not None:
                    progress(f"repeat {repeat + 1}/{repeats}: MTP {mode}")
                out = run_engine(model, speculative=speculative, prompts=list(prompts), max_tokens=max_tokens,
                                 max_num_tokens=max_num_tokens, backend=backend, chat_template=chat_template,
                                 timeout=timeout, threads=threads)
                check(out, mode)
                rate = out.success_rates[-1] if speculative and out.success_rates else None
                rows = [PromptRun.from_json(p) for p in out.result.get("prompts", [])]
                runs.append(engine_run(speculative, repeat + 1, rows, rate, draft_steps))
    return runs
