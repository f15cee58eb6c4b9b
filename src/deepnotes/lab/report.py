"""Write the lab report: self-contained HTML (figures embedded), Markdown, results.json, PNGs.

The report set (``report.html``, ``report.md``, ``results.json``, ``figures/``) is written
all-or-nothing: :func:`prepare_output` checks the target folder and creates a temporary folder
beside it *before* any claim runs (so a bad ``--out`` fails in a second, not after the work);
:func:`write_report` fills that folder and then swaps it in place of the old report with two
renames. A crash or Ctrl-C leaves either the old report or the new one, never a mix, and figures
of an earlier run never linger beside the new ones.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jinja2
from markdown_it import MarkdownIt

from deepnotes.core.io import atomic_write_bytes, atomic_write_text
from deepnotes.topics import CHAPTERS

from .format import measured_rows
from .recorded import for_chapters
from .runner import ClaimRecord

REPORT_FILES = ("report.html", "report.md", "results.json")
CLAIM_TEST = "tests/lab/test_claims.py"
_REPO = Path(__file__).resolve().parents[3]  # the checkout root when installed from source (editable)


@dataclass
class Output:
    """A checked report destination: ``final`` is replaced by ``staging`` when the report is written."""

    final: Path
    staging: Path

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def existing_report_ids(out: Path) -> set[str] | None:
    """Claim IDs in ``out/results.json`` (``None`` when there is no readable report there)."""
    try:
        rows = json.loads((Path(out) / "results.json").read_text())
        return {str(r["id"]) for r in rows}
    except (OSError, ValueError, TypeError, KeyError):
        return None


def prepare_output(out: str | os.PathLike, *, partial: bool = False, all_ids: set[str] | None = None,
                   force: bool = False) -> Output:
    """Check ``out`` and create the staging folder beside it; raise ``ValueError`` naming the problem.

    Refused: a path that is a file or lies under one; a folder we cannot write (or whose parent we
    cannot write); a folder holding anything but a lab report (we would replace it); and, for a
    partial run (``--only``), a folder holding a *full* report (every claim in ``all_ids``) unless
    ``force`` — a quick look at two claims must not silently replace the full report.
    """
    shown = str(out)
    final = Path(os.path.abspath(out))  # "." or "a/.." have a real name and parent once absolute
    for parent in [final, *final.parents]:
        if parent.exists() and not parent.is_dir():
            what = "is a file" if parent == final else f"lies under the file {str(parent)!r}"
            raise ValueError(f"--out {shown!r} {what}; give a folder")
    cwd = Path.cwd()
    if final == cwd or final in cwd.parents:
        raise ValueError(f"--out {shown!r} is the current folder or holds it; the report replaces its folder, "
                         "so give a subfolder")
    if final.exists():
        foreign = sorted(p.name for p in final.iterdir() if p.name not in (*REPORT_FILES, "figures"))
        if foreign:
            raise ValueError(
                f"--out {shown!r} holds files that are not a lab report (e.g. {foreign[0]!r}); "
                "the report replaces its folder, so choose an empty or new folder"
            )
        if not os.access(final, os.W_OK | os.X_OK):
            raise ValueError(f"--out {shown!r} is not writable")
        if partial and not force and all_ids:
            have = existing_report_ids(final)
            if have is not None and all_ids <= have:
                raise ValueError(
                    f"--out {shown!r} holds a full lab report; a partial run (--only) will not replace "
                    "it: choose another --out (or add --force)"
                )
    parent = final.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=parent))
    except OSError as exc:
        raise ValueError(f"--out {shown!r} cannot be written: {exc.strerror or exc}") from None
    return Output(final, staging)


def _swap_in(staging: Path, final: Path) -> None:
    """Replace ``final`` by ``staging`` with two renames (the old report is deleted afterwards)."""
    old = None
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
        os.rmdir(old)
        os.replace(final, old)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _link(path: str, out: Path) -> str | None:
    """A relative link from the report folder to ``path`` in the checkout (``None`` if not there)."""
    target = _REPO / path
    if not path or not target.exists():
        return None
    return os.path.relpath(target, out.resolve())


_MD = MarkdownIt("commonmark", {"html": False}).enable("table")


def markdown_html(text: str) -> str:
    """Render a claim's Markdown (tables included) to HTML; raw HTML in the text is escaped."""
    return _MD.render(text) if text else ""


