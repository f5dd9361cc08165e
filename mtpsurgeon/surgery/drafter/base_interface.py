"""What a base model dictates to a drafter built for it: KV inputs per layer type, cache length, mask."""
from __future__ import annotations

import re

from mtpsurgeon.analysis.dims import BaseDims
from mtpsurgeon.analysis.links import LinkCheck
from mtpsurgeon.formats.tflite import TFLiteModel
from mtpsurgeon.surgery.drafter.emit import DrafterInterface, KVSource
from mtpsurgeon.surgery.drafter.spec import DrafterSpec

_KV = re.compile(r"^kv_cache_([kv])_(\d+)$")


def _layers(base: BaseDims) -> dict[int, dict[str, str]]:
    out: dict[int, dict[str, str]] = {}
    for name in base.kv:
        m = _KV.match(name)
        if m:
            out.setdefault(int(m.group(2)), {})[m.group(1)] = name
    return {L: kv for L, kv in out.items() if set(kv) == {"k", "v"}}


def drafter_interface(spec: DrafterSpec, base: BaseDims, model: TFLiteModel,
                      kv_layers: dict[str, int] | None, notes: list[str]) -> tuple[DrafterInterface | None, list[LinkCheck]]:
    """Pick the base KV layer each block type reads: the last layer whose K width is the block's head_dim.

    ``kv_layers`` ({'sliding_attention': L, 'full_attention': L}) overrides the choice.
    Returns the interface (None when a layer type has no cache) and the checks that decided it.
    """
    layers = _layers(base)
    checks: list[LinkCheck] = []
    chosen: dict[str, KVSource] = {}
    taken: set[int] = set()
    kinds = sorted({b.layer_type for b in spec.blocks}, key=lambda k: k != "full_attention")  # full first
    for kind in kinds:
        blocks = [b for b in spec.blocks if b.layer_type == kind]
        hd, heads = blocks[0].head_dim, blocks[0].heads
        want = (kv_layers or {}).get(kind)
        if want is not None:
            ok = want in layers
            checks.append(LinkCheck(f"base has KV cache layer {want} ({kind}, --kv-layers)", ok,
                                    f"kv_cache_k_{want} / kv_cache_v_{want}",
                                    "present" if ok else f"base layers {sorted(layers)}"))
            if not ok:
                continue
            L = want
        else:
            fits = [L for L in sorted(layers) if base.kv[layers[L]["k"]].shape[-1:] == (hd,) and L not in taken]
            checks.append(LinkCheck(f"base has a KV cache of head_dim {hd} for {kind} blocks", bool(fits),
                                    f"kv_cache_k_L [1, kv, C, {hd}]",
                                    ", ".join(f"{n}{list(base.kv[n].shape)}" for n in sorted(base.kv)) or "no KV inputs"))
            if not fits:
                continue
            L = fits[-1]
            same = [b for b in spec.blocks if b.layer_type != kind and b.head_dim == hd]
            if same:
                notes.append(f"{kind}: sliding and full blocks share head_dim {hd}; took layer {L} "
                             "(the last one left); give --kv-layers to choose")
        taken.add(L)
        k, v = base.kv[layers[L]["k"]], base.kv[layers[L]["v"]]
        kvh = k.shape[1] if len(k.shape) == 4 else None
        checks.append(LinkCheck(f"{kind} blocks: {heads} query heads divisible by the base's KV heads",
                                bool(kvh) and heads % kvh == 0, f"divisor of {heads}", kvh))
        stated = sorted({b.kv_heads for b in blocks if b.kv_heads is not None})
        if stated:  # config.json's num_key_value_heads: the KV layout the checkpoint was trained on
            checks.append(LinkCheck(f"{kind} blocks: config num_key_value_heads = the base's KV heads",
                                    stated == [kvh], kvh, stated[0] if len(stated) == 1 else stated))
        checks.append(LinkCheck(f"kv_cache_v_{L} is V transposed [1, kv, {hd}, C]",
                                len(v.shape) == 4 and v.shape[2] == hd and len(k.shape) == 4 and v.shape[3] == k.shape[2],
                                [1, kvh, hd, k.shape[2] if len(k.shape) == 4 else "C"], list(v.shape)))
        for t in (k, v):
            if t.dtype.name not in ("FLOAT32", "INT8"):
                checks.append(LinkCheck(f"'{t.name}' dtype readable by the drafter", False, "FLOAT32 or INT8", t.dtype.name))
            elif t.dtype.name == "INT8" and (t.quantization is None or t.quantization.scheme != "per-tensor"):
                checks.append(LinkCheck(f"'{t.name}' INT8 per-tensor quantized", False, "per-tensor",
                                        None if t.quantization is None else t.quantization.scheme))
        chosen[kind] = KVSource(L, layers[L]["k"], layers[L]["v"], k, v)
        notes.append(f"{kind} blocks read the base's layer {L} ({k.dtype.name}{list(k.shape)})")
    checks.append(LinkCheck("base cache length known", base.cache_len is not None, "mask [1,1,T,C]", base.cache_len))
    if any(not c.passed for c in checks) or base.cache_len is None:
        return None, checks
    # The runtime feeds the drafter a bool mask [1,1,1,C] (what shipped drafters declare),
    # whatever form the base's own decode mask takes.
    return DrafterInterface(base.cache_len, "BOOL", chosen), checks
