"""The input policy: names inside a model never choose which files are read (mtpsurgeon/inputs.py).

Hostile ``ExternalBufferGroup`` names are refused by every verb (CLI and
library) with exit 2, one line naming the model, the group and the name, and
nothing written; legitimate weights beside the model (as converters write them)
keep working, checked against the LiteRT runtime.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as fb
from safetensors.numpy import load_file

import mtpsurgeon
import mtpsurgeon.api
import weightskit
from conftest import FIXTURES
from mtpsurgeon.inputs import SideFileRefused, WeightsFolder, name_problem

SECRET = b"TOP-SECRET-CREDENTIALS-" * 64


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mtpsurgeon", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


@pytest.fixture()
def secret(tmp_path: Path) -> Path:
    """A file outside the model's folder that a hostile model wants to read."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.bin").write_bytes(SECRET)
    return outside / "secret.bin"


def external_model(folder: Path, fixture: str, name: str, group: str | None = None) -> Path:
    """``fixture`` with its constants moved into ``folder/<group>``, as converters write them; saved as ``name``."""
    folder.mkdir(parents=True, exist_ok=True)
    group = group or Path(name).stem + ".weights"
    e = weightskit.externalize((FIXTURES / fixture).read_bytes(), group)
    (folder / name).write_bytes(e.model)
    (folder / group).write_bytes(e.weights)
    return folder / name


def hostile(folder: Path, name: str, group_name: str, fixture: str = "mtp_drafter_f32.tflite") -> Path:
    """An externalized model whose group names ``group_name`` (its real weights stay beside it)."""
    path = external_model(folder, fixture, name)
    path.write_bytes(weightskit.rename_group(path.read_bytes(), group_name))
    return path


def with_group(model: bytes, name: str) -> bytes:
    """``model`` declaring one more ExternalBufferGroup called ``name`` (no buffer uses it)."""
    import flatbuffers

    m = fb.ModelT.InitFromPackedBuf(bytearray(model), 0)
    g = fb.ExternalBufferGroupT()
    g.name = name
    m.externalBufferGroups = [*(m.externalBufferGroups or []), g]
    b = flatbuffers.Builder(len(model) + 1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def hostile_container(tmp_path: Path, fixture: str, section_type: str, name: str) -> Path:
    """``fixture`` (a .litertlm) whose ``section_type`` section declares a group called ``name``."""
    from mtpsurgeon.formats.litertlm.writer import Replace, rewrite_container
    from mtpsurgeon.formats.open import open_file

    src = open_file(FIXTURES / fixture)
    index = next(i for i, s in enumerate(src.sections) if s.model_type == section_type)
    section = src.sections[index]
    data = with_group(bytes(src.source.view[section.begin:section.end]), name)
    out = tmp_path / "in" / Path(fixture).name
    out.parent.mkdir(parents=True, exist_ok=True)
    rewrite_container(src, [Replace(index, data)], out)
    src.source.close()
    return out


def assert_refused(p: subprocess.CompletedProcess, model: Path, name_shown: str, *nothing_at: Path) -> str:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    line = lines[0]
    assert str(model) in line and "external buffer group" in line and name_shown in line, line
    for path in nothing_at:
        assert not path.exists() or not any(path.iterdir() if path.is_dir() else [path]), path
    return line


# -- the name rule -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", "/etc/passwd", "a\\b", "x\x00y", "w\x1b[2J",
                                  "\ufffd.bin", "n" * 300])
def test_names_that_are_not_one_plain_file_name(name):
    assert name_problem(name) is not None


@pytest.mark.parametrize("name", ["model.weights", "Gemma 4 (E2B).bin", "[bold]w.bin", "..x", "poids-é.bin"])
def test_plain_names(name):
    assert name_problem(name) is None


# -- the folder rule, on the file system -------------------------------------------------------------

