"""The official LiteRT-LM engine, run in child processes: does MTP pay off here?

:mod:`.worker` is the child (stdlib + ``litert_lm`` only), :mod:`.runner`
starts it and reads its log, :mod:`.session` runs MTP off and on in turn, :mod:`.stats` turns runs into figures and
:mod:`.verdict` into one sentence. The engine is the optional dependency
``mtpsurgeon[engine]`` (PyPI ``litert-lm-api``).
"""
