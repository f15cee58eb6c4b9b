"""Recorded measurements shown in the lab report beside the claims: tables too costly to re-run
with every lab run (the detector zoo, the segmentation table).

Each table is the Markdown (and figure) that a documented command wrote, copied unchanged into
``deepnotes/lab/recorded/``; the report shows it in its chapter with that command, and lists the
registered models of the table's task that it does not hold yet. The lab's verdicts never read
these tables.

To refresh one: run its command, then copy ``OUT/table.md`` (and ``OUT/table.png``) over the file
named in :data:`TABLES`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from importlib import resources

from deepnotes.core.registry import MODELS


@dataclass(frozen=True)
class RecordedTable:
    """A recorded table: shown in ``chapter``; ``task`` names the models it should cover."""

    key: str
    chapter: int
    title: str
    command: str
    markdown: str
    figure: str | None
    task: str


TABLES = (
    RecordedTable("zoo", 17, "Detector zoo on shapes", "deepnotes zoo detect --models NAME --out zoo --threads 1",
                  "zoo.md", "zoo.png", "detect"),
    RecordedTable("segment", 18, "Segmentation models on shapes-seg",
                  "deepnotes segment-table --models NAME --out segtable --threads 1 (models without a target: --minutes 2)",
                  "segment.md", None, "segment"),
)


def _read(name: str) -> bytes:
    return resources.files("deepnotes.lab").joinpath("recorded", name).read_bytes()


def table_models(markdown: str) -> list[str]:
    """Model names in the first column of the Markdown table (a trailing ``*`` marker dropped)."""
    names = []
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.lstrip().startswith("|") or cells[0] in ("model", "") or set(cells[0]) <= set("-: "):
            continue
        names.append(cells[0].rstrip("* ").strip())
    return names


def load(table: RecordedTable) -> dict:
    """The table's text, figure (base64 PNG or ``None``) and the registered models it lacks."""
    text = _read(table.markdown).decode("utf-8")
    listed = set(table_models(text))
    missing = [n for n in MODELS.names() if MODELS.meta(n).get("task") == table.task and n not in listed]
    figure = base64.b64encode(_read(table.figure)).decode("ascii") if table.figure else None
    return {"table": table, "markdown": text, "figure_b64": figure, "missing": missing}


def for_chapters(chapters: set[int]) -> dict[int, list[dict]]:
    """Loaded tables of the given chapters, by chapter."""
    out: dict[int, list[dict]] = {}
    for t in TABLES:
        if t.chapter in chapters:
            out.setdefault(t.chapter, []).append(load(t))
    return out
