"""Rich overview of an inspect report, rendered from its JSON form.

Rendering from the same dict that --json prints keeps the two views honest.
Every string in it may come from the file: the dict goes through
:func:`~mtpsurgeon.cli.render.escape.plain_tree` (control characters made
visible) and is only ever put into :class:`~rich.text.Text` objects, never
into markup.
"""
from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mtpsurgeon.cli.render.escape import plain_tree
from mtpsurgeon.cli.render.formatting import human_bytes, human_count, spec

VERDICT_STYLE = {"ready": "bold green", "hidden": "bold yellow", "mismatched": "bold red", "absent": "bold red"}
#: model_types whose role the overview spells out under the sections table (the rest are self-explaining)
EXPLAINED = ("tf_lite_mtp_drafter", "tf_lite_mtp_aux", "tf_lite_artisan_text_decoder")
LISTING_LIMIT = 200  #: text listings stop here unless --all
_TABLE_ROWS = 2000  #: past this, --all prints plain aligned lines (a rich table would hold every row)


def T(*parts: str | tuple[str, str]) -> Text:
    """Literal text from plain strings and (string, style) pairs; nothing is parsed as markup."""
    return Text.assemble(*parts)


def _io_line(items: list[dict]) -> str:
    """Compact I/O list; KV-cache tensors are folded into one entry."""
    kv = [x for x in items if x["name"].startswith("kv_cache_")]
    rest = [f"{x['name']} {spec(x['dtype'], x['shape'])}" for x in items if x not in kv]
    if kv:
        rest.append(f"{len(kv)} kv_cache_* ({spec(kv[0]['dtype'], kv[0]['shape'])}, …)")
    return ", ".join(rest) or "-"


def _sections(data: dict) -> Table:
    t = Table(title="Sections", title_justify="left", expand=False, pad_edge=False)
    for col in ("#", "data type", "model_type", "backends", "offset", "size", "16K"):
        t.add_column(col, justify="right" if col in ("#", "offset", "size") else "left")
    for s in data["sections"]:
        mt = T((s["model_type"], "bold cyan" if "mtp" in s["model_type"] else "")) if s["model_type"] else T(("-", "dim"))
        bc = s.get("backend_constraint")
        t.add_row(str(s["index"]), T(s["data_type"]), mt, T(", ".join(bc)) if bc else T(("any", "dim")), str(s["begin"]),
                  human_bytes(s["size"]), T("yes") if s["aligned"] else T(("no", "red")))
    return t


def _section_roles(data: dict) -> list[Text]:
    """One line per section whose model_type needs saying: MTP helpers, GPU decoders, and unknown types."""
    lines = []
    for s in data["sections"]:
        mt = s["model_type"]
        if mt and (s.get("role") is None or mt in EXPLAINED):
            role = s.get("role") or "a model_type LiteRT-LM 0.18 does not define"
            lines.append(T(f"  section {s['index']} ", (mt, "bold"), f": {role}"))
    return lines


def _backends(mtp: dict) -> list[Text]:
    out = []
    for backend, b in (mtp.get("backends") or {}).items():
        mark = ("uses the drafter", "green") if b["uses_drafter"] else ("no drafting", "yellow")
        out.append(T(f"  {backend.upper()} engine: ", mark, f" — {b['why']}"))
    return out


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
        sub.add_row(f"subgraph {sg['index']}", T(f"{sg['name'] or '-'}: {sg['operators']} ops, {sg['tensors']} tensors — ",
                                                 (reach, "") if reach else ("no signature reaches it", "yellow")))
    for op, sgs in called.items():
        first, last = sgs[0]["index"], sgs[-1]["index"]
        span = f"{first}" if len(sgs) == 1 else f"{first}..{last}"
        sub.add_row(f"subgraphs {span}", T(f"{len(sgs)} bodies called by {op} ops (e.g. {sgs[0]['name']})"))
    for s in m["signatures"]:
        sub.add_row(T(f"sig '{s['key']}'"), T(f"in: {_io_line(s['inputs'])}\nout: {_io_line(s['outputs'])}"))
    if m["op_histogram"]:
        ops = ", ".join(f"{k}×{v}" for k, v in list(m["op_histogram"].items())[:10])
        more = len(m["op_histogram"]) - 10
        sub.add_row("ops", T(ops + (f", +{more} more" if more > 0 else "")))
    if m["params_by_dtype"]:
        sub.add_row("weights", T(", ".join(f"{k} {human_count(v['params'])} ({human_bytes(v['bytes'])})" for k, v in m["params_by_dtype"].items())))
    if m["quantization"]:
        sub.add_row("quant", T(", ".join(f"{k}×{v}" for k, v in m["quantization"].items())))
    buf = m["buffers"]
    sub.add_row("buffers", T(", ".join(f"{k} {v}" for k, v in buf.items())))
    if m.get("sparse_tensors"):
        sub.add_row("sparse", T(f"{m['sparse_tensors']} tensors stored sparse (TFLite sparsity); extract writes them dense"))
    o = m["orphans"]
    parts: list[Text] = []
    if o["tensors"]:
        parts.append(T((f"{len(o['tensors'])} orphan tensors", "yellow"), f" ({human_bytes(sum(t['bytes'] for t in o['tensors']))})"))
    if o["buffers"]:
        parts.append(T((f"{len(o['buffers'])} orphan buffers", "yellow")))
    if o["subgraphs"]:
        parts.append(T((f"{len(o['subgraphs'])} unreachable subgraphs", "yellow")))
    if o["operator_codes"]:
        parts.append(T(f"{len(o['operator_codes'])} unused operator codes"))
    sub.add_row("orphans", Text(", ").join(parts) if parts else T(("none", "green")))
    rows.append(sub)
    title = T(f"{m['label']} — {human_bytes(m['size'])}")
    return Panel(Group(*rows), title=title, title_align="left", border_style="blue")