def chapter_counts(records: list[ClaimRecord]) -> list[dict]:
    """Per chapter: claims, holds, partly, refuted, errors and mismatches with the expected verdict."""
    rows: dict[int, dict] = {}
    for r in records:
        row = rows.setdefault(r.chapter, {"chapter": r.chapter, "title": CHAPTERS.get(r.chapter, ""), "claims": 0,
                                          "holds": 0, "partly": 0, "refuted": 0, "errors": 0, "mismatches": 0})
        row["claims"] += 1
        if r.error:
            row["errors"] += 1
        else:
            row[r.verdict] += 1
            row["mismatches"] += not r.ok
    return [rows[k] for k in sorted(rows)]


def write_report(records: list[ClaimRecord], out: str | os.PathLike | Output, *, quick: bool, seed: int,
                 seconds: float, partial: bool = False) -> dict:
    """Write ``report.html``, ``report.md``, ``results.json`` and ``figures/*.png`` as one set.

    ``out`` is a folder (checked with :func:`prepare_output`) or the :class:`Output` it returned.
    Returns the counts shown in the header.
    """
    dest = out if isinstance(out, Output) else prepare_output(out)
    try:
        counts = _write_into(records, dest.staging, dest.final, quick=quick, seed=seed, seconds=seconds,
                             partial=partial)
        _swap_in(dest.staging, dest.final)
    except BaseException:
        dest.discard()
        raise
    return counts


