"""Builds the bench model: a Gemma 4-shaped .litertlm with real proportions on
which MTP pays off, made with Google's toolchain like the fixtures.

    python bench/make_bench_model.py OUTDIR [--scale full|tiny] [--no-mtp] [--force] [--keep-work]

Writes OUTDIR/bench.litertlm (prefill_decode with `verify` + `activations`,
tf_lite_embedder, tf_lite_mtp_drafter, tokenizer, LLM metadata),
OUTDIR/prompts.txt and OUTDIR/bench.json (what was built: dimensions, section
bytes, engine success rate, check results, time per step, versions).
With --no-mtp it also writes OUTDIR/bench-nomtp.litertlm: the same grown base
exported without `--assistant_model` (no `verify`, no `activations`, no
drafter), the shape of a package shipped without MTP such as 12B.
Suggested OUTDIR: ~/.cache/mtpsurgeon-bench (never inside the repository).

Runs in the fixture generator's virtual environment
(${FIXTURE_VENV:-~/.cache/mtpsurgeon-fixture-venv}, made by fixtures/build/build.sh);
started from another Python it re-executes itself there. Deterministic: fixed
seeds, one torch thread, PYTHONHASHSEED=0, fixed container metadata. An OUTDIR
that already holds a complete model of the same scale and generator is reused
(exit 0, nothing rebuilt) unless --force.
"""

import argparse
import hashlib
import importlib.util
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONHASHSEED": "0", "TOKENIZERS_PARALLELISM": "false",
       "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def fixture_python() -> Path:
    return Path(os.environ.get("FIXTURE_VENV", Path.home() / ".cache" / "mtpsurgeon-fixture-venv")) / "bin" / "python"


def generator_key(scale: str) -> str:
    """Hash of the scale and every generator source file: a cached model is reused only if it matches."""
    h = hashlib.sha256(scale.encode())
    files = sorted((HERE / "benchmodel").glob("*.py")) + sorted((REPO / "fixtures" / "build").rglob("*.py"))
    for p in files + [REPO / "fixtures" / "build" / "requirements.txt", Path(__file__).resolve()]:
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--scale", choices=["full", "tiny"], default="full")
    ap.add_argument("--force", action="store_true", help="rebuild even if OUTDIR holds a matching model")
    ap.add_argument("--no-mtp", action="store_true",
                    help="also write OUTDIR/bench-nomtp.litertlm, the base exported without MTP")
    ap.add_argument("--keep-work", action="store_true", help="keep OUTDIR/work (intermediate files)")
    args = ap.parse_args(argv)
    out = args.outdir.expanduser().resolve()
    if out == REPO or REPO in out.parents:
        print(f"make_bench_model: {out}: OUTDIR must be outside the repository", file=sys.stderr)
        return 2
    key = generator_key(args.scale)
    done = out / "bench.json"
    wanted = [out / "bench.litertlm"] + ([out / "bench-nomtp.litertlm"] if args.no_mtp else [])
    if not args.force and done.is_file() and all(p.is_file() for p in wanted):
        try:
            if json.loads(done.read_text()).get("generator_key") == key:
                print(f"make_bench_model: {out / 'bench.litertlm'} is up to date (scale {args.scale})")
                return 0
        except ValueError:
            pass
    if importlib.util.find_spec("litert_torch") is None or any(os.environ.get(k) != v for k, v in ENV.items()):
        py = fixture_python()
        if not py.is_file():
            print(f"make_bench_model: {py}: no fixture venv; create it with bash fixtures/build/build.sh "
                  "(or set FIXTURE_VENV)", file=sys.stderr)
            return 2
        if Path(sys.prefix).resolve() == py.parent.parent.resolve() and importlib.util.find_spec("litert_torch") is None:
            print(f"make_bench_model: {py}: litert_torch is not installed there", file=sys.stderr)
            return 2
        rest = sys.argv[1:] if argv is None else list(argv)
        os.execve(str(py), [str(py), str(Path(__file__).resolve()), *rest], {**os.environ, **ENV})
    sys.path[:0] = [str(REPO), str(HERE)]
    os.chdir(REPO)
    from benchmodel import build, sizes

    info = build.build(out, sizes.SIZES[args.scale], keep_work=args.keep_work, no_mtp=args.no_mtp)
    info["generator_key"] = key
    info["command"] = (f"python bench/make_bench_model.py {args.outdir} --scale {args.scale}"
                       + (" --no-mtp" if args.no_mtp else ""))
    done.write_text(json.dumps(info, indent=1) + "\n")
    e = info["engine"]
    print(f"make_bench_model: wrote {out / 'bench.litertlm'} ({info['file_bytes']} bytes; base weights per token "
          f"{info['base_weight_bytes_per_token']} bytes; drafter/base {info['drafter_to_base_ratio']}); "
          f"engine success rate {e['success_rate']}; {info['seconds']['total']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
