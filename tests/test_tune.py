"""`mtpsurgeon tune`: verify re-specialized to G+1 tokens, proven against independent oracles:
litert-torch's own exports at that length (structure), the LiteRT interpreter (verify ==
repeated decode, bit for bit), litert-lm-builder's peek code (other sections untouched)
and the LiteRT-LM engine (greedy text with MTP on == off)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from ai_edge_litert.interpreter import Interpreter

from conftest import FIXTURES, REPO
from test_restore_fixtures import cli, engine, peek_sections, same_greedy, section_bytes

sys.path.insert(0, str(REPO))
from fixtures.build.verify_variants import canonical, read_summary, summarize  # noqa: E402

from mtpsurgeon.formats.open import open_file  # noqa: E402
from mtpsurgeon.formats.tflite.writer import write_tflite  # noqa: E402
from mtpsurgeon.surgery.ir import Model, OpCode  # noqa: E402
from mtpsurgeon.surgery.verify_vs_decode import check_verify_matches_decode  # noqa: E402

BASE = FIXTURES / "base_prefill_decode.tflite"
CONTAINER = FIXTURES / "gemma4-mini.litertlm"
PD = "tf_lite_prefill_decode"


@pytest.mark.parametrize("tokens", [2, 3, 5])
def test_tflite_matches_litert_torch_export(tmp_path, tokens):
    out = tmp_path / f"t{tokens}.tflite"
    p = cli("tune", BASE, "--draft-steps", tokens - 1, "-o", out, "--json")
    r = json.loads(p.stdout)
    assert r["verify_tokens"] == tokens and r["equivalence"]["bit_identical"]
    data = out.read_bytes()
    ref = read_summary(FIXTURES / "verify_variants" / f"verify_T{tokens}.json.gz")
    assert canonical(summarize(data)) == canonical(ref)
    if tokens != 2:  # at T=2 the converter merges two constants that became equal ([1,T,2,64] vs [1,2,T,64])
        assert summarize(data) == ref  # same tensor list, names, indices too
    src = BASE.read_bytes()
    for key in ("decode", "prefill_16"):
        assert summarize(data, key) == summarize(src, key)
    # the interpreter, independently of the gate: verify over T' tokens == T' decode calls, another seed
    eq = check_verify_matches_decode(data, seed=tokens + 100)
    assert eq.bit_identical and eq.tokens == tokens and len(eq.max_abs_diff) == 6
    assert list(Interpreter(model_content=data).get_signature_runner("verify")
                .get_input_details()["input_pos"]["shape"]) == [tokens]


def tune_each(container: Path, folder: Path, steps=(1, 2, 4)) -> dict[int, Path]:
    """``tune --draft-steps G`` of ``container`` for each G, written into ``folder``."""
    out = {}
    for g in steps:
        out[g] = folder / f"g{g}.litertlm"
        cli("tune", container, "--draft-steps", g, "-o", out[g])
    return out


def assert_sections_untouched_and_links_pass(container: Path, tuned: dict[int, Path]) -> None:
    """Only the prefill/decode section changed, its verify takes G + 1 tokens, and every link check passes."""
    src = peek_sections(container)
    for g, path in tuned.items():
        got = peek_sections(path)
        assert [t for t, _ in got] == [t for t, _ in src]
        changed = [t for (t, a), (_, b) in zip(src, got) if a != b]
        assert changed == [PD]
        s = summarize(section_bytes(path, PD))
        assert s["graphs"][0]["tensors"][s["io"]["inputs"]["input_pos"]]["shape"] == [g + 1]
        rep = json.loads(cli("inspect", path, "--json").stdout)
        assert rep["mtp"]["verdict"] == "ready" and rep["base"]["verify_len"] == g + 1
        links = [c for f in rep["mtp"]["findings"] for c in f["links"]]
        assert links and all(c["passed"] for c in links)
        assert any(c["check"].startswith("draft steps") and c["actual"] == g for c in links)


def assert_engine_greedy_identical(path: Path, *prompts: Path) -> None:
    """The engine's greedy text with speculative decoding on equals off; a success rate in (0, 1]."""
    on, off = engine(path, "on", *prompts), engine(path, "off", *prompts)
    assert on["error"] is None and off["error"] is None and on["has_speculative_decoding_support"]
    assert same_greedy(on["texts"], off["texts"])
    assert on["success_rates"] and 0 < on["success_rates"][-1] <= 1


