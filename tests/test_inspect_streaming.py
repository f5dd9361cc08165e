"""Long listings: --json streamed row by row equals the library's report; text stops at a limit unless --all."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modelkit import OP, T, Kit, f32, fc_options
from mtpsurgeon.analysis import analyze

ORPHANS = 2100  # past the 2,000 rows that --all still renders as a table


@pytest.fixture(scope="module")
def many_orphans(tmp_path_factory) -> Path:
    """x -> FC -> y, plus ORPHANS unused [1, 3] constants (built with the schema's object API)."""
    k = Kit()
    sg = k.subgraph()
    x = k.tensor(sg, "x", [1, 4])
    w = k.tensor(sg, "fc.weight", [3, 4], T.FLOAT32, f32(np.ones((3, 4))))
    y = k.tensor(sg, "y", [1, 3])
    k.op(sg, OP.FULLY_CONNECTED, [x, w, -1], [y], *fc_options())
    sg.inputs, sg.outputs = [x], [y]
    for i in range(ORPHANS):
        k.tensor(sg, f"unused.{i}.bias", [1, 3], T.FLOAT32, f32([i, i, i]))
    k.signature("serving_default", 0, {"x": x}, {"y": y})
    return k.save(tmp_path_factory.mktemp("orphans") / "many.tflite")


def run(*args) -> str:
    p = subprocess.run([sys.executable, "-m", "mtpsurgeon", *map(str, args)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_streamed_json_equals_the_library_report(many_orphans):
    streamed = json.loads(run("inspect", many_orphans, "--json"))
    assert streamed == json.loads(json.dumps(analyze(many_orphans).to_json()))
    names = [t["name"] for t in streamed["orphans"]["tensors"]]
    assert names == [f"unused.{i}.bias" for i in range(ORPHANS)]
    assert streamed["models"][0]["orphans"]["tensors"][7]["bytes"] == 12


def test_tensor_listing_json_streams_every_row(many_orphans):
    rows = json.loads(run("inspect", many_orphans, "--tensors", "--orphans", "--json"))["tensors"]
    assert len(rows) == ORPHANS and all(r["orphan"] for r in rows)


def test_text_listing_stops_at_the_limit_unless_all(many_orphans):
    short = run("inspect", many_orphans, "--tensors", "--orphans")
    assert "unused.0.bias" in short and "unused.199.bias" in short and "unused.200.bias" not in short
    assert f"{ORPHANS - 200} more" in short
    full = run("inspect", many_orphans, "--tensors", "--orphans", "--all")
    lines = [line for line in full.splitlines() if ".bias" in line]
    assert len(lines) == ORPHANS and lines[-1].split()[3] == f"unused.{ORPHANS - 1}.bias"
