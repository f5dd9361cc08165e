"""Shared pytest fixtures: small models built by the tests themselves."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import modelkit  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"


@pytest.fixture()
def tiny_tflite(tmp_path: Path) -> Path:
    """FC model with an INT8 per-channel weight and one orphan F32 tensor."""
    return modelkit.tiny_fc_model(tmp_path / "tiny.tflite")


@pytest.fixture()
def tiny_container(tmp_path: Path, tiny_tflite: Path) -> Path:
    """A .litertlm built by the official litert-lm-builder around tiny.tflite."""
    from litert_lm_builder import litertlm_builder as B

    b = B.LitertLmFileBuilder()
    b.add_system_metadata(B.Metadata(key="Authors", value="mtpsurgeon tests", dtype=B.DType.STRING))
    b.add_tflite_model(str(tiny_tflite), B.TfLiteModelType.PREFILL_DECODE)
    b.add_tflite_model(str(tiny_tflite), B.TfLiteModelType.AUX)
    out = tmp_path / "tiny.litertlm"
    with open(out, "wb") as f:
        b.build(f)
    return out
