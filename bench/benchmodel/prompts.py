"""Prompts of the bench model, in three kinds over the jax family's skip rule
(w_t = RULE[w_{t-1}, w_{t-3}]): acceptance depends on content, so `bench
--per-prompt` shows different success rates per kind.

* rule   - the jax fixture family's prompts: 3 seed words + 2 rule words;
* long   - 3 seed words + 9 rule words (a longer context);
* broken - rule prompts with one word replaced at random (the context leaves
           the rule, the continuation is again rule-made from there on).
"""

from pathlib import Path

import numpy as np

from fixtures.build import corpus as shared_corpus
from fixtures.build.jax import config as jcfg, corpus

PER_KIND = 8


def prompt_kinds() -> dict:
    out = {"rule": corpus.prompts(PER_KIND, 5)}
    rng = np.random.default_rng(jcfg.SEED_CORPUS + 2)
    long_, broken = [], []
    for _ in range(PER_KIND):
        seed = rng.integers(0, jcfg.NUM_RULE_WORDS, size=jcfg.LAG).tolist()
        long_.append(corpus.continue_words(seed, 9))
    for _ in range(PER_KIND):
        seed = rng.integers(0, jcfg.NUM_RULE_WORDS, size=jcfg.LAG).tolist()
        words = corpus.continue_words(seed, 4)
        words[int(rng.integers(jcfg.LAG, len(words)))] = int(rng.integers(0, jcfg.NUM_RULE_WORDS))
        broken.append(words)
    out["long"] = [" ".join(f"w{w}" for w in ws) for ws in long_]
    out["broken"] = [" ".join(f"w{w}" for w in ws) for ws in broken]
    return out


def token_ids(prompt: str) -> list:
    return [shared_corpus.word_token_id(int(w[1:])) for w in prompt.split()]


def write(path: Path, kinds: dict):
    lines = [
        "# Prompts of the mtpsurgeon bench model (bench/make_bench_model.py), one per line;",
        "# fed raw (apply_prompt_template=False; the engine prepends <bos>). Kinds: see bench/benchmodel/prompts.py.",
    ]
    for kind, ps in kinds.items():
        lines.append(f"# kind: {kind}")
        lines += ps
    Path(path).write_text("\n".join(lines) + "\n")
