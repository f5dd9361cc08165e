"""Faithful round trips on both fixture families: transformers parity and LiteRT round-trip error per position.

    python bench/bench_roundtrip.py [--keep DIR] [--checkpoint FAMILY=DIR ...]

For each family's float drafter (``fixtures/mtp_drafter_f32.tflite``,
``fixtures/jax/mtp_drafter_f32.tflite``):

1. ``extract --names hf --dtype f32`` (or the given ``--checkpoint`` folder, e.g.
   one written by another version), then transformers' ``Gemma4AssistantForCausalLM``
   against the LiteRT drafter at positions spread over the cache
   (``mtpsurgeon.extract.parity.check_parity``): max |Δlogits|, max |Δprojected|, top-1;
2. ``build-drafter CHECKPOINT --base FAMILY/gemma4-mini.litertlm --quant f32`` and
   the rebuilt drafter against the original in the LiteRT interpreter at the same
   kind of positions: max relative error of logits and projected activations, top-1.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]

FAMILIES = {"torch": HERE.parent / "fixtures", "jax": HERE.parent / "fixtures" / "jax"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keep", type=Path, help="Keep the work files here.")
    ap.add_argument("--checkpoint", action="append", default=[], metavar="FAMILY=DIR",
                    help="Use this --names hf folder instead of extracting one (for before/after figures).")
    args = ap.parse_args()
    given = dict(a.split("=", 1) for a in args.checkpoint)
    import roundtripkit as R

    from mtpsurgeon.analysis import analyze
    from mtpsurgeon.extract.parity import check_parity

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        for fam, fx in FAMILIES.items():
            drafter, work = fx / "mtp_drafter_f32.tflite", root / fam
            work.mkdir(parents=True, exist_ok=True)
            hf = Path(given[fam]) if fam in given else None
            if hf is None:
                R.cli("extract", drafter, "-o", work / "hf", "--names", "hf", "--dtype", "f32", "--no-models")
                hf = work / "hf"
            rm = next(iter(analyze(drafter).models[0].roles.values()))
            p = check_parity(hf, drafter, rm, samples=20)
            print(f"{fam}: transformers parity over {p.samples} positions (cache {p.cache_length}, sliding window "
                  f"{p.sliding_window}): max |Δlogits| {p.logits_max_abs:.2e}, max |Δprojected| "
                  f"{p.projected_max_abs:.2e}, top-1 {p.top1_agree:.0%} ({'ok' if p.passed() else 'FAILED'})")
            for row in p.per_position:
                print(f"  pos {row['position']:4d}  |Δlogits| {row['logits_max_abs']:.2e}  |Δprojected| "
                      f"{row['projected_max_abs']:.2e}  top-1 {'same' if row['top1'] else 'differs'}")
            rebuilt = work / "rebuilt.tflite"
            R.cli("build-drafter", hf, "--base", fx / "gemma4-mini.litertlm", "-o", rebuilt, "--quant", "f32",
                  "--force")
            rows = R.compare(drafter, rebuilt, R.spread(p.cache_length, p.sliding_window, 20))
            print(f"{fam}: round trip over {len(rows)} positions: logits max rel error "
                  f"{max(r['logits_rel'] for r in rows):.2e}, projected {max(r['projected_rel'] for r in rows):.2e}, "
                  f"top-1 {sum(r['top1'] for r in rows)}/{len(rows)}")


if __name__ == "__main__":
    main()