@pytest.fixture(scope="module")
def tuned_containers(tmp_path_factory):
    return tune_each(CONTAINER, tmp_path_factory.mktemp("tuned"))


def test_container_sections_untouched_and_links_pass(tuned_containers):
    assert_sections_untouched_and_links_pass(CONTAINER, tuned_containers)


@pytest.mark.parametrize("g", [1, 2, 4])
def test_engine_greedy_identical_with_mtp(tuned_containers, g):
    assert_engine_greedy_identical(tuned_containers[g])


def test_zero_draft_steps_refused(tmp_path):
    out = tmp_path / "g0.litertlm"
    p = cli("tune", CONTAINER, "--draft-steps", 0, "-o", out, expect=2)
    assert "must be >= 1" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_existing_output_needs_force(tmp_path):
    out = tmp_path / "g1.tflite"
    out.write_bytes(b"keep")
    cli("tune", BASE, "--draft-steps", 1, "-o", out, expect=1)
    assert out.read_bytes() == b"keep"
    cli("tune", BASE, "--draft-steps", 1, "-o", out, "--force")
    assert out.read_bytes()[4:8] == b"TFL3"


def test_unknown_operator_refused_nothing_written(tmp_path):
    ir = Model.from_tflite(open_file(BASE))
    g = ir.signature("verify").graph
    gelu = next(n for n in g.nodes if n.op == "GELU")
    gelu.opcode = OpCode.make("REVERSE_V2")  # an operator the inference has no rule for
    bad = tmp_path / "unknown-op.tflite"
    write_tflite(ir, bad)
    out = tmp_path / "out.tflite"
    p = cli("tune", bad, "--draft-steps", 1, "-o", out, expect=1)
    assert "no shape rule for operator REVERSE_V2" in p.stderr and str(bad) in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and len(p.stderr) < 400  # long tensor names are shortened
    assert not out.exists() and not list(tmp_path.glob(".out.tflite*"))


def test_search_prints_table_and_decides(tmp_path):
    prompts = tmp_path / "prompts.txt"
    lines = [l for l in (FIXTURES / "prompts.txt").read_text().splitlines() if l and not l.startswith("#")]
    prompts.write_text("\n".join(lines[:3]) + "\n")
    out = tmp_path / "best.litertlm"
    r = json.loads(cli("tune", CONTAINER, "--search", "1-2", "--prompts", prompts, "--repeats", 1, "-o", out,
                       "--json").stdout)
    assert [v["draft_steps"] for v in r["variants"]] == [1, 2]
    for v in r["variants"]:
        assert v["error"] is None and v["tok_s_on"] > 0 and v["tok_s_off"] > 0 and v["identical"]
        assert len(v["speedup_per_repeat"]) == 1 and v["success_rate"] == 1.0 and len(v["texts_on"]) == 3
        # bench's cost model at this G: at success rate 1 the prediction is the ceiling, (1 + G)·step / cycle,
        # so the break-even rate r* = (cycle/step - 1)/G follows from it
        G, pred = v["draft_steps"], v["predicted_speedup"]
        assert pred > 0 and v["break_even_success_rate"] == pytest.approx(((1 + G) / pred - 1) / G)
    if r["winner"] is None:
        assert "does not pay off" in r["message"] and not out.exists()
    else:
        assert out.exists() and json.loads(cli("inspect", out, "--json").stdout)["base"]["verify_len"] == r["winner"] + 1
    table = cli("tune", CONTAINER, "--search", "1", "--prompts", prompts, "--repeats", 1, "-o", tmp_path / "b2.litertlm")
    assert "tok/s MTP on" in table.stdout.replace("\n", " ") or "tok/s" in table.stdout


