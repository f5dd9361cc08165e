"""inspect through its CLI: JSON schema keys, tensor filters, piped output has no progress noise."""
from __future__ import annotations

import json
import subprocess
import sys


def run(*args):
    p = subprocess.run([sys.executable, "-m", "mtpsurgeon", *map(str, args)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p


def test_json_schema_top_level(tiny_tflite):
    data = json.loads(run("inspect", tiny_tflite, "--json").stdout)
    assert {"schema_version", "file", "size", "format", "models", "orphans", "base", "mtp"} <= set(data)
    assert data["format"] == "tflite"
    assert {"verdict", "summary", "fix", "findings"} <= set(data["mtp"])
    assert [t["name"] for t in data["orphans"]["tensors"]] == ["mtp.head.weight"]


def test_container_json_has_sections(tiny_container):
    data = json.loads(run("inspect", tiny_container, "--json").stdout)
    assert data["format"] == "litertlm"
    assert [s["model_type"] for s in data["sections"]] == ["tf_lite_prefill_decode", "tf_lite_aux"]
    assert all(s["aligned"] for s in data["sections"])
    assert [m["section"] for m in data["models"]] == [0, 1]


def test_tensor_filters(tiny_tflite):
    rows = json.loads(run("inspect", tiny_tflite, "--tensors", "--json").stdout)["tensors"]
    assert len(rows) == 4
    orphans = json.loads(run("inspect", tiny_tflite, "--tensors", "--orphans", "--json").stdout)["tensors"]
    assert [r["name"] for r in orphans] == ["mtp.head.weight"] and orphans[0]["orphan"]
    matched = json.loads(run("inspect", tiny_tflite, "--tensors", "--match", "fc.*", "--json").stdout)["tensors"]
    assert [r["name"] for r in matched] == ["fc.weight"]
    assert matched[0]["quantization"]["scheme"] == "per-channel"


def test_overview_when_piped_is_plain_text(tiny_tflite):
    out = run("inspect", tiny_tflite).stdout
    assert "MTP: HIDDEN" in out and "named_orphans" in out and "\x1b[" not in out
