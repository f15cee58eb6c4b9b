"""``deepnotes topics``: every item of the topic map with its status, chapter by chapter.

Statuses (derived, see :mod:`deepnotes.topics.model`): ``reference-tested`` only where the map
declares what the tests compare against and the test files name it; ``no reference (hand-checked)``
where no library has the method; ``partly done`` where the item names a missing part; ``todo``.
"""

from __future__ import annotations

import re

from rich.table import Table

from deepnotes.commands._common import console

_STYLE = {
    "reference-tested": "green",
    "no reference (hand-checked)": "cyan",
    "tests, reference not declared": "yellow",
    "implemented, untested": "yellow",
    "partly done": "yellow",
    "todo": "dim",
}


def register(sub) -> None:
    p = sub.add_parser("topics", help="list every topic item with its status")
    p.add_argument("--chapter", type=int, help="only this chapter")
    p.add_argument("--todo", action="store_true", help="only items not yet reference-tested or hand-checked")
    p.add_argument("--where", action="store_true", help="add a column with the file that implements each item")
    p.set_defaults(func=run)


def status_rows(chapter: int | None = None):
    """(topic, implemented, reference_tested, claims in the lab, claims of its chapter not in the lab) per item."""
    from deepnotes.lab.loader import load_claims
    from deepnotes.topics import CHAPTERS, CLAIM_TEXT, TOPICS

    if chapter is not None and chapter not in CHAPTERS:
        raise ValueError(f"--chapter must be one of {', '.join(map(str, CHAPTERS))}, got {chapter}")
    registry = load_claims()
    in_lab = {registry.get(n).id for n in registry.names()}
    by_topic: dict[str, list[str]] = {}
    for n in registry.names():
        for t in registry.get(n).topics:
            by_topic.setdefault(t, []).append(n)
    rows = []
    for t in TOPICS:
        if chapter is not None and t.chapter != chapter:
            continue
        chapter_claims = sorted(c for c in CLAIM_TEXT if int(re.match(r"\d+", c).group()) == t.chapter)
        proven = by_topic.get(t.id, [])
        rows.append((t, t.implemented, t.reference_tested, proven, [c for c in chapter_claims if c not in in_lab]))
    return rows


def summary(rows) -> dict[str, int]:
    """Counts of items by status, plus the total and the claims in the lab."""
    counts = {"items": len(rows)}
    for t, *_ in rows:
        counts[t.status] = counts.get(t.status, 0) + 1
    counts["claims in lab"] = len({c for r in rows for c in r[3]})
    return counts


def run(args) -> int:
    from deepnotes.topics import CHAPTERS

    con = console()
    rows = status_rows(args.chapter)
    done = ("reference-tested", "no reference (hand-checked)")
    table = Table(title="deepnotes topic map", show_lines=False)
    table.add_column("ID", no_wrap=True)
    table.add_column("title", overflow="fold")
    table.add_column("status", overflow="fold")
    table.add_column("claims in lab", overflow="fold")
    if args.where:
        table.add_column("where", overflow="fold")
    current = None
    for t, _impl, _tested, proven, _missing in rows:
        if args.todo and t.status in done:
            continue
        if t.chapter != current:
            current = t.chapter
            table.add_row("", f"[bold]{t.chapter} {CHAPTERS.get(t.chapter, '')}[/]", "", "", *([""] if args.where else []))
        status = f"[{_STYLE[t.status]}]{t.status}[/]"
        if t.todo:
            status += f" [dim](missing: {t.todo})[/]"
        extra = [t.where or "-"] if args.where else []
        table.add_row(t.id, t.title, status, ", ".join(proven) or "-", *extra)
    con.print(table)
    counts = summary(rows)
    con.print(
        f"{counts['items']} items: " + " · ".join(f"{counts.get(s, 0)} {s}" for s in (
            "reference-tested", "no reference (hand-checked)", "partly done", "tests, reference not declared",
            "implemented, untested", "todo")) + f" · claims in lab: {counts['claims in lab']}"
    )
    return 0
