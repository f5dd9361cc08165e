"""Builds OUTDIR/bench.litertlm and OUTDIR/prompts.txt (see make_bench_model.py).

Steps, each through the fixture generator's own modules (fixtures/build/):
1. train the jax family's small base and drafter (jax/base.py, jax/drafter.py;
   its skip-rule corpus is what keeps the drafter's success rate below 1);
2. grow the base (grow.py) and check it against the small one: logits and greedy
   continuations of every prompt;
3. export the grown base with litert-torch export_hf (base_model.export_base:
   decode + prefill + verify with `activations`, externalized tf_lite_embedder);
4. grow the drafter (check its steps against the small one), convert with
   litert-torch, name weights, quantize with ai-edge-quantizer (INT4 per-channel,
   INT8 LM head), INT8 KV inputs, JAX/TF names - as the jax family does;
5. base: INT8 KV caches (jax/kv_int8.py), then INT8 per-channel weights of every
   FULLY_CONNECTED with ai-edge-quantizer;
6. pack with litert-lm-builder (deterministic metadata), then measure with the
   LiteRT-LM engine (fixtures/build/engine.py): success rate, MTP on == off.
"""

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from . import grow, jax_config, prompts, report
from .sizes import Size

GREEDY_CHECK_TOKENS = 32


def log(msg):
    print(f"[bench-model {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def build(out_dir: Path, size: Size, keep_work: bool = False, no_mtp: bool = False) -> dict:
    from fixtures.build import base_model, engine, pack, tflite_io
    from fixtures.build.jax import base as jbase, config as jcfg, drafter as jdrafter, drafter_export, kv_int8
    from fixtures.build.jax import naming as jnaming

    t0 = time.time()
    out_dir.mkdir(parents=True, exist_ok=True)
    W = out_dir / "work"
    if W.exists():
        shutil.rmtree(W)
    W.mkdir()
    times = {}

    def lap(name, since=[t0]):
        times[name] = round(time.time() - since[0], 1)
        since[0] = time.time()

    prompt_kinds = prompts.prompt_kinds()
    prompts_tmp = W / "prompts.txt"
    prompts.write(prompts_tmp, prompt_kinds)

    # 1. small base + drafter (the jax fixture family's, same seeds)
    log("training the small base (jax fixture family)")
    small = jbase.train(log)
    acc = jbase.rule_accuracy(small)
    log(f"small base rule accuracy {acc:.3f}")
    small_scales = jdrafter.kv_scales(small)
    log("training the drafter on the small base")
    d_small, step_acc = jdrafter.train_drafter(small, small_scales, log)
    lap("train")

    # 2. grow the base and check it
    log(f"growing the base to hidden {size.hidden}, intermediate {size.intermediate}, "
        f"{len(size.inserted) + len(small.config.layer_types)} layers")
    big = grow.grow_base(small, size)
    check = _check_base(small, big, prompt_kinds)
    log(f"grown base: max |logit diff| {check['max_logit_diff']:.2e}, greedy equal on "
        f"{check['greedy_equal']}/{check['prompts']} prompts")
    assert check["greedy_equal"] == check["prompts"], "the grown base must continue every prompt like the small one"
    hf_dir = W / "base_hf"
    big.save_pretrained(hf_dir)
    base_model.make_tokenizer(hf_dir)
    lap("grow")

    # 3. export the grown base (float)
    log("exporting the grown base with litert-torch export_hf")
    export_dir = W / "export"
    base_model.export_base(hf_dir, export_dir, W)
    lap("export_base")

    # 4. the grown drafter
    scale = grow.act_scale(small.config, size)
    off = len(size.inserted)
    with jax_config.grown(big.config, kv_layers=range(big.config.num_hidden_layers)):
        scales = jdrafter.kv_scales(big)  # calibration of every cache of the grown base ...
    for name, s in small_scales.items():  # ... the trained layers keep the scales the drafter was trained with
        k, layer = name.rsplit("_", 1)
        scales[f"{k}_{int(layer) + off}"] = s
    with jax_config.grown(big.config):
        d_big = grow.grow_drafter(d_small, jdrafter.MtpDrafter(), small.config.hidden_size, size.hidden, scale)
        dcheck = _check_drafter(small, big, d_small, d_big, small_scales, scales)
        log(f"grown drafter: max |logit diff| {dcheck:.2e} over {jcfg.VERIFY_LENGTH - 1} unrolled steps")
        # inside the grown config: the export traces the grown drafter
        _, q_t, weights, drafter_recipe = drafter_export.convert_and_quantize(d_big, W)
    drafter_path = W / "mtp_drafter.tflite"
    mm = tflite_io.read(q_t)
    kv_int8.kv_to_int8(mm, scales)
    jnaming.rename(mm, jnaming.weight_names(sorted(weights)))
    tflite_io.write(mm, drafter_path)
    lap("drafter")

    # 5. base: INT8 KV caches, then INT8 weights
    log("base: INT8 KV caches + INT8 per-channel weights (ai-edge-quantizer)")
    unpacked, base_recipe = _int8_base(export_dir / "model.litertlm", W / "unpacked", scales)
    lap("quantize_base")

    # 6. pack, measure
    final = out_dir / "bench.litertlm"
    tmp = out_dir / ".bench.tmp.litertlm"  # the engine wants the .litertlm suffix
    pack.repack(unpacked, tmp, drafter=drafter_path)
    log("measuring with the LiteRT-LM engine (MTP on / off)")
    eng = engine.measure(tmp, prompts_tmp)
    lap("pack_and_engine")
    on, off_ = eng["on"], eng["off"]
    rates = on.get("success_rates") or []
    # the engine may finish its last MTP cycle past max_tokens: on's text extends off's
    same = on.get("texts") is not None and len(on["texts"]) == len(off_.get("texts") or []) and all(
        a.split()[: len(b.split())] == b.split() for a, b in zip(on["texts"], off_["texts"])
    )
    log(f"engine success rate {rates}, greedy text MTP on == off: {same}")
    assert same and rates and on.get("error") is None, f"engine: MTP changed the text or failed: {eng}"
    info = report.describe(tmp, big.config, size)
    info.update(
        scale=size.name,
        small_base_rule_accuracy=round(acc, 4),
        drafter_train_step_accuracy=[round(a, 4) for a in step_acc],
        grown_base_check=check,
        grown_drafter_max_logit_diff=dcheck,
        kv_int8_scales=scales,
        engine={"success_rate": rates[0] if rates else None, "greedy_on_equals_off": same, "max_tokens": 32},
        quantization={"base": "INT8 per-channel (FULLY_CONNECTED), INT8 per-tensor KV caches",
                      "drafter": "INT4 per-channel, INT8 per-channel LM head, INT8 KV inputs",
                      "recipes": json.loads(json.dumps({"base": base_recipe, "drafter": drafter_recipe}, default=str))},
        seconds=times,
        versions=report.versions(),
    )
    if no_mtp:  # the same grown base exported without --assistant_model: no verify, no activations, no drafter
        log("no-MTP variant: exporting the grown base without the assistant")
        info["no_mtp"] = _no_mtp_variant(hf_dir, W, scales, out_dir)
        lap("no_mtp_variant")
    info["seconds"]["total"] = round(time.time() - t0, 1)
    info["work_dir_bytes"] = sum(p.stat().st_size for p in W.rglob("*") if p.is_file())
    os.replace(tmp, final)
    shutil.copyfile(prompts_tmp, out_dir / "prompts.txt")
    if not keep_work:
        shutil.rmtree(W)
    return info


def _int8_base(export: Path, unpacked: Path, scales: dict):
    """Unpack an export's container; INT8 KV caches, then INT8 per-channel FULLY_CONNECTED weights, in place."""
    from fixtures.build import pack, tflite_io
    from fixtures.build.jax import kv_int8

    pack.unpack(export, unpacked)
    pd_path = pack.prefill_decode_path(unpacked)
    bm = tflite_io.read(pd_path)
    assert all((b.offset or 0) <= 1 for b in bm.buffers), "export wrote external buffers; tflite_io cannot edit them"
    kv_int8.kv_to_int8(bm, scales)
    f32_kv = unpacked.parent / f"{unpacked.name}_f32_kvint8.tflite"
    tflite_io.write(bm, f32_kv)
    del bm
    recipe = _quantize_base(f32_kv, pd_path)
    os.chmod(pd_path, 0o644)
    f32_kv.unlink()
    return unpacked, recipe


def _no_mtp_variant(hf_dir: Path, W: Path, scales: dict, out_dir: Path) -> dict:
    """OUTDIR/bench-nomtp.litertlm: what a package exported without MTP (the 12B case) looks like at these
    proportions; `mtpsurgeon build-drafter` with the bench model's own drafter checkpoint re-enables MTP."""
    from fixtures.build import base_model, pack

    export_dir = W / "export_nomtp"
    base_model.export_base(hf_dir, export_dir, W, assistant=False)
    unpacked, _ = _int8_base(export_dir / "model.litertlm", W / "unpacked_nomtp", scales)
    final, tmp = out_dir / "bench-nomtp.litertlm", out_dir / ".bench-nomtp.tmp.litertlm"
    pack.repack(unpacked, tmp)
    sections = [{"index": i, "data_type": t, "model_type": items.get("model_type"), "bytes": len(data)}
                for i, t, items, data in pack.section_bytes(tmp)]
    os.replace(tmp, final)
    return {"file": final.name, "file_bytes": final.stat().st_size, "sections": sections,
            "export": "base_model.export_base(assistant=False), then the same INT8 KV + INT8 weights"}


def _quantize_base(f32_path: Path, out_path: Path):
    from ai_edge_quantizer import qtyping, quantizer

    q = quantizer.Quantizer(str(f32_path))
    q.add_dynamic_config(
        regex=".*",
        operation_name=qtyping.TFLOperationName.FULLY_CONNECTED,
        num_bits=8,
        granularity=qtyping.QuantGranularity.CHANNELWISE,
    )
    q.quantize().export_model(str(out_path), overwrite=True)
    return q.get_quantization_recipe()


@torch.no_grad()
def _check_base(small, big, prompt_kinds) -> dict:
    """Logits on a corpus batch and greedy continuations of every prompt, small vs grown."""
    from fixtures.build import config as tcfg
    from fixtures.build.jax import corpus

    ids = torch.from_numpy(corpus.training_batch(np.random.default_rng(5), 8))
    diff = (small(input_ids=ids).logits - big(input_ids=ids).logits).abs().max().item()
    tok = prompts.token_ids
    equal, n = 0, 0
    for kind in prompt_kinds.values():
        for p in kind:
            x = torch.tensor([[tcfg.BOS_ID] + tok(p)])
            a = small.generate(x, max_new_tokens=GREEDY_CHECK_TOKENS, do_sample=False)
            b = big.generate(x, max_new_tokens=GREEDY_CHECK_TOKENS, do_sample=False)
            equal += int(torch.equal(a, b))
            n += 1
    return {"max_logit_diff": diff, "greedy_equal": equal, "prompts": n, "tokens": GREEDY_CHECK_TOKENS}


@torch.no_grad()
def _check_drafter(small, big, d_small, d_big, small_scales, scales) -> float:
    """Unrolled draft steps of both drafters on their bases' features: max |logit diff|."""
    from fixtures.build.jax import config as jcfg, corpus, drafter as jdrafter

    ids = torch.from_numpy(corpus.training_batch(np.random.default_rng(6), 4))
    N = ids.shape[1]
    t = N // 2
    mask = (torch.arange(N) <= t).reshape(1, 1, 1, N).expand(ids.shape[0], 1, 1, N)
    pos = torch.full((ids.shape[0],), t)

    def unroll(base, d, kv_scales):
        emb, acts, caches = jdrafter.base_features(base, ids, kv_scales)
        act, out = acts[:, t : t + 1], []
        for j in range(1, jcfg.VERIFY_LENGTH):
            logits, act = d.step(torch.cat([emb[:, t + j : t + j + 1], act], -1), pos, mask, caches)
            out.append(logits)
        return torch.stack(out)

    with jax_config.grown(small.config):
        ls = unroll(small, d_small, small_scales)
    lb = unroll(big, d_big, scales)  # inside the caller's grown(big.config)
    worst = (ls - lb).abs().max().item()
    return worst
