"""Hostile files and careless commands: nothing lost, nothing escapes (issue 12).

Each test reproduces one hole found by hand: data loss through --dump, path
traversal through a section's model_type, markup/ANSI injection through names,
a FIFO as input, partial output sets, and commands that did something other
than asked.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as fb
from safetensors.numpy import load_file

import modelkit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
UNTAGGED = FIXTURES / "hidden" / "untagged-drafter.litertlm"
MISTAGGED = FIXTURES / "hidden" / "mistagged-drafter.litertlm"
UNSIGNED = FIXTURES / "hidden" / "unsigned-drafter.tflite"
DRAFTER = FIXTURES / "mtp_drafter.tflite"
ESC = "\x1b"


def run(*args, timeout=120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mtpsurgeon", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kw)


def one_line_error(p: subprocess.CompletedProcess, code: int) -> str:
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr and "internal error" not in p.stderr, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    return lines[0]


def snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def visible_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def copy(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


def pack(model: fb.ModelT, path: Path) -> Path:
    b = flatbuffers.Builder(1 << 20)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    path.write_bytes(bytes(b.Output()))
    return path


# -- data loss -------------------------------------------------------------------------------

def test_dump_onto_the_input_is_refused_even_with_force(tmp_path):
    model = copy(UNTAGGED, tmp_path / "in.litertlm")
    before = snapshot(model)
    out = tmp_path / "out.litertlm"
    line = one_line_error(run("restore", model, "-o", out, "--dump", model, "--force"), 1)
    assert "input" in line and str(model) in line
    assert snapshot(model) == before and not out.exists()
    assert visible_files(tmp_path) == ["in.litertlm"] and not list(tmp_path.glob(".*"))


def test_outputs_linking_to_the_input_are_refused(tmp_path):
    model = copy(UNTAGGED, tmp_path / "in.litertlm")
    before = snapshot(model)
    hard = tmp_path / "hard.litertlm"
    os.link(model, hard)
    soft = tmp_path / "soft.litertlm"
    soft.symlink_to(model)
    assert "input" in one_line_error(run("restore", model, "-o", hard, "--force", "--no-dump"), 1)
    assert "symbolic link" in one_line_error(run("restore", model, "-o", soft, "--force", "--no-dump"), 1)
    # A symlink to some other file is never followed either.
    other = tmp_path / "other.bin"
    other.write_bytes(b"keep")
    (tmp_path / "x.safetensors").symlink_to(other)
    p = run("restore", model, "-o", tmp_path / "x.litertlm", "--force")
    assert "symbolic link" in one_line_error(p, 1)
    assert other.read_bytes() == b"keep" and not (tmp_path / "x.litertlm").exists()
    assert snapshot(model) == before


def test_extract_never_overwrites_its_input(tmp_path):
    # An input that happens to carry the name extract would give its dump.
    model = copy(DRAFTER, tmp_path / "m.safetensors")
    before = snapshot(model)
    line = one_line_error(run("extract", model, "-o", tmp_path, "--force"), 1)
    assert "input" in line and snapshot(model) == before


def test_model_and_dump_cannot_be_one_file(tmp_path):
    out = tmp_path / "o.litertlm"
    assert "same" in one_line_error(run("restore", UNTAGGED, "-o", out, "--dump", out), 1)
    assert not out.exists()


# -- names that become paths -----------------------------------------------------------------

def _container_with_model_type(tmp_path: Path, model_type: str) -> Path:
    from mtpsurgeon.formats.litertlm.writer import Retag, rewrite_container
    from mtpsurgeon.formats.open import open_file

    out = tmp_path / "evil.litertlm"
    rewrite_container(open_file(MISTAGGED), [Retag(5, {"model_type": model_type})], out)
    return out


def test_model_type_cannot_escape_the_output_folder(tmp_path):
    evil = _container_with_model_type(tmp_path, "a/../../../escaped")
    out = tmp_path / "deep" / "er" / "out"
    p = run("extract", evil, "-o", out)
    assert p.returncode == 0, p.stderr
    assert not list(tmp_path.rglob("*escaped*.tflite")) or all(out in f.parents for f in tmp_path.rglob("*escaped*"))
    written = visible_files(out)
    assert any(n.endswith(".tflite") for n in written)
    assert all("/" not in n and ".." not in n for n in written), written
    assert sorted(p.name for p in tmp_path.rglob("*.tflite")) == sorted(n for n in written if n.endswith(".tflite"))


def test_safe_component():
    from mtpsurgeon.paths import safe_component

    for evil in ["../x", "a/../../b", "..", ".", "", "/etc/passwd", "a\\..\\b", "\x1b[31mred\x1b[0m", "x" * 5000,
                 "\u202eexe.txt", "con\x00nul"]:
        s = safe_component(evil)
        assert s and s not in (".", "..") and "/" not in s and "\\" not in s and not s.startswith(".")
        assert s.isprintable() and len(s) <= 120, s
    assert safe_component("tf_lite_mtp_drafter") == "tf_lite_mtp_drafter"
    assert safe_component("x" * 500) != safe_component("x" * 501)


# -- markup and terminal escapes ---------------------------------------------------------------

def _drafter_with_names(tmp_path: Path, name: str) -> Path:
    m = fb.ModelT.InitFromPackedBuf(DRAFTER.read_bytes(), 0)
    for i, t in enumerate(m.subgraphs[0].tensors):
        if t.buffer and m.buffers[t.buffer].data is not None:
            t.name = f"{name}{i}"
    return pack(m, tmp_path / "names.tflite")


@pytest.mark.parametrize("name", ["[/]", "[bold red]x[/bold red][", f"{ESC}[2J{ESC}]0;pwned\x07", "a\rb:smile:\\"])
def test_file_strings_are_shown_literally(tmp_path, name):
    evil = _drafter_with_names(tmp_path, name)
    for args in (["inspect", evil], ["inspect", evil, "--tensors"], ["extract", evil, "-o", tmp_path / "x"]):
        p = run(*args)
        assert p.returncode == 0, (args, p.stderr)
        assert ESC not in p.stdout + p.stderr and "\r" not in p.stdout and "\x07" not in p.stdout
        assert "MarkupError" not in p.stderr
    p = run("inspect", evil, "--tensors", env={**os.environ, "COLUMNS": "400"})
    if "[" in name:
        assert name.split("\x1b")[0] in p.stdout  # brackets are shown, not interpreted
    model_type = _container_with_model_type(tmp_path, f"[/]{ESC}[31mred")
    p = run("inspect", model_type)
    assert p.returncode == 0 and ESC not in p.stdout and "[/]\\x1b[31mred" in p.stdout.replace("\n", "")
    p = run("extract", model_type, "-o", tmp_path / "y")
    assert p.returncode == 0 and ESC not in p.stdout, p.stderr
    assert all(ESC not in n for n in visible_files(tmp_path / "y"))


def test_plain_and_text_helpers():
    from mtpsurgeon.cli.render.escape import plain, plain_tree, text

    assert plain(f"a{ESC}[31mb\r\n\u202e") == "a\\x1b[31mb\\x0d\\x0a\\u202e"
    assert text("[/]").plain == "[/]" and text(":smile:").plain == ":smile:"
    assert plain_tree({"k\x07": ["v\x1b", 1]}) == {"k\\x07": ["v\\x1b", 1]}


# -- non-regular inputs -----------------------------------------------------------------------

@pytest.mark.parametrize("verb", ["inspect", "extract", "restore"])
def test_fifo_input_is_refused_not_waited_on(tmp_path, verb):
    fifo = tmp_path / "model.tflite"
    os.mkfifo(fifo)
    args = [verb, fifo] + ([] if verb == "inspect" else ["-o", tmp_path / "out"])
    t0 = time.monotonic()
    line = one_line_error(run(*args, timeout=60), 2)
    assert "FIFO" in line and str(fifo) in line and time.monotonic() - t0 < 60


def test_fifo_as_drafter_base_or_recipe_is_refused(tmp_path):
    fifo = tmp_path / "x.json"
    os.mkfifo(fifo)
    out = tmp_path / "o.litertlm"
    assert "FIFO" in one_line_error(run("restore", FIXTURES / "hidden/no-drafter.litertlm", "--drafter", fifo, "-o", out), 2)
    assert "FIFO" in one_line_error(run("inspect", DRAFTER, "--base", fifo), 2)
    assert "FIFO" in one_line_error(run("restore", FIXTURES / "hidden/pruned-drafter.litertlm", "--recipe", fifo,
                                        "-o", out), 2)
    assert "character device" in one_line_error(run("inspect", "/dev/zero"), 2)


# -- failing disks and closed pipes -----------------------------------------------------------

def _limit_file_size(nbytes: int):
    def setup():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return setup


def test_file_too_large_leaves_nothing_half_written(tmp_path):
    out = tmp_path / "r" / "out.litertlm"
    p = run("restore", UNTAGGED, "-o", out, preexec_fn=_limit_file_size(200_000))
    line = one_line_error(p, 1)
    assert "cannot write" in line and "too large" in line
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").iterdir())


def test_a_failing_dump_takes_the_model_with_it(tmp_path):
    # The patched model (191 KB) fits under the limit, its f32 dump (~700 KB) does not: neither may appear.
    out = tmp_path / "out.tflite"
    p = run("restore", UNSIGNED, "-o", out, "--dtype", "f32", "--no-verify", preexec_fn=_limit_file_size(400_000))
    assert "cannot write" in one_line_error(p, 1)
    assert list(tmp_path.iterdir()) == []


def test_output_below_a_regular_file(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    line = one_line_error(run("restore", UNTAGGED, "-o", blocker / "out.litertlm"), 1)
    assert "not a directory" in line
    line = one_line_error(run("extract", DRAFTER, "-o", blocker / "sub"), 1)
    assert "not a directory" in line and blocker.read_text() == "x"


def test_full_stdout_is_one_line(tmp_path):
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", "mtpsurgeon", "inspect", DRAFTER, "--json"], stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=120)
    assert "standard output" in one_line_error(p, 1)


def test_stdout_closed_early_is_one_line():
    # the full tensor listing (~730 KB) outgrows the 64 KiB pipe buffer, so the reader's close is always seen
    proc = subprocess.Popen([sys.executable, "-m", "mtpsurgeon", "inspect", FIXTURES / "gemma4-mini.litertlm",
                             "--tensors", "--all", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=120)
    p = subprocess.CompletedProcess(proc.args, proc.returncode, "", err)
    assert "broken pipe" in one_line_error(p, 1)


def test_stale_partials_of_killed_runs_are_removed_and_reported(tmp_path):
    out = tmp_path / "out.litertlm"
    dead = tmp_path / ".out.litertlm.partial-4194000"  # above pid_max on most systems: never alive
    dead.write_bytes(b"half")
    stale_dump = tmp_path / ".out.safetensors.partial-4194001"
    stale_dump.write_bytes(b"half")
    p = run("restore", UNTAGGED, "-o", out, "--no-verify")
    assert p.returncode == 0, p.stderr
    assert "removed" in p.stderr and str(dead) in p.stderr and str(stale_dump) in p.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == ["out.litertlm", "out.safetensors"]


# -- intent ----------------------------------------------------------------------------------

def test_unused_drafter_is_refused_with_the_reason(tmp_path):
    out = tmp_path / "o.litertlm"
    line = one_line_error(run("restore", UNTAGGED, "--drafter", DRAFTER, "-o", out), 2)
    assert "--drafter" in line and "not used" in line and not out.exists()
    line = one_line_error(run("restore", FIXTURES / "gemma4-mini.litertlm", "--drafter", DRAFTER, "-o", out), 2)
    assert "--drafter" in line and "nothing to restore" in line


def test_unused_recipe_and_base_are_refused(tmp_path):
    out = tmp_path / "o.litertlm"
    assert "--recipe" in one_line_error(run("restore", UNTAGGED, "--recipe", "parallel-heads", "-o", out), 2)
    line = one_line_error(run("inspect", UNSIGNED, "--base", DRAFTER), 2)
    assert "--base" in line and "no base model" in line


def test_dry_run_prints_a_refused_plan(tmp_path):
    from test_restore_fixtures import _mislinked_drafter

    bad = _mislinked_drafter(tmp_path)
    args = ["restore", FIXTURES / "hidden/no-drafter.litertlm", "--drafter", bad, "-o", tmp_path / "o.litertlm", "--dry-run"]
    p = run(*args)
    assert p.returncode == 1 and "graft" in p.stdout and "FAIL" in p.stdout and "kv_cache_k_9" in p.stdout
    p = run(*args, "--json")
    data = json.loads(p.stdout)
    assert p.returncode == 1 and data["refused"] and any(not c["passed"] for c in data["checks"])
    assert not list(tmp_path.glob("o*"))


def test_fix_line_only_for_a_command_that_succeeds(tmp_path):
    from test_restore_fixtures import _mislinked_drafter

    # An untagged drafter whose KV input no longer matches the base: hidden, but restore would refuse.
    from mtpsurgeon.formats.litertlm.writer import Replace, rewrite_container
    from mtpsurgeon.formats.open import open_file

    bad = _mislinked_drafter(tmp_path)
    evil = tmp_path / "bad-untagged.litertlm"
    rewrite_container(open_file(UNTAGGED), [Replace(5, bad.read_bytes())], evil)
    data = json.loads(run("inspect", evil, "--json").stdout)
    assert data["mtp"]["verdict"] == "hidden" and data["mtp"]["fix"] is None
    assert "refuse" in data["mtp"]["summary"]
    ok = json.loads(run("inspect", UNTAGGED, "--json").stdout)["mtp"]["fix"]
    assert ok and run(*ok.split()[1:-2], "-o", tmp_path / "fixed.litertlm").returncode == 0


# -- values -----------------------------------------------------------------------------------

def _quant_oddities(tmp_path: Path) -> Path:
    from ai_edge_litert.schema_py_generated import TensorType as T

    k = modelkit.Kit()
    sg = k.subgraph()
    q = np.arange(-6, 6, dtype=np.int8).reshape(3, 4)
    k.tensor(sg, "good", [3, 4], T.INT8, q.tobytes(), scale=[0.5, 0.25, 2.0], zero_point=[0, 1, 0])
    k.tensor(sg, "nan_scale", [3, 4], T.INT8, q.tobytes(), scale=[0.5, float("nan"), 2.0], zero_point=[0, 0, 0])
    k.tensor(sg, "inf_scale", [3, 4], T.INT8, q.tobytes(), scale=[float("inf")], zero_point=[0])
    zp_only = k.tensor(sg, "zero_points_only", [3, 4], T.INT8, q.tobytes())
    qp = fb.QuantizationParametersT()
    qp.zeroPoint = [3, 3, 3]
    sg.tensors[zp_only].quantization = qp
    k.tensor(sg, "zp_count", [3, 4], T.INT8, q.tobytes(), scale=[0.5, 0.25, 2.0], zero_point=[0, 0])
    return k.save(tmp_path / "odd.tflite")


def test_inexact_quantization_is_skipped_with_a_note(tmp_path):
    model = _quant_oddities(tmp_path)
    out = tmp_path / "x"
    p = run("extract", model, "-o", out, "--all", "--dtype", "f32", "--json")
    assert p.returncode == 0, p.stderr
    skipped = {s["name"]: s["reason"] for d in json.loads(p.stdout)["dumps"] for s in d["skipped"]}
    assert set(skipped) == {"nan_scale", "inf_scale", "zero_points_only", "zp_count"}, skipped
    assert "NaN or infinite" in skipped["nan_scale"] and "no scales" in skipped["zero_points_only"]
    weights = load_file(str(out / "odd.f32.safetensors"))
    assert set(weights) == {"good"} and weights["good"].dtype == np.float32 and np.isfinite(weights["good"]).all()


# -- malformed models that inspect accepts but surgery cannot re-encode ------------------------

def _overlong_sparsity_vector(tmp_path: Path) -> Path:
    """The unsigned drafter with a sparsity table whose vector length is 0x7fffffff.

    inspect does not read an operator's custom options, so it accepts the file;
    the IR import (the flatbuffer object API) reads every field and fails on it.
    (Sparsity vectors, this test's first carrier, are now checked by the reader.)
    """
    import struct

    m = fb.ModelT.InitFromPackedBuf(UNSIGNED.read_bytes(), 0)
    m.subgraphs[0].operators[0].customOptions = list(struct.pack("<II", 0x11223344, 0x55667788))
    path = pack(m, tmp_path / "sparse.tflite")
    buf = bytearray(path.read_bytes())
    marker = struct.pack("<II", 0x11223344, 0x55667788)
    assert buf.count(marker) == 1
    struct.pack_into("<I", buf, buf.find(marker) - 4, 0x7FFFFFFF)
    path.write_bytes(buf)
    return path


def test_ir_import_failure_is_a_one_line_exit_2(tmp_path):
    evil = _overlong_sparsity_vector(tmp_path)
    before = snapshot(evil)
    assert run("inspect", evil).returncode == 0
    line = one_line_error(run("restore", evil, "-o", tmp_path / "out" / "o.tflite"), 2)
    assert str(evil) in line and "malformed" in line
    line = one_line_error(run("extract", evil, "-o", tmp_path / "x", "--subgraph", "0"), 2)
    assert str(evil) in line and "malformed" in line
    assert not (tmp_path / "out").exists() and not (tmp_path / "x").exists() and snapshot(evil) == before


def test_tflite_role_on_a_non_tflite_section_is_bad_input(tmp_path):
    """Found by the fuzz campaign: a zeroed header range left an embedder tag on a metadata section."""
    from mtpsurgeon.formats.litertlm.writer import Retag, rewrite_container
    from mtpsurgeon.formats.open import open_file

    evil = tmp_path / "evil-base.litertlm"
    rewrite_container(open_file(FIXTURES / "gemma4-mini.litertlm"), [Retag(0, {"model_type": "tf_lite_embedder"})], evil)
    line = one_line_error(run("inspect", DRAFTER, "--base", evil), 2)
    assert str(evil) in line and "not a TFLite model" in line
    line = one_line_error(run("restore", UNSIGNED, "--base", evil, "-o", tmp_path / "o.tflite"), 2)
    assert "not a TFLite model" in line and not (tmp_path / "o.tflite").exists()


def test_a_megabyte_name_is_shown_cut(tmp_path):
    """Found by fuzzing: a corrupt string length made a signature name 600 KB of table bytes."""
    m = fb.ModelT.InitFromPackedBuf(DRAFTER.read_bytes(), 0)
    m.signatureDefs[0].outputs[0].name = "logits" + "\x00" * 300_000
    evil = pack(m, tmp_path / "long.tflite")
    p = run("inspect", evil)
    assert p.returncode == 0 and "(+" in p.stdout and "characters)" in p.stdout
    assert len(p.stdout) < 50_000
