"""Drafter ↔ base link checks: does this drafter fit this base model?"""
from __future__ import annotations

from dataclasses import dataclass

from mtpsurgeon.analysis.dims import BaseDims
from mtpsurgeon.analysis.drafter import DrafterMatch
from mtpsurgeon.analysis.signatures import kv_inputs


@dataclass(frozen=True)
class LinkCheck:
    """One check, with the numbers that decided it."""

    name: str
    passed: bool
    expected: object
    actual: object

    def to_json(self) -> dict:
        return {"check": self.name, "passed": self.passed, "expected": self.expected, "actual": self.actual}


def link_checks(drafter: DrafterMatch, base: BaseDims) -> list[LinkCheck]:
    """Every check the LiteRT-LM runtime relies on when it pairs the two."""
    H = base.hidden
    checks = [
        LinkCheck("activations width = 2 x base hidden", H is not None and drafter.activations_width == 2 * H,
                  None if H is None else 2 * H, drafter.activations_width),
        LinkCheck("projected width = base hidden", H is not None and drafter.projected_width == H, H, drafter.projected_width),
        LinkCheck("vocab matches base logits", base.vocab is not None and drafter.vocab == base.vocab, base.vocab, drafter.vocab),
    ]
    dkv = kv_inputs(drafter.io)
    if not dkv:
        checks.append(LinkCheck("KV inputs match base kv caches", False, sorted(base.kv), []))
    for name, t in sorted(dkv.items()):
        b = base.kv.get(name)
        want = "no such input in the base" if b is None else f"{b.dtype.name}{list(b.shape)}"
        got = f"{t.dtype.name}{list(t.shape)}"
        checks.append(LinkCheck(f"KV input '{name}' matches base", want == got, want, got))
    mask = drafter.io.inputs.get("mask")
    if mask is not None and base.cache_len is not None:
        checks.append(LinkCheck("mask length = base cache length", mask.shape[-1:] == (base.cache_len,), base.cache_len,
                                mask.shape[-1] if mask.shape else None))
    checks.append(LinkCheck("base has a 'verify' signature", base.has_verify, True, base.has_verify))
    steps = None if base.verify_len is None else base.verify_len - 1
    checks.append(LinkCheck("draft steps = verify length - 1 >= 1", steps is not None and steps >= 1, ">= 1", steps))
    return checks
