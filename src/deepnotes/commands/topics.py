"""``deepnotes topics``: every item of the topic map with its status."""

from __future__ import annotations

from rich.table import Table

from deepnotes.commands._common import console


def register(sub) -> None:
    p = sub.add_parser("topics", help="list every topic item with its status")
    p.add_argument("--chapter", type=int, help="only this chapter")
    p.add_argument("--todo", action="store_true", help="only items not yet reference-tested")
    p.set_defaults(func=run)


def status_rows(chapter: int | None = None):
    """(id, title, implemented, reference_tested, claims) for each item, in map order."""
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
        chapter_claims = sorted(c for c in CLAIM_TEXT if int(c[:-1]) == t.chapter)
        proven = by_topic.get(t.id, [])
        rows.append((t, t.implemented, t.reference_tested, proven, [c for c in chapter_claims if c not in in_lab]))
    return rows


def run(args) -> int:
    con = console()
    rows = status_rows(args.chapter)
    table = Table(title="deepnotes topic map")
    for col in ("ID", "title", "implemented", "reference-tested", "claims in lab"):
        table.add_column(col, overflow="fold")
    yes, no = "[green]yes[/]", "[dim]no[/]"
    shown = 0
    for t, impl, tested, proven, _ in rows:
        if args.todo and tested:
            continue
        shown += 1
        title = t.title if len(t.title) <= 70 else t.title[:67] + "…"
        table.add_row(t.id, title, yes if impl else no, yes if tested else no, ", ".join(proven) or "-")
    con.print(table)
    n = len(rows)
    con.print(
        f"{sum(r[1] for r in rows)}/{n} implemented · {sum(r[2] for r in rows)}/{n} reference-tested · "
        f"claims in lab: {len({c for r in rows for c in r[3]})}"
    )
    return 0
