"""``deepnotes lab``: run the claim experiments and write the report."""

from __future__ import annotations

import time
from pathlib import Path

from rich.table import Table

from deepnotes.commands._common import console, split_names


def register(sub) -> None:
    p = sub.add_parser("lab", help="run the claim experiments and write report.html/.md/results.json")
    p.add_argument("--quick", action="store_true", help="small data and few steps (seconds per claim)")
    p.add_argument("--only", nargs="+", metavar="ID", help="claim IDs (6a) or chapter numbers (6)")
    p.add_argument("--out", default="lab-report", help="output folder (default: lab-report)")
    p.add_argument("--seed", type=int, default=0, help="seed passed to every experiment (default: 0)")
    p.add_argument("--list", action="store_true", help="list the registered claims and exit")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    p.set_defaults(func=run)


def run(args) -> int:
    from deepnotes.lab.report import write_report
    from deepnotes.lab.runner import run_claim, select_claims

    con = console()
    if args.threads is not None:
        import torch

        from deepnotes.core.checks import check_int

        torch.set_num_threads(check_int("--threads", args.threads, min=1))
    claims = select_claims(split_names(args.only))
    if args.list:
        for c in claims:
            con.print(f"{c.id:>5}  ch{c.chapter:<3} expected {c.expected:<8} {c.title}")
        return 0
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    t0 = time.perf_counter()
    records = []
    for c in claims:
        with con.status(f"claim {c.id}: {c.title}", spinner="dots"):
            rec = run_claim(c, quick=args.quick, seed=args.seed)
        records.append(rec)
        mark = "[red]ERROR[/]" if rec.error else ("[green]ok[/]" if rec.ok else "[red]MISMATCH[/]")
        con.print(f"{mark} {c.id} {rec.verdict or '-'} (expected {c.expected}) {rec.seconds:.1f}s")
    seconds = time.perf_counter() - t0
    out = Path(args.out)
    counts = write_report(records, out, quick=args.quick, seed=args.seed, seconds=seconds)
    table = Table(title=f"lab: {counts['ok']}/{counts['total']} claims as expected ({seconds:.1f} s)")
    for col in ("claim", "chapter", "verdict", "expected", "seconds", "title"):
        table.add_column(col)
    for r in records:
        verdict = "[red]error[/]" if r.error else (r.verdict if r.ok else f"[red]{r.verdict}[/]")
        table.add_row(r.id, str(r.chapter), verdict, r.expected, f"{r.seconds:.1f}", r.title)
    con.print(table)
    con.print(f"report: {(out / 'report.html').resolve()}")
    for r in records:
        if r.error:
            con.print(f"[red]claim {r.id} raised:[/]\n{r.error}")
    return 0 if counts["ok"] == counts["total"] else 1