def test_links_that_stay_in_the_folder_are_followed_and_others_refused(tmp_path, secret):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "real.bin").write_bytes(b"weights!")
    os.symlink("real.bin", folder / "alias.bin")
    os.symlink(secret, folder / "out.bin")
    os.symlink("../outside/secret.bin", folder / "rel-out.bin")
    os.symlink("/dev/zero", folder / "dev.bin")
    os.mkfifo(folder / "pipe.bin")
    (folder / "sub").mkdir()
    policy = WeightsFolder(folder)
    path, fh = policy.open("m.tflite", "external buffer group 0", "alias.bin")
    assert fh.read() == b"weights!" and path == folder / "real.bin"
    fh.close()
    for name, why in [("out.bin", "outside"), ("rel-out.bin", "outside"), ("dev.bin", "outside"),
                      ("pipe.bin", "not a regular file"), ("sub", "not a regular file"), ("missing.bin", "is not in")]:
        with pytest.raises(SideFileRefused, match=why) as exc:
            policy.open("m.tflite", "external buffer group 0", name)
        assert "m.tflite" in str(exc.value) and repr(name) in str(exc.value)


def test_refused_names_are_escaped_and_cut(tmp_path):
    with pytest.raises(SideFileRefused) as exc:
        WeightsFolder(tmp_path).check_name("m.tflite", "external buffer group 3", "\x1b]8;;x\x07" + "/" * 5000)
    message = str(exc.value)
    assert "\x1b" not in message and "\x07" not in message and "\\x1b" in message
    assert len(message) < 400 and "external buffer group 3" in message


# -- every verb refuses a hostile name: CLI ------------------------------------------------------------

HOSTILE = ["../outside/secret.bin", "ABSOLUTE", "link.bin", "", "..", "w\x1b[31m.bin"]


@pytest.mark.parametrize("group", HOSTILE)
def test_extract_refuses_and_writes_nothing(tmp_path, secret, group):
    name = str(secret) if group == "ABSOLUTE" else group
    model = hostile(tmp_path / "in", "m.tflite", name)
    if group == "link.bin":
        os.symlink(secret, tmp_path / "in" / "link.bin")
        p = cli("extract", model, "-o", tmp_path / "out", "--all", "--dtype", "f32")
        assert p.returncode == 2 and "outside" in p.stderr and str(model) in p.stderr, p.stderr
        assert not (tmp_path / "out").exists()
        return
    p = cli("extract", model, "-o", tmp_path / "out", "--all")
    shown = ascii(name)[1:-1][:40]
    assert_refused(p, model, shown)
    assert not (tmp_path / "out").exists()


def test_inspect_and_restore_refuse(tmp_path, secret):
    model = hostile(tmp_path / "in", "unsigned.tflite", "../outside/secret.bin", "hidden/unsigned-drafter.tflite")
    for args in (["inspect", model], ["inspect", model, "--json"], ["inspect", model, "--tensors"]):
        assert_refused(cli(*args), model, "../outside/secret.bin")
    out = tmp_path / "dest"
    out.mkdir()
    p = cli("restore", model, "-o", out / "r.tflite", "--base", FIXTURES / "gemma4-mini.litertlm")
    assert_refused(p, model, "../outside/secret.bin", out)


def test_tune_bench_and_build_drafter_refuse(tmp_path):
    hostile_base = hostile_container(tmp_path, "gemma4-mini.litertlm", "tf_lite_prefill_decode", "../x.bin")
    dest = tmp_path / "dest"
    dest.mkdir()
    assert_refused(cli("tune", hostile_base, "-g", "1", "-o", dest / "t.litertlm"), hostile_base, "../x.bin", dest)
    assert_refused(cli("bench", hostile_base, "--max-tokens", "2", "--repeats", "1"), hostile_base, "../x.bin")
    no_drafter = hostile_container(tmp_path / "b", "hidden/no-drafter.litertlm", "tf_lite_prefill_decode", "/etc/passwd")
    ckpt = tmp_path / "ckpt"
    mtpsurgeon.extract(FIXTURES / "mtp_drafter_f32.tflite", ckpt, dtype="f32", names="hf", models=False)
    p = cli("build-drafter", ckpt, "--base", no_drafter, "-o", dest / "b.litertlm", "--no-rope")
    assert_refused(p, no_drafter, "/etc/passwd", dest)


