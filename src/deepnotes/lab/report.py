"""Write the lab report: self-contained HTML (figures embedded), Markdown, results.json, PNGs."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import jinja2

from deepnotes.core.io import atomic_write_bytes, atomic_write_text
from deepnotes.topics import CHAPTERS

from .runner import ClaimRecord, _plain


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _fmt(value) -> str:
    value = _plain(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        if len(value) > 12:
            return "[" + ", ".join(_fmt(v) for v in value[:12]) + f", … ({len(value)} values)]"
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    return str(value)


def write_report(records: list[ClaimRecord], out: Path, *, quick: bool, seed: int, seconds: float) -> dict:
    """Write ``report.html``, ``report.md``, ``results.json`` and ``figures/*.png`` under ``out``."""
    out = Path(out)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    sections: dict[int, list[dict]] = {}
    for rec in records:
        figs = []
        for i, fig in enumerate(rec.figures):
            data = _png(fig)
            name = f"figures/{rec.id}_{i + 1}.png"
            atomic_write_bytes(out / name, data)
            figs.append({"path": name, "b64": base64.b64encode(data).decode("ascii")})
        status = "error" if rec.error else ("ok" if rec.ok else "mismatch")
        sections.setdefault(rec.chapter, []).append(
            {
                "rec": rec,
                "figs": figs,
                "status": status,
                "measured": [(k, _fmt(v)) for k, v in rec.measured.items()],
            }
        )
    chapters = [
        {"number": ch, "title": CHAPTERS.get(ch, f"Chapter {ch}"), "claims": sections[ch]}
        for ch in sorted(sections)
    ]
    counts = {
        "total": len(records),
        "ok": sum(r.ok for r in records),
        "errors": sum(bool(r.error) for r in records),
        "mismatches": sum((not r.error) and not r.ok for r in records),
        "refuted_expected": sum(r.expected == "refuted" for r in records),
    }
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("deepnotes.lab", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    ctx = {"chapters": chapters, "counts": counts, "quick": quick, "seed": seed, "seconds": seconds}
    atomic_write_text(out / "report.html", env.get_template("report.html.j2").render(**ctx))
    atomic_write_text(out / "report.md", _markdown(chapters, counts, quick, seed, seconds))
    atomic_write_text(out / "results.json", json.dumps([r.to_json() for r in records], indent=2) + "\n")
    return counts


def _markdown(chapters, counts, quick, seed, seconds) -> str:
    lines = [
        "# deepnotes lab report",
        "",
        f"Mode: {'quick' if quick else 'full'} · seed {seed} · {counts['total']} claims · "
        f"{counts['ok']} as expected · {counts['mismatches']} mismatches · {counts['errors']} errors · "
        f"{seconds:.1f} s",
        "",
    ]
    for ch in chapters:
        lines += [f"## {ch['number']} {ch['title']}", ""]
        for item in ch["claims"]:
            rec = item["rec"]
            verdict = "ERROR" if rec.error else rec.verdict
            lines += [f"### {rec.id} — {rec.title}", ""]
            lines += [f"- **Verdict:** {verdict} (expected {rec.expected})"]
            if rec.reason:
                lines += [f"- **Why we expect '{rec.expected}':** {rec.reason}"]
            if rec.test:
                lines += [f"- **Test:** {rec.test}"]
            for k, v in item["measured"]:
                lines += [f"- `{k}` = {v}"]
            if rec.details:
                lines += ["", rec.details]
            if rec.error:
                lines += ["", "```", rec.error.rstrip(), "```"]
            for f in item["figs"]:
                lines += ["", f"![{rec.id}]({f['path']})"]
            lines += [""]
    return "\n".join(lines)