def _orphans(data: dict, limit: int = 12) -> Table | None:
    tensors = data["orphans"]["tensors"]
    if not tensors:
        return None
    t = Table(title=f"Orphan tensors ({len(tensors)})", title_justify="left", pad_edge=False)
    for col in ("sec", "sg", "#", "name", "type", "bytes", "MTP"):
        t.add_column(col, justify="right" if col in ("sec", "sg", "#", "bytes") else "left", overflow="fold")
    for row in tensors[:limit]:
        t.add_row("-" if row["section"] is None else str(row["section"]), str(row["subgraph"]), str(row["index"]), T(row["name"]),
                  T(spec(row["dtype"], row["shape"])), human_bytes(row["bytes"]), T(("yes", "cyan")) if row.get("mtp") else "")
    if len(tensors) > limit:
        t.caption = f"… {len(tensors) - limit} more (mtpsurgeon inspect --tensors --orphans)"
    return t


def _mtp(data: dict) -> Panel:
    mtp = data["mtp"]
    body: list[Any] = [Text(mtp["summary"])]
    for f in mtp["findings"]:
        mismatched = not f["hidden"] and any(not c["passed"] for c in f["links"])
        mark = ("hidden", "yellow") if f["hidden"] else ("mismatched", "red") if mismatched else \
            ("can be added", "cyan") if f["kind"] == "mtp_addable" else ("present", "green")
        body.append(T("\n• ", mark, " ", (f["kind"], "bold"), f" at {f['where']} (confidence {f['confidence']})"))
        for e in f["evidence"]:
            body.append(Text(f"    – {e}"))
        if f["tensors"]:
            body.append(Text(f"    – {len(f['tensors'])} MTP tensors: " + ", ".join(x["name"] for x in f["tensors"][:6]) + (" …" if len(f["tensors"]) > 6 else "")))
        if f["links"]:
            passed = sum(c["passed"] for c in f["links"])
            style = "green" if passed == len(f["links"]) else "red"
            body.append(T("    ", (f"link checks {passed}/{len(f['links'])} pass", style), " (details: --json)"))
        for c in f["links"]:
            if not c["passed"]:
                body.append(T("    ", ("FAIL", "red"), f" {c['check']}: expected {c['expected']}, got {c['actual']}"))
    if mtp.get("backends"):
        body.append(Text("\nLiteRT-LM engine backends:"))
        body.extend(_backends(mtp))
    if mtp["fix"]:
        body.append(T("\nfix: ", (mtp["fix"], "bold")))
    style = VERDICT_STYLE.get(mtp["verdict"], "bold")
    return Panel(Group(*body), title=Text(f"MTP: {mtp['verdict'].upper()}", style=style), title_align="left", border_style=style.split()[-1])


def render_overview(console: Console, data: dict) -> None:
    """One-screen overview: file, sections, models, orphans, MTP verdict."""
    data = plain_tree(data)
    head = T((data["file"], "bold"), f"  {data['format']}  {human_bytes(data['size'])}")
    if "container" in data:
        c = data["container"]
        head.append(f"  v{c['version']}")
        if c.get("llm_metadata"):
            lm = c["llm_metadata"]
            keys = [f"{k}={v}" for k, v in lm.items() if not isinstance(v, (dict, list))][:4]
            head.append("  llm: " + ", ".join(keys))
    console.print(head)
    if "sections" in data:
        console.print(_sections(data))
        for line in _section_roles(data):
            console.print(line)
    for m in data["models"]:
        console.print(_model(m))
    orphans = _orphans(data)
    if orphans is not None:
        console.print(orphans)
    console.print(_mtp(data))


_TENSOR_COLUMNS = ("sec", "sg", "#", "name", "type", "quant", "buf", "bytes", "flags")


def _tensor_cells(r: dict) -> tuple[str, ...]:
    """One row's cells; ``r`` has been through :func:`plain_tree` (file strings made safe)."""
    q = r["quantization"]
    quant = "" if q is None else q["scheme"] + (f"/d{q['quantized_dimension']}" if q["scheme"] == "per-channel" else "")
    flags = [f for f in ("orphan", "mtp", "spurious_quantization") if r.get(f)] + (["sparse"] if r.get("sparsity") else [])
    return ("-" if r["section"] is None else str(r["section"]), str(r["subgraph"]), str(r["index"]), r["name"],
            spec(r["dtype"], r["shape"]), quant, str(r["buffer"]), human_bytes(r["bytes"]) if r["bytes"] else "",
            " ".join(flags))


def render_tensors(console: Console, rows: Any, limit: int | None = LISTING_LIMIT) -> None:
    """The --tensors listing: the first ``limit`` rows and a count of the rest (None: all of them).

    ``rows`` is a sized sequence (a list, or lazily made rows); very long full
    listings are printed line by line, without markup, so memory stays flat.
    """
    rows = plain_tree(rows)
    n = len(rows)
    if limit is None and n > _TABLE_ROWS:
        console.print(T(f"Tensors ({n})"), highlight=False)
        console.print(T("  ".join(_TENSOR_COLUMNS)), highlight=False)
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
        t.add_row(*(T(c) for c in _tensor_cells(r)))
    if len(shown) < n:
        t.caption = f"… {n - len(shown)} more (--all lists every one, --json streams them)"
    console.print(t)