NO_MTP = ["no-mtp/gemma4-mini-nomtp.litertlm", "jax/no-mtp/gemma4-mini-nomtp.litertlm"]


@pytest.mark.parametrize("fixture", NO_MTP)
def test_enable_mtp_refuses(tmp_path, secret, fixture):
    for i, name in enumerate(["../outside/secret.bin", str(secret)]):
        base = hostile_container(tmp_path / str(i), fixture, "tf_lite_prefill_decode", name)
        dest = tmp_path / f"dest{i}"
        dest.mkdir()
        assert_refused(cli("enable-mtp", base, "-o", dest / "e.litertlm"), base, name, dest)
        # build-drafter first adds MTP to such a base: refused the same way
        assert_refused(cli("build-drafter", tmp_path / "no-ckpt", "--base", base, "-o", dest / "b.litertlm"),
                       base, name, dest)


# -- every verb refuses a hostile name: library ---------------------------------------------------------

def test_library_calls_refuse(tmp_path, secret):
    model = hostile(tmp_path / "in", "unsigned.tflite", str(secret), "hidden/unsigned-drafter.tflite")
    container = hostile_container(tmp_path, "gemma4-mini.litertlm", "tf_lite_prefill_decode", "../x.bin")
    no_mtp = hostile_container(tmp_path / "n", NO_MTP[0], "tf_lite_prefill_decode", "/etc/passwd")
    ckpt = tmp_path / "ckpt"
    mtpsurgeon.extract(FIXTURES / "mtp_drafter_f32.tflite", ckpt, dtype="f32", names="hf", models=False)
    dest = tmp_path / "dest"
    calls = [
        lambda: mtpsurgeon.inspect(model),
        lambda: mtpsurgeon.list_tensors(model),
        lambda: mtpsurgeon.api.inspect_json(model).__enter__(),
        lambda: mtpsurgeon.api.tensor_rows(model).__enter__(),
        lambda: mtpsurgeon.extract(model, dest / "x", select="all"),
        lambda: mtpsurgeon.restore(model, dest / "r.tflite", base=FIXTURES / "gemma4-mini.litertlm"),
        lambda: mtpsurgeon.tune(container, 1, dest / "t.litertlm"),
        lambda: mtpsurgeon.tune_search(container, [1, 2], dest / "s.litertlm"),
        lambda: mtpsurgeon.bench(container, max_tokens=2, repeats=1),
        lambda: mtpsurgeon.open_file(model),
        lambda: mtpsurgeon.enable_mtp(no_mtp, dest / "e.litertlm"),
        lambda: mtpsurgeon.build_drafter(ckpt, no_mtp, dest / "b.litertlm", rope=False),
        lambda: mtpsurgeon.build_drafter(ckpt, container, dest / "b2.litertlm", rope=False, replace=True),
    ]
    for call in calls:
        with pytest.raises(SideFileRefused) as exc:
            call()
        assert exc.value.exit_code == 2 and "external buffer group" in str(exc.value)
    assert not dest.exists()


VERBS = ["inspect", "extract", "restore", "tune", "bench", "build-drafter", "enable-mtp"]
CALLS = ["inspect", "inspect_json", "list_tensors", "tensor_rows", "extract", "restore", "tune", "tune_search", "bench",
         "build_drafter", "enable_mtp", "open_file"]


