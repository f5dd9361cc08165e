"""Checkpoint cases for the fuzz campaign (``--family checkpoint``): hostile Hugging Face folders.

``build-drafter`` and ``restore --config`` read a ``config.json`` and ``model.safetensors`` written by
somebody else. Each case copies one checkpoint (the transformers-trained ``fixtures/assistant`` with the
torch family's base, or the jax family's drafter extracted with ``--names hf`` with the jax base) and
mutates it once, structure-aware or byte-wise:

* ``config_value``: one value anywhere in config.json replaced by a value of another kind (null, a
  string, a list, an object, 0, -1, 10**12, 1e308, NaN, inf, a bool);
* ``config_delete``: one key deleted;
* ``config_bytes`` / ``header_bytes``: a bit flip or a truncation of config.json / the safetensors header;
* ``header_value``: one tensor entry of the safetensors header given another dtype, shape or
  data_offsets, renamed or deleted.

The campaign's invariants apply unchanged (exit 0/1/2, no traceback or internal error, inputs unchanged,
nothing at the destination unless exit 0).
"""
from __future__ import annotations

import copy
import json
import random
import shutil
import struct
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "fixtures"
KINDS = ("config_value", "config_delete", "config_bytes", "header_value", "header_bytes")
ODD_VALUES = (None, "x", "", [], {}, [1, 2], {"a": 1}, 0, -1, 10**12, 1e308, float("nan"), float("inf"), True)
QUANTS = ("f32", "int8", "int4c", "int4b32")


def sources(work: Path) -> list[tuple[Path, Path, Path]]:
    """(checkpoint folder, base, pruned drafter for ``restore --config``) per family; the jax one made once."""
    jax = work / "jax-hf"
    if not jax.exists():
        subprocess.run([sys.executable, "-m", "mtpsurgeon", "extract", str(FIXTURES / "jax" / "mtp_drafter_f32.tflite"),
                        "-o", str(jax), "--names", "hf", "--dtype", "f32", "--no-models"],
                       check=True, capture_output=True, timeout=300)
    return [(FIXTURES / "assistant", FIXTURES / "gemma4-mini.litertlm", FIXTURES / "hidden" / "pruned-drafter.tflite"),
            (jax, FIXTURES / "jax" / "gemma4-mini.litertlm", FIXTURES / "jax" / "hidden" / "pruned-drafter.tflite")]


def _paths(obj: object, prefix: tuple = ()) -> list[tuple]:
    """Every key path in a JSON tree (object keys and list indices)."""
    out = []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        out.append(prefix + (k,))
        out += _paths(v, prefix + (k,))
    return out


def _at(obj: object, path: tuple) -> tuple[object, object]:
    for k in path[:-1]:
        obj = obj[k]  # type: ignore[index]
    return obj, path[-1]


def _flip_or_cut(data: bytes, rng: random.Random, end: int) -> tuple[bytes, str]:
    buf = bytearray(data)
    if rng.random() < 0.3:
        keep = rng.randrange(max(1, end))
        return bytes(buf[:keep]), f"truncate {keep}"
    off, bit = rng.randrange(max(1, end)), rng.randrange(8)
    buf[off] ^= 1 << bit
    return bytes(buf), f"bitflip {off}:{bit}"


def _mutate_config(text: str, kind: str, rng: random.Random) -> tuple[str, str]:
    cfg = json.loads(text)
    paths = _paths(cfg)
    path = rng.choice(paths)
    parent, key = _at(cfg, path)
    where = ".".join(map(str, path))
    if kind == "config_delete":
        parent.pop(key) if isinstance(parent, dict) else parent.pop(key)  # type: ignore[union-attr]
        return json.dumps(cfg), f"config_delete {where}"
    value = copy.deepcopy(rng.choice(ODD_VALUES))
    parent[key] = value  # type: ignore[index]
    return json.dumps(cfg), f"config_value {where}={value!r}"


def _mutate_header(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    n = struct.unpack_from("<Q", data)[0]
    header = json.loads(data[8:8 + n])
    name = rng.choice([k for k in header if k != "__metadata__"])
    entry = header[name]
    what = rng.choice(("dtype", "shape", "offsets", "rename", "delete"))
    if what == "dtype":
        entry["dtype"] = rng.choice(("I8", "F64", "BOOL", "XX", "F8_E4M3", 7))
    elif what == "shape":
        entry["shape"] = rng.choice(([], [0], [-1, 4], [10**9, 10**9], entry["shape"] + [1], "x"))
    elif what == "offsets":
        a, b = entry["data_offsets"]
        entry["data_offsets"] = rng.choice(([b, a], [a, b + 4], [a, 10**12], [0, 0], [-8, b], [a]))
    elif what == "rename":
        header[name + ".x"] = header.pop(name)
    else:
        header.pop(name)
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data[8 + n:], f"header_value {what} {name}"


def make_checkpoint_case(folder: Path, work: Path, rng: random.Random) -> tuple[list[str], list[Path], str, Path]:
    """(CLI args, input files, description, the mutated checkpoint folder) for one seeded case in ``folder``."""
    src, base, pruned = rng.choice(sources(work))
    ck = folder / "in" / "ck"
    shutil.copytree(src, ck)
    kind = rng.choice(KINDS)
    cfg_path, st_path = ck / "config.json", ck / "model.safetensors"
    if kind in ("config_value", "config_delete"):
        text, desc = _mutate_config(cfg_path.read_text(), kind, rng)
        cfg_path.write_text(text)
    elif kind == "config_bytes":
        data, desc = _flip_or_cut(cfg_path.read_bytes(), rng, cfg_path.stat().st_size)
        cfg_path.write_bytes(data)
        desc = f"config_bytes {desc}"
    elif kind == "header_value":
        data, desc = _mutate_header(st_path.read_bytes(), rng)
        st_path.write_bytes(data)
    else:
        data = st_path.read_bytes()
        data, desc = _flip_or_cut(data, rng, 8 + struct.unpack_from("<Q", data)[0])
        st_path.write_bytes(data)
        desc = f"header_bytes {desc}"
    base, pruned = (shutil.copy(p, folder / "in" / f"{p.parent.name}-{p.name}") for p in (base, pruned))
    dest = folder / "dest"
    if rng.random() < 0.2:
        args = ["restore", str(pruned), "--base", str(base), "-o", str(dest / "r.tflite"), "--config", str(cfg_path)]
    else:
        out = dest / ("d.tflite" if rng.random() < 0.6 else "d.litertlm")
        args = ["build-drafter", str(ck), "--base", str(base), "-o", str(out), "--quant", rng.choice(QUANTS)]
        if rng.random() < 0.3:
            args.append("--no-verify")
    return args, [cfg_path, st_path, Path(base), Path(pruned)], f"{src.name}: {desc}", ck
