"""One sentence answering "does MTP pay off on this machine?" from the measured figures."""
from __future__ import annotations

FASTER_AT = 1.05  #: median speed-up from which (with every repeat above 1.0) MTP counts as faster
SLOWER_AT = 0.95  #: median speed-up below which (with every repeat below 1.0) MTP counts as slower


def decide(median: float, low: float, high: float, identical: bool, repeats: int) -> tuple[str, str]:
    """(kind, sentence); kind is 'faster', 'slower', 'unclear' or 'broken'.

    >>> decide(1.41, 1.3, 1.5, True, 3)
    ('faster', 'MTP speeds decoding up 1.4× here')
    >>> decide(0.52, 0.5, 0.6, True, 3)[1]
    'MTP slows decoding here: leave it off'
    >>> decide(1.02, 0.97, 1.08, True, 3)[1]
    'MTP makes no clear difference here (0.97×–1.08× over 3 repeats)'
    """
    if not identical:
        return "broken", "MTP changes the greedy text here: the drafter or verify path is wrong, do not ship it"
    if median >= FASTER_AT and low > 1.0:
        return "faster", f"MTP speeds decoding up {median:.1f}× here"
    if median <= SLOWER_AT and high < 1.0:
        return "slower", "MTP slows decoding here: leave it off"
    return "unclear", f"MTP makes no clear difference here ({low:.2f}×–{high:.2f}× over {repeats} repeats)"
