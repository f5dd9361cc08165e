"""Rich overview of an inspect report, rendered from its JSON form.

Rendering from the same dict that --json prints keeps the two views honest.
"""
from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mtpsurgeon.cli.render.formatting import human_bytes, human_count, spec

VERDICT_STYLE = {"ready": "bold green", "hidden": "bold yellow", "absent": "bold red"}
LISTING_LIMIT = 200  #: text listings stop here unless --all
_TABLE_ROWS = 2000  #: past this, --all prints plain aligned lines (a rich table would hold every row)


def _io_line(items: list[dict]) -> str:
    """Compact I/O list; KV-cache tensors are folded into one entry."""
    kv = [x for x in items if x["name"].startswith("kv_cache_")]
    rest = [f"{x['name']} {spec(x['dtype'], x['shape'])}" for x in items if x not in kv]
    if kv:
        rest.append(f"{len(kv)} kv_cache_* ({spec(kv[0]['dtype'], kv[0]['shape'])}, …)")
    return ", ".join(rest) or "-"


def _sections(data: dict) -> Table:
    t = Table(title="Sections", title_justify="left", expand=False, pad_edge=False)
    for col in ("#", "data type", "model_type", "offset", "size", "16K"):
        t.add_column(col, justify="right" if col in ("#", "offset", "size") else "left")
    for s in data["sections"]:
        mt = s["model_type"] or "[dim]-[/]"
        if s["model_type"] and "mtp" in s["model_type"]:
            mt = f"[bold cyan]{mt}[/]"
        t.add_row(str(s["index"]), s["data_type"], mt, str(s["begin"]), human_bytes(s["size"]), "yes" if s["aligned"] else "[red]no[/]")
    return t


def _model(m: dict) -> Panel:
    rows: list[Any] = []
    sub = Table.grid(padding=(0, 1))
    sub.add_column(style="dim")
    sub.add_column()
    called: dict[str, list[dict]] = {}
    for sg in m["subgraphs"]:
        reach = sg["reached_by"]
        if reach and reach.startswith("called by"):
            called.setdefault(reach.split("(")[-1].rstrip(")"), []).append(sg)
            continue
        reach = reach or "[yellow]no signature reaches it[/]"
        sub.add_row(f"subgraph {sg['index']}", f"{sg['name'] or '-'}: {sg['operators']} ops, {sg['tensors']} tensors — {reach}")
    for op, sgs in called.items():
        first, last = sgs[0]["index"], sgs[-1]["index"]
        span = f"{first}" if len(sgs) == 1 else f"{first}..{last}"
        sub.add_row(f"subgraphs {span}", f"{len(sgs)} bodies called by {op} ops (e.g. {sgs[0]['name']})")
    for s in m["signatures"]:
        sub.add_row(f"sig '{s['key']}'", f"in: {_io_line(s['inputs'])}\nout: {_io_line(s['outputs'])}")
    if m["op_histogram"]:
        ops = ", ".join(f"{k}×{v}" for k, v in list(m["op_histogram"].items())[:10])
        more = len(m["op_histogram"]) - 10
        sub.add_row("ops", ops + (f", +{more} more" if more > 0 else ""))
    if m["params_by_dtype"]:
        sub.add_row("weights", ", ".join(f"{k} {human_count(v['params'])} ({human_bytes(v['bytes'])})" for k, v in m["params_by_dtype"].items()))
    if m["quantization"]:
        sub.add_row("quant", ", ".join(f"{k}×{v}" for k, v in m["quantization"].items()))
    buf = m["buffers"]
    sub.add_row("buffers", ", ".join(f"{k} {v}" for k, v in buf.items()))
    o = m["orphans"]
    parts = []
    if o["tensors"]:
        parts.append(f"[yellow]{len(o['tensors'])} orphan tensors[/] ({human_bytes(sum(t['bytes'] for t in o['tensors']))})")
    if o["buffers"]:
        parts.append(f"[yellow]{len(o['buffers'])} orphan buffers[/]")
    if o["subgraphs"]:
        parts.append(f"[yellow]{len(o['subgraphs'])} unreachable subgraphs[/]")
    if o["operator_codes"]:
        parts.append(f"{len(o['operator_codes'])} unused operator codes")
    sub.add_row("orphans", ", ".join(parts) or "[green]none[/]")
    rows.append(sub)
    title = f"{m['label']} — {human_bytes(m['size'])}"
    return Panel(Group(*rows), title=title, title_align="left", border_style="blue")


