"""``mtpsurgeon.tune``: change how many tokens MTP drafts per cycle, and find the length that pays off.

The runtime drafts G = len(``verify``'s ``input_pos``) − 1 tokens; :func:`tune`
re-specializes ``verify`` for G + 1 tokens (symbolic shape inference on the
IR, gated in the interpreter against repeated ``decode``), :func:`tune_search`
builds several G and measures each with the LiteRT-LM engine.
"""
from __future__ import annotations

from mtpsurgeon.inputs import accepts_weights_dir
from mtpsurgeon.surgery.respecialize_verify import TuneResult, tune_draft_steps
from mtpsurgeon.tuning.search import DEFAULT_PROMPTS, SearchResult, parse_steps, search_draft_steps

tune = accepts_weights_dir(tune_draft_steps)
tune_search = accepts_weights_dir(search_draft_steps)

__all__ = ["DEFAULT_PROMPTS", "SearchResult", "TuneResult", "parse_steps", "tune", "tune_search"]
