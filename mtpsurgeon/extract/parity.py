"""Does the ``--names hf`` checkpoint compute what the LiteRT drafter computes?

Runs the drafter's signature in the LiteRT interpreter and transformers'
``Gemma4AssistantForCausalLM`` (loaded from the written folder) on the same
random inputs — activations, KV caches (LiteRT stores V transposed), a mask
of valid cache positions, the position — and compares projected activations
and logits (after the documented soft-cap correction). Positions are spread
over the whole cache (:func:`sample_positions`: the first and last, both
sides of the sliding window's edge, and evenly between), one input each, so a
RoPE or window the config gets wrong shows at the positions it changes. torch and transformers
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
    per_position: list[dict] = field(default_factory=list)  #: {position, logits_max_abs, projected_max_abs, top1}
    cache_length: int | None = None
    sliding_window: int | None = None  #: the config's (transformers' convention: window + 1 keys)
    notes: list[str] = field(default_factory=list)
    quantized: bool = False  #: LiteRT holds integer weights (its kernels quantize activations at run time)

    logits_scale: float = 0.0  #: largest |logit| LiteRT gave: the tolerances are relative to it (at least 1)
    projected_scale: float = 0.0  #: largest |projected activation| LiteRT gave

    def passed(self, logits_tol: float = 1e-3, projected_tol: float = 1e-4) -> bool:
        """Float drafters: within the tolerances (relative to the outputs' scale, at least 1) and the same top-1
        everywhere. Integer drafters: the same top-1 everywhere (the remaining gap is the runtime's activation
        quantization, reported). Relative, because float32 itself loses ~1e-3 of a logit of 20 on badly
        conditioned random inputs (transformers float32 vs float64 differ that much); a wrong RoPE or
        window costs whole logits."""
        within = (self.logits_max_abs <= logits_tol * max(1.0, self.logits_scale)
                  and self.projected_max_abs <= projected_tol * max(1.0, self.projected_scale))
        return self.top1_agree == 1.0 and (within or self.quantized)

    def to_json(self) -> dict:
        return dict(self.__dict__, passed=self.passed())


def sample_positions(cache_len: int, window: int | None, samples: int) -> list[int]:
    """``samples`` positions spread over ``[0, cache_len)``, plus 0, the last, and both sides of the window's edge.

    >>> sample_positions(128, 32, 5)
    [0, 31, 32, 33, 34, 64, 95, 127]
    """
    picks = {0, cache_len - 1, *np.linspace(0, cache_len - 1, max(samples, 2)).round().astype(int).tolist()}
    if window is not None and window < cache_len:  # window + 1 keys: the edge moves at position `window`
        picks |= {p for p in (window - 1, window, window + 1, window + 2) if 0 <= p < cache_len}
    return sorted(int(p) for p in picks)


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
                 seed: int = 0, signature: str | None = None, emulate_quantized: set[str] | None = None,
                 reference_kernels: bool = False) -> ParityResult:
    """Compare the checkpoint in ``hf_dir`` with the LiteRT drafter (model bytes or path).

    ``samples``: how many positions to spread evenly over the cache (the window's
    edge and the last position are added; ``ParityResult.per_position`` has each).

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

    kw = {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES} if reference_kernels or emulate_quantized else {}
    interp = (Interpreter(model_content=drafter, **kw) if isinstance(drafter, bytes)
              else Interpreter(model_path=str(drafter), **kw))
    keys = list(interp.get_signature_list())
    runner = interp.get_signature_runner(signature or keys[0])
    details = runner.get_input_details()
    res = ParityResult(samples, quantized=bool(emulate_quantized))
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
    except (RuntimeError, ValueError, KeyError) as e:  # e.g. a config whose shapes contradict the weights
        res.samples = 0
        res.notes.append(f"transformers cannot load the checkpoint: {str(e).strip().splitlines()[0]}")
        return res  # top-1 agreement 0: failed
    cfg = model.config.get_text_config()
    if emulate_quantized:
        _emulate_int8_inputs(model, emulate_quantized)
        if "model.embed_tokens.weight" in emulate_quantized:
            _emulate_int8_inputs(model, {"lm_head.weight"})
    cap = roles.arch.get("softcap")
    if emulate_quantized:
        res.notes.append(f"{len(emulate_quantized)} weights are integers in LiteRT: reference kernels, and their "
                         "layers' inputs quantized per row to int8 in the transformers forward, as the runtime does")
    kv_of = {}
    for b in roles.blocks:
        k = next((n for n in b.kv_inputs if "_k_" in n), None)
        v = next((n for n in b.kv_inputs if "_v_" in n), None)
        if k and v and b.layer_type:
            kv_of.setdefault(b.layer_type, (k, v))
    rng = np.random.default_rng(seed)
    cache_len = next(d["shape"][-1] for n, d in details.items() if "mask" in n)
    window = getattr(cfg, "sliding_window", None) if "sliding_attention" in kv_of else None
    res.cache_length, res.sliding_window = int(cache_len), window
    agree = 0
    positions = sample_positions(cache_len, window, samples)
    for pos in positions:
        valid = pos + 1  # the runtime's mask: every cache position up to the drafter's
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
        d_logits = float(np.abs(logits - out["logits"]).max())
        d_proj = float(np.abs(hf.last_hidden_state.numpy() - out["projected_activations"]).max())
        top1 = bool(np.argmax(logits.reshape(-1)) == np.argmax(out["logits"].reshape(-1)))
        res.per_position.append({"position": pos, "logits_max_abs": d_logits, "projected_max_abs": d_proj,
                                 "top1": top1})
        res.logits_scale = max(res.logits_scale, float(np.abs(out["logits"]).max()))
        res.projected_scale = max(res.projected_scale, float(np.abs(out["projected_activations"]).max()))
        res.logits_max_abs = max(res.logits_max_abs, d_logits)
        res.projected_max_abs = max(res.projected_max_abs, d_proj)
        agree += int(top1)
    res.samples = len(positions)
    res.top1_agree = agree / len(positions)
    return res