def _orphans(data: dict, limit: int = 12) -> Table | None:
    tensors = data["orphans"]["tensors"]
    if not tensors:
        return None
    t = Table(title=f"Orphan tensors ({len(tensors)})", title_justify="left", pad_edge=False)
    for col in ("sec", "sg", "#", "name", "type", "bytes", "MTP"):
        t.add_column(col, justify="right" if col in ("sec", "sg", "#", "bytes") else "left", overflow="fold")
    for row in tensors[:limit]:
        t.add_row("-" if row["section"] is None else str(row["section"]), str(row["subgraph"]), str(row["index"]), row["name"],
                  spec(row["dtype"], row["shape"]), human_bytes(row["bytes"]), "[cyan]yes[/]" if row.get("mtp") else "")
    if len(tensors) > limit:
        t.caption = f"… {len(tensors) - limit} more (mtpsurgeon inspect --tensors --orphans)"
    return t


def _mtp(data: dict) -> Panel:
    mtp = data["mtp"]
    body: list[Any] = [Text(mtp["summary"])]
    for f in mtp["findings"]:
        mark = "[yellow]hidden[/]" if f["hidden"] else "[green]present[/]"
        body.append(Text.from_markup(f"\n• {mark} [bold]{f['kind']}[/] at {f['where']} (confidence {f['confidence']})"))
        for e in f["evidence"]:
            body.append(Text(f"    – {e}"))
        if f["tensors"]:
            body.append(Text(f"    – {len(f['tensors'])} MTP tensors: " + ", ".join(x["name"] for x in f["tensors"][:6]) + (" …" if len(f["tensors"]) > 6 else "")))
        if f["links"]:
            passed = sum(c["passed"] for c in f["links"])
            style = "green" if passed == len(f["links"]) else "red"
            body.append(Text.from_markup(f"    [{style}]link checks {passed}/{len(f['links'])} pass[/] (details: --json)"))
        for c in f["links"]:
            if not c["passed"]:
                body.append(Text.from_markup(f"    [red]FAIL[/] {c['check']}: expected {c['expected']}, got {c['actual']}"))
    if mtp["fix"]:
        body.append(Text.from_markup(f"\nfix: [bold]{mtp['fix']}[/]"))
    style = VERDICT_STYLE.get(mtp["verdict"], "bold")
    return Panel(Group(*body), title=Text(f"MTP: {mtp['verdict'].upper()}", style=style), title_align="left", border_style=style.split()[-1])


def render_overview(console: Console, data: dict) -> None:
    """One-screen overview: file, sections, models, orphans, MTP verdict."""
    head = f"[bold]{data['file']}[/]  {data['format']}  {human_bytes(data['size'])}"
    if "container" in data:
        c = data["container"]
        head += f"  v{c['version']}"
        if c.get("llm_metadata"):
            lm = c["llm_metadata"]
            keys = [f"{k}={v}" for k, v in lm.items() if not isinstance(v, (dict, list))][:4]
            head += "  llm: " + ", ".join(keys)
    console.print(head)
    if "sections" in data:
        console.print(_sections(data))
    for m in data["models"]:
        console.print(_model(m))
    orphans = _orphans(data)
    if orphans is not None:
        console.print(orphans)
    console.print(_mtp(data))


_TENSOR_COLUMNS = ("sec", "sg", "#", "name", "type", "quant", "buf", "bytes", "flags")


def _tensor_cells(r: dict) -> tuple[str, ...]:
    q = r["quantization"]
    quant = "" if q is None else q["scheme"] + (f"/d{q['quantized_dimension']}" if q["scheme"] == "per-channel" else "")
    flags = [f for f in ("orphan", "mtp", "spurious_quantization") if r.get(f)]
    return ("-" if r["section"] is None else str(r["section"]), str(r["subgraph"]), str(r["index"]), r["name"],
            spec(r["dtype"], r["shape"]), quant, str(r["buffer"]), human_bytes(r["bytes"]) if r["bytes"] else "",
            " ".join(flags))


def render_tensors(console: Console, rows: Any, limit: int | None = LISTING_LIMIT) -> None:
    """The --tensors listing: the first ``limit`` rows and a count of the rest (None: all of them).

    ``rows`` is a sized sequence (e.g. LazyRows); very long full listings are
    printed line by line, without markup, so memory stays flat.
    """
    n = len(rows)
    if limit is None and n > _TABLE_ROWS:
        console.print(f"Tensors ({n})", markup=False, highlight=False)
        console.print("  ".join(_TENSOR_COLUMNS), markup=False, highlight=False)
        out = console.file
        for r in rows:
            out.write("  ".join(_tensor_cells(r)) + "\n")
        out.flush()
        return
    shown = rows[: n if limit is None else limit]
    t = Table(title=f"Tensors ({n})", title_justify="left", pad_edge=False)
    for col in _TENSOR_COLUMNS:
        t.add_column(col, justify="right" if col in ("sec", "sg", "#", "buf", "bytes") else "left", overflow="fold")
    for r in shown:
        t.add_row(*(Text(c) for c in _tensor_cells(r)))
    if len(shown) < n:
        t.caption = f"… {n - len(shown)} more (--all lists every one, --json streams them)"
    console.print(t)
