"""Tuning: pick the draft length that makes speculative decoding pay off.

``measure`` (measure.py) measures one container with the LiteRT-LM engine
through :mod:`mtpsurgeon.engine` (the runner and figures ``mtpsurgeon bench``
uses); ``search`` (search.py) builds variants with
:func:`mtpsurgeon.surgery.respecialize_verify.tune_draft_steps` and measures each.
"""