def test_every_verb_and_call_takes_a_weights_folder():
    import inspect as signatures

    from mtpsurgeon import api

    for verb in VERBS:
        p = cli(verb, "--help")
        assert p.returncode == 0 and "--weights-dir" in p.stdout, (verb, p.stdout)
    for name in CALLS:
        fn = getattr(mtpsurgeon, name, None) or getattr(api, name)
        assert "weights_dir" in signatures.signature(fn).parameters, name


# -- legitimate weights beside the model -----------------------------------------------------------------

def _compiled_run(path: Path) -> list[np.ndarray]:
    """Run the model's first signature in LiteRT's CompiledModel (which reads external weights) on fixed inputs."""
    from ai_edge_litert.compiled_model import CompiledModel

    cm = CompiledModel.from_file(str(path))
    key = next(iter(cm.get_signature_list()))
    idx = cm.get_signature_index(key)
    ins, outs = cm.create_input_buffers(idx), cm.create_output_buffers(idx)
    rng = np.random.default_rng(0)
    for buf, d in zip(ins, cm.get_input_tensor_details(key).values()):
        kind = np.dtype(d["dtype"]).kind
        buf.write(rng.standard_normal(d["shape"]).astype(d["dtype"]) if kind == "f" else np.zeros(d["shape"], d["dtype"]))
    cm.run_by_index(idx, ins, outs)
    return [o.read(int(np.prod(d["shape"])), d["dtype"]) for o, d in zip(outs, cm.get_output_tensor_details(key).values())]


