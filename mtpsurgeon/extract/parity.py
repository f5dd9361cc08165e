"""Does the ``--names hf`` checkpoint compute what the LiteRT drafter computes?

Runs the drafter's signature in the LiteRT interpreter and transformers'
``Gemma4AssistantForCausalLM`` (loaded from the written folder) on the same
random inputs — activations, KV caches (LiteRT stores V transposed), a mask
of valid cache positions, the position — and compares projected activations
and logits (after the documented soft-cap correction). torch and transformers
are optional: :func:`parity_available` says whether they can be imported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mtpsurgeon.analysis.roles.model import RoleMap


def parity_available() -> bool:
    """True when torch and transformers can be imported (they are optional)."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class ParityResult:
    """Worst differences over the samples, and top-1 agreement."""

    samples: int
    logits_max_abs: float = 0.0
    projected_max_abs: float = 0.0
    top1_agree: float = 0.0
    positions: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    quantized: bool = False  #: LiteRT holds integer weights (its kernels quantize activations at run time)

    def passed(self, logits_tol: float = 1e-3, projected_tol: float = 1e-4) -> bool:
        """Float drafters: within the tolerances and the same top-1 everywhere. Integer drafters: the
        same top-1 everywhere (the remaining gap is the runtime's activation quantization, reported)."""
        within = self.logits_max_abs <= logits_tol and self.projected_max_abs <= projected_tol
        return self.top1_agree == 1.0 and (within or self.quantized)

    def to_json(self) -> dict:
        return dict(self.__dict__, passed=self.passed())


def _fill(details: dict, rng: np.random.Generator, pos: int, valid: int) -> dict[str, np.ndarray]:
    feed = {}
    for name, d in details.items():
        shape, dtype = tuple(d["shape"]), d["dtype"]
        if name == "input_pos":
            feed[name] = np.full(shape, pos, dtype)
        elif name == "param_tensor":
            p = np.zeros(shape, dtype)
            p.reshape(-1)[:2] = (pos, 1)
            feed[name] = p
        elif "mask" in name:
            valid_mask = np.arange(shape[-1]) < valid
            feed[name] = np.broadcast_to(valid_mask if dtype == np.bool_ else np.where(valid_mask, 0, -1e9), shape).astype(dtype)
        elif dtype == np.int8:
            feed[name] = rng.integers(-127, 128, size=shape).astype(np.int8)
        else:
            feed[name] = rng.standard_normal(shape).astype(dtype)
    return feed


def _dequant(details: dict, name: str, x: np.ndarray) -> np.ndarray:
    if x.dtype != np.int8:
        return x.astype(np.float32)
    scale, zero = details[name]["quantization"]
    return ((x.astype(np.float32) - zero) * scale).astype(np.float32)


def _emulate_int8_inputs(model, names: set[str]) -> None:
    """Quantize the inputs of the named Linear layers per row to int8, as LiteRT's hybrid kernels do."""
    import torch

    def hook(_module, args):
        x = args[0]
        scale = x.abs().amax(dim=-1, keepdim=True).clamp_min(1e-30) / 127.0
        return (torch.round(x / scale).clamp(-127, 127) * scale,)

    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and f"{name}.weight" in names:
            module.register_forward_pre_hook(hook)


def check_parity(hf_dir: str | Path, drafter: bytes | str | Path, roles: RoleMap, *, samples: int = 20,
                 seed: int = 0, signature: str | None = None, emulate_quantized: set[str] | None = None) -> ParityResult:
    """Compare the checkpoint in ``hf_dir`` with the LiteRT drafter (model bytes or path).

    ``emulate_quantized`` names checkpoint weights that LiteRT stores as integers.
    LiteRT's hybrid kernels quantize those layers' inputs to int8 at run time,
    which a float forward does not; with it, the drafter runs on the
    interpreter's reference kernels (XNNPACK quantizes activations its own way)
    and the transformers forward quantizes those inputs per row to int8 the
    same way, so what remains is the dump's own error.
    """
    import torch
    import transformers
    from ai_edge_litert.interpreter import Interpreter

    from ai_edge_litert.interpreter import OpResolverType

    kw = {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES} if emulate_quantized else {}
    interp = (Interpreter(model_content=drafter, **kw) if isinstance(drafter, bytes)
              else Interpreter(model_path=str(drafter), **kw))
    keys = list(interp.get_signature_list())
    runner = interp.get_signature_runner(signature or keys[0])
    details = runner.get_input_details()
    model = transformers.AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
    cfg = model.config.get_text_config()
    if emulate_quantized:
        _emulate_int8_inputs(model, emulate_quantized)
        if "model.embed_tokens.weight" in emulate_quantized:
            _emulate_int8_inputs(model, {"lm_head.weight"})
    cap = roles.arch.get("softcap")
    roped = any(b.rope for b in roles.blocks)
    res = ParityResult(samples, quantized=bool(emulate_quantized))
    if emulate_quantized:
        res.notes.append(f"{len(emulate_quantized)} weights are integers in LiteRT: reference kernels, and their "
                         "layers' inputs quantized per row to int8 in the transformers forward, as the runtime does")
    if not roped:
        res.notes.append("the drafter applies no RoPE; transformers always rotates q, so positions are 0 "
                         "(where the rotation is the identity)")
    kv_of = {}
    for b in roles.blocks:
        k = next((n for n in b.kv_inputs if "_k_" in n), None)
        v = next((n for n in b.kv_inputs if "_v_" in n), None)
        if k and v and b.layer_type:
            kv_of.setdefault(b.layer_type, (k, v))
    rng = np.random.default_rng(seed)
    cache_len = next(d["shape"][-1] for n, d in details.items() if "mask" in n)
    window = getattr(cfg, "sliding_window", None) or cache_len
    agree = 0
    for s in range(samples):
        # with RoPE the drafter knows its position, so it can be checked past the sliding window too; without
        # it (position 0) its window would sit at the first key while transformers' sits at the last
        valid = int(rng.integers(1, (cache_len if roped else min(cache_len, window)) + 1))
        pos = valid - 1 if roped else 0
        res.positions.append(pos)
        feed = _fill(details, rng, pos, valid)
        out = runner(**feed)
        shared = {}
        for kind, (k, v) in kv_of.items():
            kk = torch.from_numpy(_dequant(details, k, feed[k]))
            vv = torch.from_numpy(_dequant(details, v, feed[v])).transpose(-1, -2).contiguous()
            shared[kind] = (kk, vv)
        with torch.no_grad():
            hf = model(inputs_embeds=torch.from_numpy(feed["activations"].astype(np.float32)),
                       position_ids=torch.tensor([[pos]]), attention_mask=torch.ones(1, valid, dtype=torch.long),
                       shared_kv_states={k: (a[:, :, :valid], b[:, :, :valid]) for k, (a, b) in shared.items()})
        logits = hf.logits.numpy()
        if cap:
            logits = cap * np.tanh(logits / cap)
        res.logits_max_abs = max(res.logits_max_abs, float(np.abs(logits - out["logits"]).max()))
        res.projected_max_abs = max(res.projected_max_abs,
                                    float(np.abs(hf.last_hidden_state.numpy() - out["projected_activations"]).max()))
        agree += int(np.argmax(logits.reshape(-1)) == np.argmax(out["logits"].reshape(-1)))
    res.top1_agree = agree / samples
    return res
