"""Shared helpers of the fixture oracle tests (test_fixtures*.py): they read the
committed fixtures only through independent oracles - the TFLite schema
(ai_edge_litert.schema_py_generated), litert-lm-builder's header reader, and
the LiteRT-LM engine run in a subprocess by fixture_engine_probe.py. Nothing
here imports mtpsurgeon or the fixture generator.

A fixture *family* is a folder with an expected.json answer key: `fixtures/`
(the torch family, litert-torch conventions) and `fixtures/jax/` (the jax
family, JAX/TF export conventions, INT8 KV caches).
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from litert_lm_builder import litertlm_peek

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
PROBE = ROOT / "tests" / "fixture_engine_probe.py"
FAMILY_DIRS = {"torch": FIXTURES, "jax": FIXTURES / "jax"}


class Family:
    """One fixture family: its folder, answer key and prompts."""

    def __init__(self, name: str):
        self.name = name
        self.dir = FAMILY_DIRS[name]
        self.expected = json.loads((self.dir / "expected.json").read_text())
        self.files = self.expected["files"]
        self.dims = self.expected["model_dims"]
        self.tflites = sorted(k for k, v in self.files.items() if v["format"] == "tflite")
        self.containers = sorted(k for k, v in self.files.items() if v["format"] == "litertlm")
        self.prompts = [
            l.strip()
            for l in (self.dir / "prompts.txt").read_text().splitlines()
            if l.strip() and not l.startswith("#")
        ]

    @property
    def no_mtp(self) -> dict:
        """no-mtp/index.json: the base exported without --assistant_model (fixtures/build/no_mtp.py)."""
        return json.loads((self.dir / "no-mtp" / "index.json").read_text())

    def path(self, rel: str) -> Path:
        return self.dir / rel

    def on_disk(self) -> set:
        """Every .tflite / .litertlm of this family (the jax folder is not part of torch's)."""
        out = set()
        for p in self.dir.rglob("*"):
            rel = p.relative_to(self.dir)
            # no-mtp/ has its own answer key (no-mtp/index.json, checked by test_fixtures.py)
            if p.suffix not in (".tflite", ".litertlm") or rel.parts[0] in (".work", "build", "no-mtp"):
                continue
            if self.name == "torch" and rel.parts[0] in FAMILY_DIRS:  # another family's folder
                continue
            out.add(str(rel))
        return out

    def blobs(self):
        """(label, bytes, expected description) for every standalone .tflite and TFLite section."""
        out = [(f"{self.name}:{rel}", self.path(rel).read_bytes(), self.files[rel]) for rel in self.tflites]
        for rel in self.containers:
            for s in sections(self.path(rel)):
                if str(s["index"]) in self.files[rel]["models"]:
                    out.append((f"{self.name}:{rel}#{s['index']}", s["data"], self.files[rel]["models"][str(s["index"])]))
        return out


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def read_model(data: bytes):
    return schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))


def name(x) -> str:
    return x.decode() if isinstance(x, bytes) else (x or "")


def has_data(m, idx):
    return 0 < idx < len(m.buffers) and (
        (m.buffers[idx].data is not None and len(m.buffers[idx].data) > 0) or (m.buffers[idx].offset or 0) > 1
    )


def raw(m, t):
    return np.asarray(m.buffers[t.buffer].data, dtype=np.uint8).tobytes()


def builder_sections(path) -> list[tuple[str | None, int, bytes]]:
    """(model_type, begin offset, bytes) per section, located by litert-lm-builder's own header reader."""
    meta = litertlm_peek.read_litertlm_header(str(path), io.StringIO())
    data = Path(path).read_bytes()
    objects = [meta.SectionMetadata().Objects(i) for i in range(meta.SectionMetadata().ObjectsLength())]
    return [(litertlm_peek.get_model_type(o), o.BeginOffset(), data[o.BeginOffset():o.EndOffset()]) for o in objects]


def sections(path):
    meta = litertlm_peek.read_litertlm_header(str(path), io.StringIO())
    sm = meta.SectionMetadata()
    data = Path(path).read_bytes()
    out = []
    for i in range(sm.ObjectsLength()):
        o = sm.Objects(i)
        items = {}
        for j in range(o.ItemsLength()):
            d = litertlm_peek.kvp_to_dict(o.Items(j))
            items[d["key"]] = d["value"]
        out.append(
            {
                "index": i,
                "data_type": o.DataType(),
                "items": items,
                "data": data[o.BeginOffset() : o.EndOffset()],
                "begin": o.BeginOffset(),
            }
        )
    return out


def feed(details, rng):
    """Plausible inputs for a signature runner (positions 0, bool masks all true)."""
    out = {}
    for k, d in details.items():
        shape, dt = d["shape"], d["dtype"]
        if dt == np.bool_:
            out[k] = np.ones(shape, dtype=bool)
        elif np.issubdtype(dt, np.integer):
            if "pos" in k or "param" in k:
                out[k] = np.zeros(shape, dtype=dt)
            else:
                out[k] = rng.integers(-8 if dt == np.int8 else 0, 8, size=shape).astype(dt)
        else:
            out[k] = (rng.standard_normal(shape) * 0.1).astype(dt)
    return out


