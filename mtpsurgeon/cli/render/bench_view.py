"""Rich rendering of a bench result: runs, totals, verdict."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mtpsurgeon.api.results import BenchResult


def _num(x: float | None, fmt: str = "{:,.0f}") -> str:
    return "—" if x is None else fmt.format(x)


def render_bench(console: Console, r: BenchResult) -> None:
    """Per-run table, per-mode totals, speed-up with spread, greedy check, verdict."""
    console.print(Text.assemble(("bench ", "bold"), r.file, f"  backend {r.backend}, {r.prompts} prompts × "
                                f"{r.max_tokens} tokens, {r.repeats} repeats, draft steps G = {r.draft_steps}"))
    runs = Table(title="runs", title_justify="left")
    for col in ("repeat", "MTP", "prefill tok/s", "decode tok/s", "success rate", "accepted / verify step"):
        runs.add_column(col, justify="right")
    for run in r.runs:
        runs.add_row(str(run.repeat), "on" if run.speculative else "off", _num(run.prefill_tokens_per_second),
                     _num(run.decode_tokens_per_second), _num(run.success_rate, "{:.3f}"),
                     _num(run.accepted_per_verify_step, "{:.2f}"))
    console.print(runs)
    totals = Table(title="total (median over repeats)", title_justify="left")
    for col in ("MTP", "prefill tok/s", "decode tok/s", "success rate", "accepted / verify step", "tokens / verify step"):
        totals.add_column(col, justify="right")
    for name, t in (("off", r.off), ("on", r.on)):
        totals.add_row(name, _num(t.prefill_tokens_per_second), _num(t.decode_tokens_per_second),
                       _num(t.success_rate, "{:.3f}"), _num(t.accepted_per_verify_step, "{:.2f}"),
                       _num(t.tokens_per_verify_step, "{:.2f}"))
    console.print(totals)
    s = r.speedup
    console.print(f"decode speed-up on/off: {s.median:.2f}× (min {s.min:.2f}×, max {s.max:.2f}×; "
                  f"per repeat {', '.join(f'{x:.2f}' for x in s.per_repeat)})", markup=False)
    same = "identical" if r.greedy_identical else f"DIFFERENT for prompts {', '.join(str(i + 1) for i in r.mismatched_prompts)}"
    console.print(f"greedy text with MTP on vs off: {same}", markup=False)
    style = {"faster": "bold green", "slower": "bold red", "broken": "bold red"}.get(r.verdict_kind, "bold yellow")
    console.print(Text(r.verdict, style=style))
