"""The official LiteRT-LM engine, run in child processes: does MTP pay off here?

:mod:`.worker` is the child (stdlib + ``litert_lm`` only), :mod:`.runner`
starts it and reads its log, :mod:`.session` runs MTP off and on in turn, :mod:`.stats` turns runs into figures and
:mod:`.verdict` into one sentence. :mod:`.call_timing` times the container's own
model calls in the LiteRT interpreter (children: :mod:`.timing_worker`) and
:mod:`.cost` turns them into the cost model (break-even success rate, ceiling,
predicted speed-up). The engine is the optional dependency
``mtpsurgeon[engine]`` (PyPI ``litert-lm-api``).
"""
