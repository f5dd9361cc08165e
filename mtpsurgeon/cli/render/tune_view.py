"""Terminal rendering of `mtpsurgeon tune` results (model strings escaped, never markup)."""
from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mtpsurgeon.api.tune import SearchResult, TuneResult


def render_tune(console: Console, model: str, r: TuneResult) -> None:
    c = r.change
    console.print(f"[bold]{escape(model)}[/]: verify {c.source_tokens} -> {c.tokens} tokens "
                  f"(draft steps {r.source_draft_steps} -> {r.draft_steps})"
                  + (f", section {r.section}" if r.section is not None else ""))
    console.print(f"  rewrote {c.tensors} tensor shapes, {len(c.constants)} shape constants"
                  + (f", {c.options} option fields" if c.options else ""))
    console.print(f"  gate: {escape(r.equivalence.describe())}")
    console.print(f"  unchanged: {', '.join(escape(k) for k in r.unchanged_signatures) or '-'}"
                  + (" and every other section, byte for byte" if r.section is not None else ""))
    if r.links:
        console.print(f"  drafter link checks {sum(c['passed'] for c in r.links)}/{len(r.links)} pass")
    for n in r.notes:
        console.print(f"  {escape(n)}")
    console.print(f"[green]wrote[/] {escape(str(r.output))}")


def render_search(console: Console, model: str, r: SearchResult) -> None:
    t = Table(title=f"draft length search: {escape(model)}", title_justify="left")
    for col in ("G", "tok/s MTP on", "tok/s MTP off", "speedup", "predicted", "success rate", "break-even",
                "greedy identical", "note"):
        t.add_column(col, justify="right" if col.startswith(("tok", "speed", "succ", "G", "pred", "break")) else "left")
    for v in r.variants:
        m = v.measurement
        note = "input's own G" if v.source else ""
        if r.winner is v:
            note = (note + ", " if note else "") + "fastest, written"
        if m is None:
            t.add_row(str(v.draft_steps), "-", "-", "-", "-", "-", "-", "-", escape(v.error or ""))
            continue
        t.add_row(str(v.draft_steps), f"{m.tok_s_on:.0f}", f"{m.tok_s_off:.0f}", f"{m.speedup:.2f}x",
                  "-" if v.predicted_speedup is None else f"{v.predicted_speedup:.2f}x",
                  "-" if m.success_rate is None else f"{m.success_rate:.2f}",
                  "-" if v.break_even_success_rate is None else f"{v.break_even_success_rate:.2f}",
                  "yes" if m.identical else "NO", note)
    console.print(t)
    for n in r.notes:
        console.print(escape(n))
    console.print(escape(r.message))
    if r.hint:
        console.print(escape(r.hint))