def orphans(data: bytes):
    """Independent re-derivation of the orphan lists (see fixtures/README.md)."""
    m = read_model(data)
    used_buf = {int(md.buffer) for md in (m.metadata or [])}
    used_buf |= {int(b) for b in (m.metadataBuffer if m.metadataBuffer is not None else [])}
    reach_edges, ot = {}, []
    for si, sg in enumerate(m.subgraphs):
        read = set()
        reach_edges[si] = []
        for op in sg.operators or []:
            read.update(int(i) for i in op.inputs if i >= 0)
            for opts in (op.builtinOptions, op.builtinOptions2):
                for k, v in vars(opts).items() if opts is not None else []:
                    if "ubgraph" in k and isinstance(v, (int, np.integer)):
                        reach_edges[si].append(int(v))
        for t in sg.tensors:
            if t.quantization is not None and type(t.quantization.details).__name__ == "BlockwiseQuantizationT":
                read.add(int(t.quantization.details.scales))
        exposed = set(int(i) for i in (sg.outputs if sg.outputs is not None else []))
        for s in m.signatureDefs or []:
            if s.subgraphIndex == si:
                exposed |= {int(o.tensorIndex) for o in s.outputs}
        for ti, t in enumerate(sg.tensors):
            used_buf.add(int(t.buffer))
            if has_data(m, t.buffer) and ti not in read and ti not in exposed:
                ot.append((si, ti, name(t.name)))
    # entry points: signed subgraphs, or subgraph 0 (the interpreter's default) when there are no signatures
    reach, stack = set(), [int(s.subgraphIndex) for s in (m.signatureDefs or [])] or [0]
    while stack:
        s = stack.pop()
        if s not in reach:
            reach.add(s)
            stack += reach_edges[s]
    ob = [i for i in range(1, len(m.buffers)) if has_data(m, i) and i not in used_buf]
    return ot, ob, [i for i in range(len(m.subgraphs)) if i not in reach]


@lru_cache(maxsize=None)
def engine(path: str, spec: str, prompts: tuple, max_tokens: int = 24) -> dict:
    """The probe's JSON for one container, speculative decoding `spec` (on/off)."""
    args = [sys.executable, str(PROBE), path, "--spec", spec, "--max-tokens", str(max_tokens)]
    for p in prompts:
        args += ["--prompt", p]
    r = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=ROOT)
    res = {"returncode": r.returncode}
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    if lines:
        res.update(json.loads(lines[-1]))
    return res


def family_engine(fam: Family, rel: str, spec: str, max_tokens: int = 24) -> dict:
    return engine(str(fam.path(rel)), spec, tuple(fam.prompts), max_tokens)


def base_run(fam: Family, prompt_ids):
    """Runs the family's ground-truth embedder + decode over prompt_ids with the
    interpreter; returns (the drafter inputs for the next step as the runtime
    builds them, the base's greedy next token). KV caches are fed back in their
    own dtype (float32 for torch, INT8 for jax)."""
    from ai_edge_litert.interpreter import Interpreter

    secs = {s["items"].get("model_type"): s["data"] for s in sections(fam.path("gemma4-mini.litertlm"))}
    emb = Interpreter(model_content=secs["tf_lite_embedder"]).get_signature_runner("decode_embedder")
    dec = Interpreter(model_content=secs["tf_lite_prefill_decode"]).get_signature_runner("decode")
    C = fam.dims["C"]
    kv = {k: np.zeros(v["shape"], v["dtype"]) for k, v in dec.get_input_details().items() if k.startswith("kv")}
    for p, tok in enumerate(prompt_ids):
        e = emb(token_ids=np.array([[tok]], np.int32))["embeddings"]
        mask = np.where(np.arange(C) <= p, 0, -1e9).astype(np.float32).reshape(1, 1, 1, C)
        r = dec(embeddings=e, input_pos=np.array([p], np.int32), mask=mask, **kv)
        kv = {k: r[k] for k in kv}
    nxt = int(r["logits"][0, -1].argmax())
    e_next = emb(token_ids=np.array([[nxt]], np.int32))["embeddings"]
    t = len(prompt_ids) - 1
    ins = {
        "activations": np.concatenate([e_next, r["activations"]], axis=-1).astype(np.float32),
        "input_pos": np.array([t], np.int32),
        "mask": (np.arange(C) <= t).reshape(1, 1, 1, C),
    }
    if "param_tensor_shape" in fam.dims:
        ins["param_tensor"] = np.zeros(fam.dims["param_tensor_shape"], np.int32)
    for l in fam.dims["kv_layers"]:
        ins[l["k"]["name"]] = kv[l["k"]["name"]]
        ins[l["v"]["name"]] = kv[l["v"]["name"]]
    return ins, nxt
