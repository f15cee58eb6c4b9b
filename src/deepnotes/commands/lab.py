"""``deepnotes lab``: run the claim experiments and write the report.

Where the report goes: ``--out`` (default ``lab-report`` for a full run, ``lab-report-partial``
for a run with ``--only``, so a quick look at two claims never replaces the full report). A partial
run given an ``--out`` that holds a full report is refused unless ``--force``. The folder is checked
before any claim runs, and the report set is swapped in all at once when the run ends.
"""

from __future__ import annotations

import time

from rich.table import Table

from deepnotes.commands._common import THREADS_HELP, console, split_names, thread_count

FULL_OUT = "lab-report"
PARTIAL_OUT = "lab-report-partial"


def register(sub) -> None:
    p = sub.add_parser("lab", help="run the claim experiments and write report.html/.md/results.json")
    p.add_argument("--quick", action="store_true", help="small data and few steps (seconds per claim)")
    p.add_argument("--only", nargs="+", metavar="ID", help="claim IDs (6a) or chapter numbers (6)")
    p.add_argument("--out", default=None,
                   help=f"output folder (default: {FULL_OUT}; {PARTIAL_OUT} with --only); replaced as a whole")
    p.add_argument("--force", action="store_true", help="let a partial run (--only) replace a full report")
    p.add_argument("--seed", type=int, default=0, help="seed passed to every experiment (default: 0)")
    p.add_argument("--list", action="store_true", help="list the registered claims and exit")
    p.add_argument("--threads", default="auto", help=THREADS_HELP)
    p.set_defaults(func=run)


def run(args) -> int:
    from deepnotes.core.checks import check_int
    from deepnotes.lab.report import prepare_output, write_report
    from deepnotes.lab.runner import run_claim, select_claims

    con = console()
    only = split_names(args.only)
    if args.only is not None and only is None:
        raise ValueError("--only: empty selection; give claim IDs (6a) or chapter numbers (6)")
    claims = select_claims(only)
    if args.list:
        for c in claims:
            con.print(f"{c.id:>5}  ch{c.chapter:<3} {c.kind:<15} expected {c.expected:<8} {c.title}")
        return 0
    check_int("--seed", args.seed, min=0)
    threads = thread_count(args.threads)
    partial = only is not None
    all_ids = {c.id for c in select_claims(None)}
    partial = partial and {c.id for c in claims} != all_ids
    out = prepare_output(args.out or (PARTIAL_OUT if partial else FULL_OUT), partial=partial, all_ids=all_ids,
                         force=args.force)
    try:
        import torch

        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        records = []
        for c in claims:
            with con.status(f"claim {c.id}: {c.title}", spinner="dots"):
                rec = run_claim(c, quick=args.quick, seed=args.seed)
            records.append(rec)
            mark = "[red]ERROR[/]" if rec.error else ("[green]ok[/]" if rec.ok else "[red]MISMATCH[/]")
            con.print(f"{mark} {c.id} {rec.verdict or '-'} (expected {c.expected}) {rec.seconds:.1f}s")
        seconds = time.perf_counter() - t0
        counts = write_report(records, out, quick=args.quick, seed=args.seed, seconds=seconds, partial=partial)
    except BaseException:
        out.discard()
        raise
    table = Table(title=f"lab: {counts['ok']}/{counts['total']} claims as expected ({seconds:.1f} s)")
    for col in ("claim", "chapter", "kind", "verdict", "expected", "seconds", "title"):
        table.add_column(col)
    for r in records:
        verdict = "[red]error[/]" if r.error else (r.verdict if r.ok else f"[red]{r.verdict}[/]")
        table.add_row(r.id, str(r.chapter), r.kind, verdict, r.expected, f"{r.seconds:.1f}", r.title)
    con.print(table)
    con.print(f"report: {(out.final / 'report.html').resolve()}" + (" (partial run)" if partial else ""))
    for r in records:
        if r.error:
            con.print(f"[red]claim {r.id} raised:[/]\n{r.error}")
    return 0 if counts["ok"] == counts["total"] else 1
