"""The two sizes of the bench model. The small model trained first is always the
jax fixture family's (hidden 64, intermediate 128, layers [sliding, full]); a
size says how wide and deep it is grown.

`full` is shaped like a Gemma 4 E2B decoder layer (hidden 1536, intermediate
6144 = 4x hidden); 10 layers of INT8 weights make ~290 MB of base weights read
per decoded token. `tiny` has the same structure at a size the tests can build
in about a minute, and keeps the drafter below 5% of the base section."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Size:
    name: str
    hidden: int
    intermediate: int
    # types of the layers inserted BEFORE the two trained ones, which stay last
    # (the drafter reads the last sliding and the last full layer's caches)
    inserted: tuple


_S, _F = "sliding_attention", "full_attention"

SIZES = {
    "full": Size("full", hidden=1536, intermediate=6144, inserted=(_S, _S, _S, _F, _S, _S, _S, _F)),
    "tiny": Size("tiny", hidden=256, intermediate=2048, inserted=(_S, _F)),
}

SEED_GROW = 31  # init of the inserted layers and of the new MLP rows
