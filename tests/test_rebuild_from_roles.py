"""restore's default rebuild of a pruned drafter: its stored weights, placed by the role model, emitted by the
same semantic description as build-drafter (no JSON recipe), on the torch family and its other quantizations.
The oracle is the LiteRT interpreter running the converter's own drafter."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import FIXTURES
from mtpsurgeon.analysis import analyze
from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.formats.open import open_file
from mtpsurgeon.formats.tflite.writer import tflite_bytes
from mtpsurgeon.surgery.drafter.from_roles import rebuild_from_roles, spec_from_roles
from mtpsurgeon.surgery.ir import Model
from ai_edge_litert.interpreter import Interpreter
from test_recipes import GT_CONTAINER, GT_DRAFTER, PRUNED_CONTAINER, prune_all_ops

REL_TOL = 1e-5


def compare(truth: bytes, rebuilt: bytes, positions=(0, 9, 63, 127)) -> dict[str, float]:
    """Worst relative difference per output on the runtime's kind of input: a causal mask at each position,
    random activations and caches of unit scale (0.5 sigma)."""
    a = Interpreter(model_content=truth).get_signature_runner("mtp_drafter")
    b = Interpreter(model_content=rebuilt).get_signature_runner("mtp_drafter")
    assert set(a.get_input_details()) == set(b.get_input_details())
    rng = np.random.default_rng(5)
    worst: dict[str, float] = {}
    for pos in positions:
        feed = {}
        for name, d in a.get_input_details().items():
            shape = tuple(d["shape"])
            feed[name] = ((np.arange(shape[-1]) <= pos).reshape(shape) if name == "mask" else
                          np.array([pos], np.int32) if name == "input_pos" else
                          (rng.standard_normal(shape) * 0.5).astype(d["dtype"]))
        want, got = a(**feed), b(**feed)
        for k in want:
            rel = float(np.abs(want[k] - got[k]).max()) / max(float(np.abs(want[k]).max()), 1e-30)
            worst[k] = max(worst.get(k, 0.0), rel)
    return worst


def assert_close(worst: dict[str, float], outputs: set[str]) -> None:
    assert set(worst) == outputs
    assert all(rel <= REL_TOL for rel in worst.values()), worst


def _rebuilt(path, base=None) -> tuple[bytes, list, list[str]]:
    report = analyze(path, base=base)
    (f,) = [f for f in report.findings if f.kind == "pruned_ops"]
    ma = next(m for m in report.models if m.section_index == f.section)
    ir, used, notes = rebuild_from_roles(ma.model, ma.roles[f.subgraph], report.base)
    return tflite_bytes(ir), used, notes


def test_container_drafter_rebuilt_within_float_rounding_of_the_converters():
    data, used, notes = _rebuilt(PRUNED_CONTAINER)
    assert len(used) == 44
    assert_close(compare(GT_DRAFTER.read_bytes(), data), {"logits", "projected_activations"})
    assert any("soft-cap 30 from the constants left" in n for n in notes)
    # every weight is the stored tensor, byte for byte, with its quantization
    stored = open_file(PRUNED_CONTAINER)
    model = Model.from_buffer(data)
    by_name = {t.name: t for t in model.graphs[0].tensors if t.buffer is not None}
    for t in used:
        got = by_name[t.name]
        assert bytes(got.buffer.data) == bytes(stored.model(5).tensor_bytes(t)), t.name
        assert got.dtype == t.dtype.code


@pytest.mark.parametrize("variant", ["mtp_drafter_blockwise.tflite", "mtp_drafter_f32.tflite"])
def test_other_quantizations_rebuild_from_roles(variant, tmp_path):
    """Prune the INT4-blockwise and float twins as the fixture generator does; rebuild without a recipe."""
    truth = (FIXTURES / variant).read_bytes()
    data, _, _ = _rebuilt(prune_all_ops(truth, tmp_path / f"pruned-{variant}"), GT_CONTAINER)
    assert_close(compare(truth, data), {"logits", "projected_activations"})


def test_missing_roles_are_listed():
    report = analyze(PRUNED_CONTAINER)
    (f,) = [f for f in report.findings if f.kind == "pruned_ops"]
    ma = next(m for m in report.models if m.section_index == f.section)
    rm = ma.roles[f.subgraph]
    dropped = next(i for i, r in rm.roles.items() if r.label == "layers.2.q_norm")
    del rm.roles[dropped]
    with pytest.raises(SurgeryError, match=r"missing layers\.2\.q_norm"):
        spec_from_roles(ma.model, rm)
