"""Text rendering of an :class:`~mtpsurgeon.api.results.EnableResult` (enable-mtp, build-drafter)."""
from __future__ import annotations

from mtpsurgeon.api.results import EnableResult
from mtpsurgeon.cli.render.escape import text


def render_enable(console, r: EnableResult) -> None:
    where = f"section {r.section}" if r.section is not None else "the model"
    console.print(text(f"added MTP to {where}: 'verify' over {r.verify_tokens} tokens "
                       f"(G = {r.draft_steps} draft steps)", "bold"))
    if r.activations:
        console.print(text(f"  'decode' now outputs 'activations' f32[1,1,{r.hidden}]: the input of the LM head "
                           f"(feeds '{r.lm_head}')"))
    if r.batched:
        console.print(text(f"  verify: one batched pass over {r.verify_tokens} tokens (each weight read once per call)"))
    else:
        console.print(text(f"  verify: NOT batched, {r.verify_tokens} decode calls per verify call: "
                           f"{r.unbatched_reason}", "yellow"))
    console.print(text(f"  gate: {r.equivalence['detail']}"))
    console.print(text(f"  unchanged: signatures {', '.join(r.unchanged_signatures) or '-'}; "
                       f"sections {', '.join(map(str, r.unchanged_sections)) or '-'} (byte-identical)"))
    for note in r.notes:
        console.print(text(f"  note: {note}"))
