"""The examples in the public API's docstrings run and give the answers they show."""
from __future__ import annotations

import doctest
import importlib

import pytest

from conftest import REPO

MODULES = ["mtpsurgeon.api.inspect", "mtpsurgeon.api.extract", "mtpsurgeon.api.restore", "mtpsurgeon.api.bench",
           "mtpsurgeon.engine.verdict", "mtpsurgeon.engine.stats", "mtpsurgeon.engine.cost", "mtpsurgeon.jsonrecord"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, monkeypatch):
    monkeypatch.chdir(REPO)  # the examples name files as fixtures/...
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
