"""Points the jax fixture family's drafter code at the grown base.

fixtures/build/jax/drafter.py reads its dimensions from fixtures.build.jax.config
at call time (cfg.H, cfg.KV_LAYERS, ...). Training uses the family's own values
(the small base); building the grown drafter, converting it and calibrating the
grown base's INT8 KV scales need the grown base's values, which this context
manager sets for the duration of the block and then restores.
"""

import contextlib

_FIELDS = ("H", "LAYER_TYPES", "BASE_LAYER_HEAD_DIMS", "LAST_SLIDING_LAYER", "LAST_FULL_LAYER", "KV_LAYERS")


@contextlib.contextmanager
def grown(big_config, kv_layers=None):
    """kv_layers: the caches base_features / kv_scales / the export wrapper use
    (default: the last sliding and the last full layer, as the drafter reads)."""
    from fixtures.build.jax import config as jcfg

    saved = {k: getattr(jcfg, k) for k in _FIELDS}
    types = list(big_config.layer_types)
    last_s = max(i for i, t in enumerate(types) if t == "sliding_attention")
    last_f = max(i for i, t in enumerate(types) if t == "full_attention")
    jcfg.H = big_config.hidden_size
    jcfg.LAYER_TYPES = types
    jcfg.BASE_LAYER_HEAD_DIMS = [jcfg.HEAD_DIM if t == "sliding_attention" else jcfg.GLOBAL_HEAD_DIM for t in types]
    jcfg.LAST_SLIDING_LAYER, jcfg.LAST_FULL_LAYER = last_s, last_f
    jcfg.KV_LAYERS = tuple(kv_layers) if kv_layers is not None else (last_s, last_f)
    try:
        yield jcfg
    finally:
        for k, v in saved.items():
            setattr(jcfg, k, v)
