"""The public Python API gives exactly what the CLI's --json prints, as typed objects,
and its answers match fixtures/expected.json (written by the fixture generator)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from ai_edge_litert.interpreter import Interpreter
from safetensors.numpy import load_file

import mtpsurgeon
from conftest import FIXTURES
from mtpsurgeon.api.results import FindingInfo, ModelInfo, SignatureInfo

EXPECTED = json.loads((FIXTURES / "expected.json").read_text())["files"]


def cli_json(*args, cwd=None) -> dict:
    p = subprocess.run([sys.executable, "-m", "mtpsurgeon", *map(str, args), "--json"], capture_output=True, text=True,
                       timeout=300, cwd=cwd)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_inspect_equals_the_cli_json(name):
    path = FIXTURES / name
    report = mtpsurgeon.inspect(path)
    assert report.to_json() == cli_json("inspect", path)
    # Typed all the way down, and right (expected.json is the independent answer key).
    exp = EXPECTED[name]
    assert report.verdict == exp["mtp"]["verdict"] and report.format == exp["format"] and report.size == exp["size"]
    assert all(isinstance(m, ModelInfo) for m in report.models)
    assert all(isinstance(s, SignatureInfo) for m in report.models for s in m.signatures)
    assert all(isinstance(f, FindingInfo) for f in report.mtp.findings)
    if exp["mtp"]["hiding"]:
        assert exp["mtp"]["hiding"] in {f.kind for f in report.mtp.findings if f.hidden or f.kind == "section_missing"}
    if exp["format"] == "litertlm":
        assert [s.index for s in report.sections] == list(range(len(exp["sections"])))


def test_draft_steps_come_from_the_verify_signature():
    report = mtpsurgeon.inspect(FIXTURES / "gemma4-mini.litertlm")
    verify = next(s for m in report.models for s in m.signatures if s.key == "verify")
    input_pos = next(i for i in verify.inputs if i.name == "input_pos")
    assert report.base.draft_steps == input_pos.shape[0] - 1 == 3


def test_standalone_drafter_with_base():
    path, base = FIXTURES / "mtp_drafter.tflite", FIXTURES / "gemma4-mini.litertlm"
    report = mtpsurgeon.inspect(path, base=base)
    assert report.to_json() == cli_json("inspect", path, "--base", base)
    links = [c for f in report.mtp.findings for c in f.links]
    assert links and all(c.passed for c in links)


def test_list_tensors_equals_the_cli_json():
    path = FIXTURES / "hidden/pruned-drafter.tflite"
    rows = mtpsurgeon.list_tensors(path, orphans=True)
    assert [t.to_json() for t in rows] == cli_json("inspect", path, "--tensors", "--orphans")["tensors"]
    assert len(rows) == 54 and all(t.extra["orphan"] for t in rows)


def test_extract_equals_the_cli_json(tmp_path):
    src = FIXTURES / "hidden/untagged-drafter.litertlm"
    result = mtpsurgeon.extract(src, tmp_path / "api", dtype="f32", names="hf")
    theirs = cli_json("extract", src, "-o", tmp_path / "cli", "--dtype", "f32", "--names", "hf")
    assert json.loads(json.dumps(result.to_json()).replace(str(tmp_path / "api"), "OUT")) == \
        json.loads(json.dumps(theirs).replace(str(tmp_path / "cli"), "OUT"))
    # The dump is read by the safetensors library, the section copy by the interpreter.
    weights = load_file(result.dumps[0].path)
    assert result.dumps[0].tensors == 44 and weights["pre_projection.weight"].shape == (64, 128)
    assert len(weights) == 44 + 4  # + layer_scalar defaults for 4 layers, as the dump's notes say
    (model,) = result.models
    assert list(Interpreter(model_path=model.path).get_signature_list()) == ["mtp_drafter"]


def test_restore_equals_the_cli_json(tmp_path):
    src = FIXTURES / "hidden/unsigned-drafter.tflite"
    result = mtpsurgeon.restore(src, tmp_path / "api.tflite")
    theirs = cli_json("restore", src, "-o", tmp_path / "cli.tflite")
    assert json.loads(json.dumps(result.to_json()).replace("api.", "OUT.")) == \
        json.loads(json.dumps(theirs).replace("cli.", "OUT."))
    assert result.status == "restored" and all(v.ok for v in result.verify)
    assert list(Interpreter(model_path=result.output).get_signature_list()) == ["mtp_drafter"]
    assert "pre_projection.weight" in load_file(result.dump)
    assert mtpsurgeon.inspect(result.output).verdict == "ready"


def test_restore_dry_run_and_no_op(tmp_path):
    planned = mtpsurgeon.restore(FIXTURES / "hidden/mistagged-drafter.litertlm", tmp_path / "x.litertlm", dry_run=True)
    assert planned.status == "planned" and "re-tag section 5" in planned.plan[0] and not (tmp_path / "x.litertlm").exists()
    done = mtpsurgeon.restore(FIXTURES / "gemma4-mini.litertlm", tmp_path / "y.litertlm")
    assert done.status == "nothing-to-do" and "nothing to restore" in done.message
    assert not (tmp_path / "y.litertlm").exists()
    with pytest.raises(mtpsurgeon.NothingToRestore) as err:
        mtpsurgeon.restore(FIXTURES / "base_prefill_decode.tflite", tmp_path / "z.tflite")
    assert err.value.exit_code == 1


def test_errors_are_exported_and_typed(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(mtpsurgeon.MalformedFileError) as err:
        mtpsurgeon.inspect(bad)
    assert err.value.path == str(bad) and err.value.exit_code == 2
    out = tmp_path / "r.litertlm"
    out.write_bytes(b"keep")
    with pytest.raises(mtpsurgeon.OutputExistsError):
        mtpsurgeon.restore(FIXTURES / "hidden/untagged-drafter.litertlm", out)
    assert out.read_bytes() == b"keep"
    with pytest.raises(mtpsurgeon.UsageError):
        mtpsurgeon.restore(FIXTURES / "hidden/no-drafter.litertlm", tmp_path / "n.litertlm")
    assert all(issubclass(getattr(mtpsurgeon, n), mtpsurgeon.MtpSurgeonError)
               for n in mtpsurgeon.__all__ if n.endswith(("Error", "Restore")) and n != "MtpSurgeonError")


def test_public_surface():
    for name in mtpsurgeon.__all__:
        assert getattr(mtpsurgeon, name) is not None
    for fn in (mtpsurgeon.inspect, mtpsurgeon.extract, mtpsurgeon.restore, mtpsurgeon.bench, mtpsurgeon.list_tensors):
        assert fn.__doc__ and ">>>" in fn.__doc__ and fn.__annotations__
    assert (FIXTURES.parent / "mtpsurgeon" / "py.typed").exists()
