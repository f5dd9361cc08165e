"""Tuning: pick the draft length that makes speculative decoding pay off.

``measure`` (measure.py) is the one engine-facing call; ``search`` (search.py)
builds variants with :func:`mtpsurgeon.surgery.respecialize_verify.tune_draft_steps`
and measures each.
"""
