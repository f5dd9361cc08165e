"""Runs the official LiteRT-LM engine (PyPI litert-lm-api) on one .litertlm file
and prints one JSON object on stdout. Meant to be run in a subprocess (a
malformed model may crash the engine): `python tests/fixture_engine_probe.py
MODEL --spec on|off|default [--prompt P ...] [--max-tokens N]`.

JSON keys: has_speculative_decoding_support (ModelInfo), engine_created,
error (str or null, from engine creation or decoding), texts (greedy output per
prompt), success_rates (every `MTP Drafter - Success rate: x` line the engine
logged; the drafter logs it when the engine is closed), log_excerpt.

The engine logs through absl to file descriptor 2, so fd 2 is redirected to a
temporary file for the duration of the run and parsed afterwards.
"""

import argparse
import json
import os
import re
import shutil
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--spec", choices=["on", "off", "default"], default="default")
    ap.add_argument("--prompt", action="append", default=[])
    ap.add_argument("--prompts-file")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--max-num-tokens", type=int, default=128)
    args = ap.parse_args()
    prompts = list(args.prompt)
    if args.prompts_file:
        with open(args.prompts_file) as f:
            prompts += [l.strip() for l in f if l.strip() and not l.startswith("#")]
    spec = {"on": True, "off": False, "default": None}[args.spec]
    # The engine writes XNNPACK cache files beside the model: run on a private copy
    # so nothing is ever written next to the (committed) input.
    workdir = tempfile.TemporaryDirectory(prefix="engine-probe-")
    model_copy = os.path.join(workdir.name, os.path.basename(args.model))
    shutil.copyfile(args.model, model_copy)

    import litert_lm

    result = {
        "model": args.model,
        "spec": args.spec,
        "has_speculative_decoding_support": None,
        "engine_created": False,
        "error": None,
        "texts": [],
        "success_rates": [],
    }
    log = tempfile.TemporaryFile(mode="w+b")
    saved = os.dup(2)
    sys.stderr.flush()
    os.dup2(log.fileno(), 2)
    try:
        try:
            with litert_lm.ModelInfo(model_copy) as mi:
                result["has_speculative_decoding_support"] = bool(mi.llm.has_speculative_decoding_support())
        except Exception as e:  # noqa: BLE001 - record whatever the engine says
            result["error"] = f"ModelInfo: {type(e).__name__}: {e}"
        try:
            eng = litert_lm.Engine(
                model_copy,
                backend=litert_lm.Backend.CPU(),
                max_num_tokens=args.max_num_tokens,
                enable_speculative_decoding=spec,
                enable_benchmark=True,
            )
            result["engine_created"] = True
            try:
                for p in prompts:
                    s = eng.create_session(
                        apply_prompt_template=False,
                        max_output_tokens=args.max_tokens,
                        sampler_config=litert_lm.SamplerConfig(top_k=1, temperature=0.0),
                    )
                    s.run_prefill([p])
                    result["texts"].append(s.run_decode().texts[0])
                    s.close()
            finally:
                eng.close()
        except Exception as e:  # noqa: BLE001
            result["error"] = f"{type(e).__name__}: {e}"
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
    log.seek(0)
    text = log.read().decode("utf-8", "replace")
    result["success_rates"] = [float(x) for x in re.findall(r"MTP Drafter - Success rate: ([0-9.eE+-]+)", text)]
    noise = re.compile(r"npu_registry|accelerator_registry|XNNPACK delegate|port\.cc|^\s*$")
    result["log_excerpt"] = [l[:400] for l in text.splitlines() if not noise.search(l)][-30:]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
