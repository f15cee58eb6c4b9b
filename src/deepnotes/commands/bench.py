"""``deepnotes bench``: time our code against its reference."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from deepnotes.commands._common import console, say, split_names


def register(sub) -> None:
    p = sub.add_parser("bench", help="time our implementations against their references")
    p.add_argument("--quick", action="store_true", help="small sizes and few repeats")
    p.add_argument("--only", nargs="+", metavar="NAME", help="case names (see --list)")
    p.add_argument("--out", default="bench-out", help="output folder (default: bench-out)")
    p.add_argument("--list", action="store_true", help="list the registered cases and exit")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    p.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: elapsed time (default); cpu: the process's CPU time, for a machine that other jobs "
        "keep busy (it does not credit multi-threaded speed-ups)",
    )
    p.add_argument(
        "--busy",
        action="store_true",
        help="time every case a second time while spinning processes keep all cores busy, and report "
        "that ratio beside the quiet one",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from deepnotes.bench.runner import busy_cores, run_case, select_cases, write_bench

    con = console()
    if args.threads is not None:
        import torch

        from deepnotes.core.checks import check_int

        torch.set_num_threads(check_int("--threads", args.threads, min=1))
    if args.only is not None and not split_names(args.only):
        raise ValueError("--only names no case (an empty selection); see --list")
    cases = select_cases(split_names(args.only))
    if args.list:
        for c in cases:
            con.print(f"{c.name:<28} vs {c.reference}: {c.description}")
        return 0
    from deepnotes.core.runlock import check_writable_folder

    check_writable_folder(args.out)  # before any case runs
    rows = []
    for c in cases:
        with con.status(f"bench {c.name}", spinner="dots"):
            case_rows = run_case(c, quick=args.quick, clock=args.clock)
        if args.busy:
            with con.status(f"bench {c.name}, all cores busy", spinner="dots"), busy_cores():
                busy_rows = run_case(c, quick=args.quick, clock=args.clock)
            for r, b in zip(case_rows, busy_rows):
                r.busy_ratio = b.ratio
        rows += case_rows
        for r in case_rows:  # one flushed line per case as it ends, also into a log file
            ratio = "-" if r.ratio is None else f"{r.ratio:.3f}"
            busy = "" if r.busy_ratio is None else f", busy {r.busy_ratio:.3f}"
            say(con, f"{r.case} [{r.size}]: ratio {ratio}{busy}")
    write_bench(rows, Path(args.out), clock=args.clock)
    what = "median ms" if args.clock == "wall" else "median CPU ms"
    table = Table(title=f"ours / reference ({what}; ratio < 1 means we are faster)")
    for col in ("case", "size", "ours ms", "ref ms", "ratio", *(("busy",) if args.busy else ()), "target",
                "reference"):
        table.add_column(col)
    for r in rows:
        if r.ratio is None:
            table.add_row(r.case, r.size, "-", "-", "-", *(("-",) if args.busy else ()), "-",
                          f"{r.reference} ({r.note})")
        else:
            ok = r.target is None or r.ratio <= r.target
            ratio = f"{r.ratio:.3f}" if ok else f"[yellow]{r.ratio:.3f}[/]"
            target = "-" if r.target is None else f"<= {r.target:g}"
            busy = ("-" if r.busy_ratio is None else f"{r.busy_ratio:.3f}",) if args.busy else ()
            table.add_row(r.case, r.size, f"{r.ours_ms:.2f}", f"{r.reference_ms:.2f}", ratio, *busy, target,
                          r.reference)
    con.print(table)
    con.print(f"written: {(Path(args.out) / 'bench.md').resolve()}")
    return 0
