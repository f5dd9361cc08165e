"""Rich rendering of a bench result: runs, totals, verdict."""
from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from mtpsurgeon.api.results import BenchResult, CostModel
from mtpsurgeon.cli.render.escape import plain, text

PROMPT_WIDTH = 24  #: characters of a prompt shown in the per-prompt table
CALL_NAMES = {"decode": "decode", "verify": "verify", "draft_step": "draft step", "embedder": "embedder",
              "per_layer_embedder": "per-layer embedder"}


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
    if r.per_prompt:
        render_per_prompt(console, r)
    if r.cost is not None:
        render_cost(console, r.cost)
    elif r.cost_note:
        console.print(f"cost model: {r.cost_note}", markup=False)
    style = {"faster": "bold green", "slower": "bold red", "broken": "bold red"}.get(r.verdict_kind, "bold yellow")
    console.print(Text(r.verdict, style=style), soft_wrap=True)  # one line, so scripts can take the last one


def render_per_prompt(console: Console, r: BenchResult) -> None:
    """One row per prompt run alone: its speeds, success rate, speed-up (and the cost model's prediction).

    The figures are never cut: the prompt column gets the width that is left and ends in an ellipsis.
    """
    table = Table(title="per prompt (each alone, median over repeats; decode tok/s)", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    heads = ("#", "off", "on", "success", "tok/step", "speed-up", "predicted", "greedy")
    rows = [(str(p.index + 1), _num(p.off_decode_tokens_per_second), _num(p.on_decode_tokens_per_second),
             _num(p.success_rate, "{:.3f}"), _num(p.tokens_per_verify_step, "{:.2f}"), f"{p.speedup:.2f}×",
             _num(p.predicted_speedup, "{:.2f}×"), "same" if p.greedy_identical else "CHANGED", p.prompt)
            for p in r.per_prompt or []]
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(heads)]
    room = max(6, min(PROMPT_WIDTH, console.width - sum(widths) - 3 * (len(heads) + 1)))
    for h in heads:
        table.add_column(h, justify="right", no_wrap=True)
    table.add_column("prompt", no_wrap=True, overflow="ellipsis", max_width=room)
    for *figures, prompt in rows:
        table.add_row(*figures, text(plain(prompt, 200)))
    console.print(table)


def render_cost(console: Console, c: CostModel) -> None:
    """The timed calls, the per-token and per-cycle costs, break-even, ceiling, predicted beside measured."""
    table = Table(title=f"cost model (LiteRT interpreter, XNNPACK, {c.threads} threads; median per call)",
                  title_justify="left")
    for col in ("call", "section", "signature", "tokens", "ms", "decodes"):
        table.add_column(col, justify="left" if col in ("call", "signature") else "right")
    for call in c.calls:
        table.add_row(CALL_NAMES.get(call.role, call.role), str(call.section), text(call.signature), str(call.tokens),
                      f"{call.median_ms:.4g}", f"{call.median_ms / c.decode_ms:.2f}")
    console.print(table)
    engine = "" if c.engine_decode_ms is None else f" (engine, MTP off: {c.engine_decode_ms:.4g} ms)"
    measured = "" if c.engine_cycle_ms is None else (f" (engine, MTP on: {c.engine_cycle_ms:.4g} ms, "
                                                     f"{c.unexplained_cycle_ms:+.4g} ms beyond the calls)")
    lines = [f"engine's own work per step (MTP-off engine time − calls): {c.overhead_ms:.4g} ms",
             f"per token, MTP off: {c.decode_step_ms:.4g} ms{engine}",
             f"per cycle, MTP on (verify + {c.draft_steps} drafts + {2 * c.draft_steps + 1} embeddings + step): "
             f"{c.cycle_ms:.4g} ms{measured}",
             f"break-even success rate {c.break_even_success_rate:.3f}, ceiling {c.ceiling_speedup:.2f}× "
             "(every draft accepted)"]
    if c.predicted_speedup is not None and c.success_rate is not None:
        meas = "" if c.measured_speedup is None else f", measured {c.measured_speedup:.2f}×"
        lines.append(f"at the measured success rate {c.success_rate:.3f}: predicted {c.predicted_speedup:.2f}×{meas}")
    for line in lines:
        console.print(line, markup=False)