@pytest.mark.parametrize("fixture", ["mtp_drafter_f32.tflite", "jax/mtp_drafter_f32.tflite"])
def test_weights_beside_the_model_are_read(tmp_path, fixture):
    from ai_edge_litert.interpreter import Interpreter

    model = external_model(tmp_path / "model", fixture, "drafter.tflite")
    # the runtime reads the weights file beside the model: same outputs as the fixture, none without it
    assert all(np.array_equal(a, b) for a, b in zip(_compiled_run(FIXTURES / fixture), _compiled_run(model)))
    # our dump of every constant equals the interpreter's view of the original fixture's tensors
    p = cli("extract", model, "-o", tmp_path / "out", "--all", "--dtype", "f32", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    dump = load_file(str(tmp_path / "out" / "drafter.f32.safetensors"))
    it = Interpreter(model_path=str(FIXTURES / fixture))
    oracle = {d["name"]: d["index"] for d in it.get_tensor_details()}
    checked = 0
    for name, values in dump.items():
        if name in oracle and values.dtype == np.float32:
            want = it.get_tensor(oracle[name])
            if want.dtype == np.float32 and want.size == values.size:
                np.testing.assert_array_equal(values.reshape(want.shape), want)
                checked += 1
    assert checked >= 30, checked
    # inspect and the library see the same model; nothing outside was needed
    report = mtpsurgeon.inspect(model)
    assert report.to_json()["models"][0]["buffers"]["external"] == weightskit.externalize(
        (FIXTURES / fixture).read_bytes(), "x").buffers


def test_missing_weights_file_names_the_group(tmp_path):
    model = external_model(tmp_path / "model", "mtp_drafter_f32.tflite", "drafter.tflite")
    (tmp_path / "model" / "drafter.weights").unlink()
    p = cli("extract", model, "-o", tmp_path / "out", "--all")
    assert p.returncode == 2 and "external buffer group 0" in p.stderr and "drafter.weights" in p.stderr, p.stderr
    assert not (tmp_path / "out").exists()


def test_weights_dir_points_at_the_users_folder(tmp_path, secret):
    model = external_model(tmp_path / "model", "mtp_drafter_f32.tflite", "drafter.tflite")
    elsewhere = tmp_path / "weights"
    elsewhere.mkdir()
    (tmp_path / "model" / "drafter.weights").rename(elsewhere / "drafter.weights")
    assert cli("extract", model, "-o", tmp_path / "no", "--all").returncode == 2
    p = cli("extract", model, "-o", tmp_path / "yes", "--all", "--weights-dir", elsewhere)
    assert p.returncode == 0, p.stderr
    assert len(load_file(str(tmp_path / "yes" / "drafter.safetensors"))) >= 40
    result = mtpsurgeon.extract(model, tmp_path / "lib", select="all", weights_dir=elsewhere)
    assert result.dumps[0].tensors >= 40
    # names are still confined to the chosen folder
    bad = hostile(tmp_path / "m2", "m.tflite", "../outside/secret.bin")
    p = cli("extract", bad, "-o", tmp_path / "bad", "--all", "--weights-dir", secret.parent)
    assert p.returncode == 2 and "--weights-dir" in p.stderr, p.stderr
    assert cli("inspect", model, "--weights-dir", tmp_path / "nope").returncode == 2


def test_restore_and_extract_write_self_contained_models(tmp_path):
    """A model written from one with external weights holds them: it runs wherever it is written."""
    from ai_edge_litert.interpreter import Interpreter

    model = external_model(tmp_path / "in", "hidden/unsigned-drafter.tflite", "unsigned.tflite")
    out = tmp_path / "elsewhere" / "restored.tflite"
    out.parent.mkdir()
    p = cli("restore", model, "-o", out, "--base", FIXTURES / "gemma4-mini.litertlm")
    assert p.returncode == 0, p.stderr
    ref = tmp_path / "ref.tflite"
    assert cli("restore", FIXTURES / "hidden/unsigned-drafter.tflite", "-o", ref, "--base",
               FIXTURES / "gemma4-mini.litertlm").returncode == 0
    runs = []
    for path in (out, ref):
        it = Interpreter(model_path=str(path))
        runner = it.get_signature_runner("mtp_drafter")
        rng = np.random.default_rng(1)
        feeds = {k: (rng.standard_normal(d["shape"]).astype(d["dtype"]) if np.dtype(d["dtype"]).kind == "f"
                     else np.zeros(d["shape"], d["dtype"])) for k, d in runner.get_input_details().items()}
        runs.append(runner(**feeds))
    assert runs[0].keys() == runs[1].keys()
    for k in runs[0]:
        np.testing.assert_array_equal(runs[0][k], runs[1][k])
    x = tmp_path / "x"
    assert cli("extract", model, "-o", x).returncode == 0
    written = next(x.glob("*.tflite"))
    m = fb.ModelT.InitFromPackedBuf(bytearray(written.read_bytes()), 0)
    assert not m.externalBufferGroups and not m.externalBuffers


def external_container(folder: Path, fixture: str, section_type: str = "tf_lite_prefill_decode") -> Path:
    """``fixture`` (a .litertlm) whose ``section_type`` section keeps its weights in a file beside the container."""
    from mtpsurgeon.formats.litertlm.writer import Replace, rewrite_container
    from mtpsurgeon.formats.open import open_file

    src = open_file(FIXTURES / fixture)
    index = next(i for i, s in enumerate(src.sections) if s.model_type == section_type)
    e = weightskit.externalize(bytes(src.section_bytes(index)), "base.weights")
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / Path(fixture).name
    rewrite_container(src, [Replace(index, e.model)], out)
    src.source.close()
    (folder / "base.weights").write_bytes(e.weights)
    return out


def _signature_outputs(section: bytes, key: str) -> dict[str, np.ndarray]:
    """Run signature ``key`` of a TFLite model in the LiteRT interpreter on fixed inputs."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=section).get_signature_runner(key)
    rng = np.random.default_rng(3)
    feeds = {}
    for k, d in runner.get_input_details().items():
        if k == "input_pos":
            feeds[k] = np.arange(1, 1 + int(np.prod(d["shape"])), dtype=d["dtype"]).reshape(d["shape"])
        elif np.dtype(d["dtype"]).kind == "f":
            feeds[k] = rng.standard_normal(d["shape"]).astype(d["dtype"])
        else:
            feeds[k] = np.zeros(d["shape"], d["dtype"])
    return runner(**feeds)


@pytest.mark.parametrize("fixture", NO_MTP)
def test_enable_mtp_and_tune_read_weights_beside_the_container(tmp_path, fixture):
    """enable-mtp on a base whose weights live beside it equals enable-mtp on the fixture (LiteRT interpreter)."""
    from fixture_oracles import sections

    mini = fixture.replace("no-mtp/gemma4-mini-nomtp", "gemma4-mini")  # the same family's base with verify
    base, with_verify = external_container(tmp_path / "in", fixture), external_container(tmp_path / "in2", mini)
    (tmp_path / "o").mkdir()
    runs = {"enable-mtp": (base, FIXTURES / fixture, ["-g", "3"]), "tune": (with_verify, FIXTURES / mini, ["-g", "2"])}

    def base_of(path):
        return next(s["data"] for s in sections(path) if s["items"].get("model_type") == "tf_lite_prefill_decode")

    for verb, (external, original, opts) in runs.items():
        out, ref = tmp_path / "o" / f"{verb}.litertlm", tmp_path / f"{verb}-ref.litertlm"
        for model, dest in ((external, out), (original, ref)):
            p = cli(verb, model, *opts, "-o", dest)
            assert p.returncode == 0, (verb, p.stderr)
        written = base_of(out)
        m = fb.ModelT.InitFromPackedBuf(bytearray(written), 0)
        assert not m.externalBufferGroups and not m.externalBuffers  # self-contained wherever it is written
        for key in ("decode", "verify"):
            got, want = _signature_outputs(written, key), _signature_outputs(base_of(ref), key)
            assert got.keys() == want.keys()
            for k in want:
                np.testing.assert_array_equal(got[k], want[k], err_msg=f"{verb} {key}: {k}")
    # moved elsewhere, the weights are found only through --weights-dir
    elsewhere = tmp_path / "w"
    elsewhere.mkdir()
    (base.parent / "base.weights").rename(elsewhere / "base.weights")
    p = cli("enable-mtp", base, "-o", tmp_path / "o" / "no.litertlm")
    assert p.returncode == 2 and "base.weights" in p.stderr and not (tmp_path / "o" / "no.litertlm").exists()
    assert mtpsurgeon.enable_mtp(base, tmp_path / "o" / "lib.litertlm", weights_dir=elsewhere).equivalence["ok"]


@pytest.mark.parametrize("fixture", ["gemma4-mini.litertlm", "jax/gemma4-mini.litertlm"])
def test_sections_copied_unchanged_stay_beside_their_weights(tmp_path, fixture):
    """tune rewrites the base and copies the embedder, whose weights live beside the container: the copy must
    land in that folder (where its names resolve) or be refused with nothing written."""
    model = external_container(tmp_path / "in", fixture, "tf_lite_embedder")
    away = tmp_path / "away"
    away.mkdir()
    p = cli("tune", model, "-g", "2", "-o", away / "t.litertlm")
    assert p.returncode == 2 and "write the output into" in p.stderr and "base.weights" in p.stderr, p.stderr
    assert not any(away.iterdir())
    p = cli("tune", model, "-g", "2", "-o", model.parent / "t.litertlm")
    assert p.returncode == 0, p.stderr
    # the copied embedder, run by LiteRT's CompiledModel beside the weights file, equals the fixture's embedder
    from fixture_oracles import sections

    def embedder(path):
        return next(s["data"] for s in sections(path) if s["items"].get("model_type") == "tf_lite_embedder")

    copy, ref = model.parent / "embedder.tflite", tmp_path / "ref-embedder.tflite"
    copy.write_bytes(embedder(model.parent / "t.litertlm"))
    ref.write_bytes(embedder(FIXTURES / fixture))
    assert fb.ModelT.InitFromPackedBuf(bytearray(copy.read_bytes()), 0).externalBufferGroups
    got, want = _compiled_run(copy), _compiled_run(ref)
    assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want))
