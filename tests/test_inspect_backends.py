"""inspect: sections' backend_constraint and roles, and the backends the LiteRT-LM engine drafts on (issue 20).

Containers are written by the official litert-lm-builder (unpack a fixture
family's package, add or constrain sections, build), never by mtpsurgeon.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from litert_lm_builder.litertlm_builder import LitertLmFileBuilder, TfLiteModelType

from mtpsurgeon.analysis.section_roles import SECTION_ROLES

FX = Path(__file__).resolve().parent.parent / "fixtures"
FAMILIES = {"torch": FX, "jax": FX / "jax"}


def _package(tmp: Path, family: str, *, add=(), constrain=()) -> Path:
    """The family's package rebuilt by litert-lm-builder with sections added (type, file key, backends) and
    backend constraints set (type, backends)."""
    work = tmp / "unpacked"
    b = LitertLmFileBuilder.unpack(str(FAMILIES[family] / "gemma4-mini.litertlm"), str(work))
    files = {"embedder": next(work.glob("*tf_lite_embedder.tflite")), "base": FAMILIES[family] / "base_prefill_decode.tflite"}
    for model_type, key, backend in add:
        b.add_tflite_model(str(files[key]), model_type, backend_constraint=backend)
    for model_type, backend in constrain:
        b.set_backend_constraint(model_type, backend)
    out = tmp / "package.litertlm"
    with open(out, "wb") as f:
        b.build(f)
    return out


def _inspect(path: Path, *extra: str) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "mtpsurgeon", "inspect", str(path), *extra], capture_output=True,
                       text=True, timeout=300, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    return r


def test_every_model_type_of_the_installed_builder_has_a_role():
    assert {t.value for t in TfLiteModelType} <= set(SECTION_ROLES), set(t.value for t in TfLiteModelType) - set(SECTION_ROLES)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_npu_helper_and_artisan_decoder_are_described(tmp_path, family):
    pkg = _package(tmp_path, family, add=[(TfLiteModelType.MTP_AUX, "embedder", "cpu"),
                                          (TfLiteModelType.ARTISAN_TEXT_DECODER, "base", "gpu_artisan")])
    doc = json.loads(_inspect(pkg, "--json").stdout)
    by_type = {s["model_type"]: s for s in doc["sections"]}
    aux, artisan = by_type["tf_lite_mtp_aux"], by_type["tf_lite_artisan_text_decoder"]
    assert aux["backend_constraint"] == ["cpu"] and artisan["backend_constraint"] == ["gpu_artisan"]
    assert "'rope'" in aux["role"] and "'mask'" in aux["role"] and "per-layer embeddings" in aux["role"]
    assert "gpu_artisan" in artisan["role"]
    assert by_type["tf_lite_mtp_drafter"]["backend_constraint"] is None
    assert all(s["role"] for s in doc["sections"] if s["model_type"])
    backends = doc["mtp"]["backends"]
    assert backends["cpu"]["uses_drafter"] and not backends["gpu"]["uses_drafter"]
    assert "gallery#791" in backends["gpu"]["why"]
    assert not backends["npu"]["uses_drafter"] and "per-layer embeddings" in backends["npu"]["why"]
    text = " ".join(_inspect(pkg).stdout.split())
    assert f"section {aux['index']} tf_lite_mtp_aux: MTP helper of NPU builds" in text
    assert f"section {artisan['index']} tf_lite_artisan_text_decoder: text decoder of GPU/web builds" in text
    assert "CPU engine: uses the drafter" in text and "GPU engine: no drafting" in text
    assert "NPU engine: no drafting" in text and "gpu_artisan" in text


def test_npu_path_with_per_layer_embeddings(tmp_path):
    pkg = _package(tmp_path, "torch", add=[(TfLiteModelType.MTP_AUX, "embedder", "cpu"),
                                           (TfLiteModelType.PER_LAYER_EMBEDDER, "embedder", None)])
    backends = json.loads(_inspect(pkg, "--json").stdout)["mtp"]["backends"]
    assert backends["npu"]["uses_drafter"] and "tf_lite_mtp_aux" in backends["npu"]["why"]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_drafter_constrained_off_cpu_is_used_nowhere(tmp_path, family):
    pkg = _package(tmp_path, family, constrain=[(TfLiteModelType.MTP_DRAFTER, "gpu, npu")])
    doc = json.loads(_inspect(pkg, "--json").stdout)
    drafter = next(s for s in doc["sections"] if s["model_type"] == "tf_lite_mtp_drafter")
    assert drafter["backend_constraint"] == ["gpu", "npu"]
    backends = doc["mtp"]["backends"]
    assert not any(b["uses_drafter"] for b in backends.values()), backends
    assert "excludes cpu" in backends["cpu"]["why"]
    assert "gpu, npu" in " ".join(_inspect(pkg).stdout.split())


def test_no_drafter_no_backend(tmp_path):
    doc = json.loads(_inspect(FX / "hidden" / "no-drafter.litertlm", "--json").stdout)
    assert all(not b["uses_drafter"] and "no tf_lite_mtp_drafter section" in b["why"]
               for b in doc["mtp"]["backends"].values())
    tflite = json.loads(_inspect(FX / "mtp_drafter.tflite", "--json").stdout)
    assert "backends" not in tflite["mtp"]  # a bare .tflite has no container to load it
