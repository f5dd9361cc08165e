"""The examples that end each verb's ``--help`` (git / litert-lm style), in one place.

Each example is a purpose and one command line on the bundled fixtures (run from a
clone's root). ``cli/main.py`` attaches them as the command's epilog when the group
loads a verb; click's ``\\b`` marker keeps the lines from being rewrapped.
"""
from __future__ import annotations

#: verb -> (what the example does, the command line); "mtpsurgeon" is the group's own help
EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    "mtpsurgeon": (
        ("Where is the drafter, and will MTP draft on CPU?",
         "mtpsurgeon inspect fixtures/hidden/untagged-drafter.litertlm"),
        ("Add a drafter built from a Hugging Face assistant checkpoint:",
         "mtpsurgeon build-drafter fixtures/assistant --base fixtures/hidden/no-drafter.litertlm -o with-mtp.litertlm --quant int4c"),
    ),
    "inspect": (
        ("Where is the drafter, and on which engine backends will MTP draft?",
         "mtpsurgeon inspect fixtures/hidden/untagged-drafter.litertlm"),
        ("The orphaned tensors, one JSON row each:",
         "mtpsurgeon inspect fixtures/hidden/pruned-drafter.litertlm --tensors --orphans --json"),
    ),
    "extract": (
        ("A folder transformers' from_pretrained loads, checked against the LiteRT drafter:",
         "mtpsurgeon extract fixtures/gemma4-mini.litertlm -o assistant --names hf --dtype f32 --check-parity"),
        ("The drafter section alone, copied out byte for byte:",
         "mtpsurgeon extract fixtures/gemma4-mini.litertlm -o out --section mtp_drafter"),
    ),
    "restore": (
        ("Re-tag a drafter section that lost its model_type:",
         "mtpsurgeon restore fixtures/hidden/untagged-drafter.litertlm -o fixed.litertlm"),
        ("Graft a drafter into a container that has none:",
         "mtpsurgeon restore fixtures/hidden/no-drafter.litertlm --drafter fixtures/mtp_drafter.tflite -o grafted.litertlm"),
    ),
    "bench": (
        ("MTP off vs on, with the cost model's explanation:",
         "mtpsurgeon bench fixtures/gemma4-mini.litertlm --prompts fixtures/prompts.txt --max-tokens 32"),
        ("Each prompt's success rate and speed-up, as JSON:",
         "mtpsurgeon bench fixtures/jax/gemma4-mini.litertlm --prompts fixtures/jax/prompts.txt --per-prompt --json"),
    ),
    "tune": (
        ("Draft 1 token per cycle instead of 3:",
         "mtpsurgeon tune fixtures/gemma4-mini.litertlm --draft-steps 1 -o g1.litertlm"),
        ("Measure G = 1..4 with the engine and write the fastest:",
         "mtpsurgeon tune fixtures/gemma4-mini.litertlm --search 1-4 --prompts fixtures/prompts.txt -o tuned.litertlm"),
    ),
    "build-drafter": (
        ("Build an INT4 drafter from a gemma4_assistant checkpoint and graft it:",
         "mtpsurgeon build-drafter fixtures/assistant --base fixtures/hidden/no-drafter.litertlm -o with-mtp.litertlm --quant int4c"),
        ("The same for a base exported without MTP (verify and activations are added first):",
         "mtpsurgeon build-drafter fixtures/assistant --base fixtures/no-mtp/gemma4-mini-nomtp.litertlm -o nomtp-mtp.litertlm --quant int4c"),
    ),
    "enable-mtp": (
        ("Add decode's activations and a verify over 4 tokens (no drafter):",
         "mtpsurgeon enable-mtp fixtures/no-mtp/gemma4-mini-nomtp.litertlm -o enabled.litertlm"),
        ("The same with 2 draft steps per cycle, as JSON:",
         "mtpsurgeon enable-mtp fixtures/no-mtp/gemma4-mini-nomtp.litertlm -o enabled-g2.litertlm --draft-steps 2 --json"),
    ),
}


def epilog(verb: str) -> str | None:
    """The ``Examples:`` block for ``verb``'s help, or None for a verb without examples."""
    examples = EXAMPLES.get(verb)
    if not examples:
        return None
    lines = ["\b", "Examples:"]
    for purpose, command in examples:
        lines += [f"  {purpose}", f"    $ {command}"]
    return "\n".join(lines)