def _write_into(records, folder: Path, final: Path, *, quick, seed, seconds, partial) -> dict:
    (folder / "figures").mkdir(parents=True, exist_ok=True)
    items = []
    for rec in records:
        figs = []
        for i, data in enumerate(rec.figures):
            name = f"figures/{rec.id}_{i + 1}.png"
            atomic_write_bytes(folder / name, data)
            figs.append({"path": name, "b64": base64.b64encode(data).decode("ascii")})
        status = "error" if rec.error else ("ok" if rec.ok else "mismatch")
        items.append({
            "rec": rec,
            "figs": figs,
            "status": status,
            "measured": measured_rows(rec.measured),
            "details_html": markdown_html(rec.details),
            "source_link": _link(rec.module, final),
            "test_link": _link(CLAIM_TEST, final),
            "test_id": f"{CLAIM_TEST}::test_claim_quick[{rec.id}-seed0]",
        })
    chapters = []
    numbers = sorted({it["rec"].chapter for it in items})
    recorded = for_chapters(set(numbers))
    for ch in numbers:
        tables = [dict(t, html=markdown_html(t["markdown"])) for t in recorded.get(ch, [])]
        chapters.append({"number": ch, "title": CHAPTERS.get(ch, f"Chapter {ch}"),
                         "claims": [it for it in items if it["rec"].chapter == ch], "recorded": tables})
    counts = {
        "total": len(records),
        "ok": sum(r.ok for r in records),
        "errors": sum(bool(r.error) for r in records),
        "mismatches": sum((not r.error) and not r.ok for r in records),
        "holds": sum(r.verdict == "holds" for r in records if not r.error),
        "partly": sum(r.verdict == "partly" for r in records if not r.error),
        "refuted": sum(r.verdict == "refuted" for r in records if not r.error),
        "refuted_expected": sum(r.expected == "refuted" for r in records),
    }
    not_holds = [it for it in items if it["status"] != "ok" or it["rec"].verdict != "holds"]
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("deepnotes.lab", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    ctx = {"chapters": chapters, "items": items, "counts": counts, "quick": quick, "seed": seed,
           "seconds": seconds, "partial": partial, "per_chapter": chapter_counts(records), "not_holds": not_holds}
    atomic_write_text(folder / "report.html", env.get_template("report.html.j2").render(**ctx))
    atomic_write_text(folder / "report.md", _markdown(ctx))
    atomic_write_text(folder / "results.json", json.dumps([r.to_json() for r in records], indent=2) + "\n")
    return counts


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _markdown(ctx) -> str:
    counts = ctx["counts"]
    mode = "quick" if ctx["quick"] else "full"
    lines = ["# deepnotes lab report", ""]
    if ctx["partial"]:
        lines += ["> **Partial run** (`--only`): only the claims below were run.", ""]
    lines += [
        f"Mode: {mode} · seed {ctx['seed']} · {counts['total']} claims · {counts['holds']} hold · "
        f"{counts['partly']} partly · {counts['refuted']} refuted · {counts['ok']} as expected · "
        f"{counts['mismatches']} mismatches · {counts['errors']} errors · {ctx['seconds']:.1f} s",
        "",
        "| chapter | claims | holds | partly | refuted | errors | mismatches |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in ctx["per_chapter"]:
        lines += [f"| {row['chapter']} {_cell(row['title'])} | {row['claims']} | {row['holds']} | {row['partly']} | "
                  f"{row['refuted']} | {row['errors']} | {row['mismatches']} |"]
    lines += ["", "## All claims", "", "| claim | title | kind | verdict | expected | seconds |",
              "|---|---|---|---|---|---:|"]
    for it in ctx["items"]:
        rec = it["rec"]
        verdict = "ERROR" if rec.error else rec.verdict
        lines += [f"| [{rec.id}](#{rec.id}) | {_cell(rec.title)} | {rec.kind} | {verdict} | {rec.expected} | "
                  f"{rec.seconds:.1f} |"]
    lines += ["", "## Claims that do not simply hold", ""]
    if not ctx["not_holds"]:
        lines += ["Every claim run holds.", ""]
    for it in ctx["not_holds"]:
        rec = it["rec"]
        verdict = "ERROR" if rec.error else rec.verdict
        why = rec.reason or ("the measured verdict differs from the expected one" if it["status"] == "mismatch" else "")
        lines += [f"- **{rec.id}** ({verdict}, expected {rec.expected}): {why}"]
    lines += [""]
    for ch in ctx["chapters"]:
        lines += [f"## {ch['number']} {ch['title']}", ""]
        for item in ch["claims"]:
            rec = item["rec"]
            verdict = "ERROR" if rec.error else rec.verdict
            lines += [f'### <a id="{rec.id}"></a>{rec.id} — {rec.title}', ""]
            lines += [f"- **Verdict:** {verdict} (expected {rec.expected}) · {rec.kind} · {rec.seconds:.1f} s"]
            if rec.source or rec.statement:
                where = rec.source.replace("notes ", "lines ") if rec.source else "lines not given"
                lines += [f"- **The notes ({where}):** {rec.statement}"]
            if rec.reason:
                lines += [f"- **Why we expect '{rec.expected}':** {rec.reason}"]
            if rec.test:
                lines += [f"- **Test:** {rec.test}"]
            if rec.observation:
                lines += [f"- **Observation (beyond the notes, not part of the verdict):** {rec.observation}"]
            lines += [f"- **Code:** `{rec.module}` · **test:** `{item['test_id']}`"]
            if item["measured"]:
                lines += ["", "| measured | value |", "|---|---|"]
                lines += [f"| {_cell(k)} | {_cell(v)} |" for k, v in item["measured"]]
            if rec.details:
                lines += ["", rec.details]
            if rec.error:
                lines += ["", "```", rec.error.rstrip(), "```"]
            for f in item["figs"]:
                lines += ["", f"![{rec.id}]({f['path']})"]
            lines += [""]
        for t in ch["recorded"]:
            lines += [f"### Recorded: {t['table'].title}", "", _RECORDED_NOTE.format(command=t["table"].command), "",
                      t["markdown"].rstrip(), ""]
            if t["missing"]:
                lines += [f"Not yet in this table: {', '.join(t['missing'])}.", ""]
    return "\n".join(lines)


_RECORDED_NOTE = ("A recorded run of `{command}` (too costly for every lab run; the verdicts above do not "
                  "read it).")