def test_search_refuses_tflite(tmp_path):
    p = cli("tune", BASE, "--search", "1-2", "-o", tmp_path / "x.tflite", expect=2)
    assert ".litertlm" in p.stderr


def test_search_writes_the_fastest_variant(tmp_path):
    """The decision and write path. The engine cannot make MTP pay off on the tiny fixture, so the
    speeds come from a stand-in that reads each built variant's real verify length (G=2 fastest);
    the variants themselves are built, gated and written for real."""
    from mtpsurgeon.tuning.measure import Measurement
    from mtpsurgeon.tuning.search import search_draft_steps

    seen = []

    def stand_in(path, prompts, **kw):
        g = json.loads(cli("inspect", path, "--json").stdout)["base"]["verify_len"] - 1
        seen.append(g)
        return Measurement(tok_s_on={1: 110.0, 2: 150.0, 3: 90.0}[g], tok_s_off=100.0, success_rate=0.8,
                           identical=g != 3)

    out = tmp_path / "best.litertlm"
    r = search_draft_steps(CONTAINER, [1, 2, 3], out, ["w1 w2"], measure_fn=stand_in)
    assert seen == [1, 2, 3] and r.winner.draft_steps == 2 and r.output == out
    assert json.loads(cli("inspect", out, "--json").stdout)["base"]["verify_len"] == 3
    assert any("G=3" in n and "differs" in n for n in r.notes)
    assert not [p for p in tmp_path.iterdir() if p.name != "best.litertlm"]


@pytest.mark.parametrize("model,steps,message", [
    (FIXTURES / "mtp_drafter.tflite", 1, "has no 'verify' signature"),
    (FIXTURES / "gemma4-mini.litertlm", 127, "do not fit the KV cache"),
])
def test_bad_requests_refused(tmp_path, model, steps, message):
    out = tmp_path / ("out" + model.suffix)
    p = cli("tune", model, "--draft-steps", steps, "-o", out, expect=2)
    assert message in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_measure_runs_the_bench_engine(tmp_path):
    """tune --search measures through mtpsurgeon.engine (bench's runner and figures): its greedy texts are the
    test oracle's (tests/fixture_engine_probe.py), one speed-up per repeat, the fixture's success rate 1.0."""
    import mtpsurgeon.tuning as tuning
    from mtpsurgeon.tuning.measure import measure

    assert not (Path(tuning.__file__).parent / "engine_probe.py").exists()
    prompts = [l for l in (FIXTURES / "prompts.txt").read_text().splitlines() if l and not l.startswith("#")][:2]
    seen = []
    m = measure(CONTAINER, prompts, max_tokens=32, repeats=2, progress=seen.append)
    assert seen == ["repeat 1/2: MTP off", "repeat 1/2: MTP on", "repeat 2/2: MTP on", "repeat 2/2: MTP off"]
    assert m.tok_s_on > 0 and m.tok_s_off > 0 and m.identical and m.success_rate == 1.0
    assert len(m.speedup_per_repeat) == 2 and m.tokens >= 2 * 32
    pf = tmp_path / "p.txt"
    pf.write_text("\n".join(prompts) + "\n")
    assert engine(CONTAINER, "off", pf)["texts"] == m.texts_off
    assert json.loads(json.dumps(m.to_json()))["speedup"] == m.speedup


def test_measure_reports_an_engine_failure_in_one_line():
    from mtpsurgeon.errors import EngineError
    from mtpsurgeon.tuning.measure import measure

    with pytest.raises(EngineError, match=r"no-drafter\.litertlm: the LiteRT-LM engine failed with MTP on: .*") as e:
        measure(FIXTURES / "hidden" / "no-drafter.litertlm", ["w1 w2"], repeats=1)
    assert "\n" not in str(e.value)
