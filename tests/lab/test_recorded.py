"""Recorded tables (detector zoo, segmentation) shown in the lab report's chapters."""

import dataclasses

from deepnotes.core.registry import MODELS
from deepnotes.lab import recorded
from deepnotes.lab.api import Claim, ClaimResult
from deepnotes.lab.report import write_report
from deepnotes.lab.runner import run_claim


def _claim(chapter: int) -> Claim:
    def run(quick, seed):
        return ClaimResult(measured={"x": 1.0}, test="x vs 1", holds=True)

    return Claim(f"{chapter}zz", chapter, "a fake claim", "holds", "", (), run, source="notes 1-2", statement="s")


def test_table_models_reads_the_first_column_and_drops_markers():
    text = "intro | not a row\n\n| model | mAP |\n|---|---|\n| ssd | 0.7 |\n| fpn * | 0.1 |\n"
    assert recorded.table_models(text) == ["ssd", "fpn"]


def test_every_recorded_table_is_shipped_and_names_registered_models():
    for t in recorded.TABLES:
        got = recorded.load(t)
        listed = recorded.table_models(got["markdown"])
        assert listed, t.key
        task_models = {n for n in MODELS.names() if MODELS.meta(n).get("task") == t.task}
        assert set(listed) <= task_models, set(listed) - task_models  # no stale or misspelt rows
        assert set(got["missing"]) == task_models - set(listed)
        if t.figure:
            assert got["figure_b64"].startswith("iVBOR")  # a PNG


def test_zoo_rows_were_trained_with_the_recorded_epochs():
    """A row not marked ``*`` must come from the model's recorded settings: a changed setting
    without a fresh run would leave a stale row (the epochs column is the visible check)."""
    text = recorded.load(recorded.TABLES[0])["markdown"]
    header = None
    checked = 0
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "model":
            header = cells
            continue
        if header is None or not line.lstrip().startswith("|") or set(cells[0]) <= set("-: ") or "*" in cells[0]:
            continue
        row = dict(zip(header, cells))
        assert int(row["epochs"]) == MODELS.meta(row["model"])["zoo"]["epochs"], row["model"]
        checked += 1
    assert checked >= 20


def test_report_shows_the_recorded_table_in_its_chapter_only(tmp_path):
    zoo = next(t for t in recorded.TABLES if t.key == "zoo")
    write_report([run_claim(_claim(zoo.chapter), quick=True, seed=0)], tmp_path / "a", quick=True, seed=0,
                 seconds=0.1)
    html = (tmp_path / "a" / "report.html").read_text()
    assert 'id="recorded-zoo"' in html and zoo.command in html and "<table>" in html.split('id="recorded-zoo"')[1]
    assert 'id="recorded-segment"' not in html
    md = (tmp_path / "a" / "report.md").read_text()
    assert f"### Recorded: {zoo.title}" in md and zoo.command in md

    write_report([run_claim(_claim(3), quick=True, seed=0)], tmp_path / "b", quick=True, seed=0, seconds=0.1)
    assert "Recorded:" not in (tmp_path / "b" / "report.html").read_text()


def test_report_names_the_models_a_table_lacks(tmp_path, monkeypatch):
    seg = next(t for t in recorded.TABLES if t.key == "segment")
    trimmed = "| model | mIoU |\n|---|---|\n| unet | 0.9 |\n"
    real_read = recorded._read
    monkeypatch.setattr(recorded, "_read", lambda name: trimmed.encode() if name == seg.markdown else real_read(name))
    monkeypatch.setattr(recorded, "TABLES", (dataclasses.replace(seg),))
    write_report([run_claim(_claim(seg.chapter), quick=True, seed=0)], tmp_path, quick=True, seed=0, seconds=0.1)
    html = (tmp_path / "report.html").read_text()
    assert "Not yet in this table:" in html and "fcn8s" in html.split("Not yet in this table:")[1]
