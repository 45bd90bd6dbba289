"""`workroom`: the command-line tool (console script in the virtualenv).

How to add a subcommand: write one `_cmd_<name>(args) -> int` function and one
`_register_<name>(sub)` that adds its parser, then append the register function
to REGISTRARS. Commands return the process exit code. Example:

    def _cmd_renew(args) -> int:
        ...
        return 0

    def _register_renew(sub: Subparsers) -> None:
        p = sub.add_parser("renew", help="renew subscriptions that are due")
        p.add_argument("--dry-run", action="store_true")
        p.set_defaults(func=_cmd_renew)

    REGISTRARS.append(_register_renew)   # (or add it to the list literal)

Nested groups (`workroom ledger check`) add a subparser group once and their
verbs under it; see _register_db.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import sqlalchemy.exc
from sqlalchemy.engine import Engine

from workroom_app import db
from workroom_app.db import DatabaseUnavailable, describe_failure
from workroom_app.settings import get_settings

# What a `_register_<name>` function is given: argparse's table of subcommands.
Subparsers = argparse._SubParsersAction
# Commands import what they use inside their function (each marked "CLI start-up"), so
# `workroom --help` and a quick command do not load the whole app.


def _engine() -> Engine:
    return db.get_engine()


# --------------------------------------------------------------- db upgrade


def _cmd_db_upgrade(args: argparse.Namespace) -> int:
    from workroom_app.schema import upgrade  # noqa: PLC0415  (CLI start-up)

    engine = _engine()
    upgrade(engine)
    print(f"database is up to date ({engine.url.render_as_string(hide_password=True)})")
    return 0


def _register_db(sub: Subparsers) -> None:
    db = sub.add_parser("db", help="database schema")
    verbs = db.add_subparsers(dest="db_command", metavar="VERB", required=True)
    p = verbs.add_parser("upgrade", help="apply the migrations (alembic upgrade head)")
    p.set_defaults(func=_cmd_db_upgrade)


# ---------------------------------------------------------------- demo data


def _cmd_seed_demo(args: argparse.Namespace) -> int:
    from workroom_app.seed import seed_demo  # noqa: PLC0415  (CLI start-up)

    done = seed_demo(_engine())
    print("\n".join(done) if done else "demo data already present: nothing to do")
    return 0


def _register_seed_demo(sub: Subparsers) -> None:
    p = sub.add_parser("seed-demo", help="create the demo accounts if missing (idempotent)")
    p.set_defaults(func=_cmd_seed_demo)


def _cmd_demo_logins(args: argparse.Namespace) -> int:
    from workroom_app.seed import demo_logins_text  # noqa: PLC0415  (CLI start-up)

    print(demo_logins_text(args.url))
    return 0


def _register_demo_logins(sub: Subparsers) -> None:
    p = sub.add_parser("demo-logins", help="print the app URL and the demo logins")
    p.add_argument("--url", default="http://localhost:3000")
    p.set_defaults(func=_cmd_demo_logins)


# --------------------------------------------------------------- generation


def _register_worker(sub: Subparsers) -> None:
    from workroom_app.generation.cli import add_worker_command  # noqa: PLC0415  (CLI start-up)

    add_worker_command(sub)


# ------------------------------------------------- billing: renew, clock, outbox


def _cmd_renew(args: argparse.Namespace) -> int:
    from workroom_app.billing import (  # noqa: PLC0415  (CLI start-up)
        clock,
        formatting,
        subscriptions,
    )

    if not args.due:
        print("say which subscriptions: `workroom renew --due` renews every one that is due")
        return 2
    engine = _engine()
    report = subscriptions.renew_due(engine, batch_size=args.batch_size, workers=args.workers)
    print(
        f"{formatting.format_stamp(clock.now())} UTC: renewed {report.renewed}, payment failed "
        f"{report.failed}, ended {report.ended}, errors {len(report.errors)} "
        f"({report.elapsed_seconds:.2f} s)"
    )
    for sub_id, error in report.errors.items():
        print(f"  subscription {sub_id}: {error}")
    return 1 if report.errors else 0


def _register_renew(sub: Subparsers) -> None:
    p = sub.add_parser(
        "renew", help="renew due subscriptions and run due payment retries (local gateway)"
    )
    p.add_argument("--due", action="store_true", help="every subscription that is due now")
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument("--workers", type=int, default=1, help="parallel batches (PostgreSQL only)")
    p.set_defaults(func=_cmd_renew)


def _cmd_clock(args: argparse.Namespace) -> int:
    from workroom_app.billing import clock, formatting  # noqa: PLC0415  (CLI start-up)

    if args.clock_command == "advance":
        if args.days <= 0:
            print("the clock only moves forward: give --days a positive number")
            return 2
        moved = clock.advance(args.days, _engine())
        print(
            f"clock is now {formatting.format_stamp(moved)} UTC (run `workroom renew --due` to renew what fell due)"
        )
        return 0
    print(
        f"clock: {formatting.format_stamp(clock.now(), seconds=True)} UTC (offset {clock.read_offset(_engine()) / 86400:g} days)"
    )
    return 0


def _register_clock(sub: Subparsers) -> None:
    p = sub.add_parser("clock", help="the shared demo clock")
    verbs = p.add_subparsers(dest="clock_command", metavar="VERB", required=True)
    adv = verbs.add_parser("advance", help="move the clock forward (demos)")
    adv.add_argument("--days", type=float, required=True)
    adv.set_defaults(func=_cmd_clock)
    show = verbs.add_parser("show", help="print the clock")
    show.set_defaults(func=_cmd_clock)


def _cmd_outbox(args: argparse.Namespace) -> int:
    from workroom_app.billing import formatting, receipts  # noqa: PLC0415  (CLI start-up)
    from workroom_app.db import read_session  # noqa: PLC0415  (CLI start-up)
    from workroom_app.models import OutboxEmail  # noqa: PLC0415  (CLI start-up)

    engine = _engine()
    if args.outbox_command == "list":
        with read_session(engine) as s:
            rows = receipts.list_outbox(s, status=args.status, limit=args.limit)
        if not rows:
            print("the outbox is empty")
        for r in rows:
            print(
                f"#{r.id:<6} {r.status:<8} {formatting.format_stamp(r.created_at)}  {r.to_address:<30} {r.subject}"
            )
        return 0
    if args.outbox_command == "show":
        with read_session(engine) as s:
            row = s.get(OutboxEmail, args.id)
            if row is None:
                print(f"no email #{args.id} in the outbox")
                return 1
            print(receipts.show_text(s, row))
            if args.save_attachment:
                data = receipts.attachment_bytes(s, row)
                if data is None:
                    print("this email has no attachment")
                    return 1
                with open(args.save_attachment, "wb") as fh:
                    fh.write(data)
                print(f"attachment saved to {args.save_attachment}")
        return 0
    report = receipts.send_pending(engine, limit=args.limit)
    if report.skipped_reason:
        print(report.skipped_reason)
        return 0
    print(f"sent {len(report.sent)}, failed {len(report.failed)}")
    for email_id, error in report.failed.items():
        print(f"  #{email_id}: {error}")
    return 1 if report.failed else 0


def _register_outbox(sub: Subparsers) -> None:
    p = sub.add_parser("outbox", help="receipt emails waiting to be sent (or sent)")
    verbs = p.add_subparsers(dest="outbox_command", metavar="VERB", required=True)
    ls = verbs.add_parser("list", help="newest first")
    ls.add_argument("--status", choices=["pending", "sending", "sent"])
    ls.add_argument("--limit", type=int, default=50)
    ls.set_defaults(func=_cmd_outbox)
    show = verbs.add_parser("show", help="one email with its text")
    show.add_argument("id", type=int)
    show.add_argument("--save-attachment", metavar="PATH", help="write the attached PDF here")
    show.set_defaults(func=_cmd_outbox)
    send = verbs.add_parser("send", help="send pending emails over SMTP (settings WORKROOM_SMTP_*)")
    send.add_argument("--limit", type=int, default=100)
    send.set_defaults(func=_cmd_outbox)


# ------------------------------------------------------ ledger check / bench


def _cmd_ledger_check(args: argparse.Namespace) -> int:
    from workroom_app.billing.ledger_check import (  # noqa: PLC0415  (CLI start-up)
        check_ledger,
        count_accounts,
    )
    from workroom_app.db import read_session  # noqa: PLC0415  (CLI start-up)

    with read_session(_engine()) as s:
        problems = check_ledger(s, args.email)
        checked = count_accounts(s, args.email)
    for problem in problems:
        print(problem)
    if problems:
        print(f"ledger check failed: {len(problems)} problem(s)")
        return 1
    print(f"ledger clean: {checked} accounts")
    return 0


def _register_ledger(sub: Subparsers) -> None:
    p = sub.add_parser("ledger", help="the credit ledger")
    verbs = p.add_subparsers(dest="ledger_command", metavar="VERB", required=True)
    check = verbs.add_parser(
        "check", help="verify every ledger invariant (exit 1 on any violation)"
    )
    check.add_argument("--email", help="check only this account")
    check.set_defaults(func=_cmd_ledger_check)


def _cmd_bench_ledger(args: argparse.Namespace) -> int:
    import os  # noqa: PLC0415  (CLI start-up)

    from workroom_app.settings import REPO_ROOT  # noqa: PLC0415  (CLI start-up)

    # benchmarks/ lives beside the package, not inside it.
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from benchmarks import bench_ledger  # noqa: PLC0415  (CLI start-up)

    results = bench_ledger.run(os.environ.get("WORKROOM_TEST_POSTGRES_URL") or None)
    return bench_ledger.report(results, as_json=args.json)


def _register_bench(sub: Subparsers) -> None:
    p = sub.add_parser("bench", help="benchmarks")
    verbs = p.add_subparsers(dest="bench_command", metavar="VERB", required=True)
    led = verbs.add_parser("ledger", help="debit throughput vs the raw floor, balance reads")
    led.add_argument("--json", action="store_true", help="end with one line of JSON")
    led.set_defaults(func=_cmd_bench_ledger)


# ------------------------------------------------------------ reconcile (staff)


def _cmd_reconcile(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime  # noqa: PLC0415  (CLI start-up)

    from workroom_app.billing.reconcile import (  # noqa: PLC0415  (CLI start-up)
        reconcile,
        render_text,
    )
    from workroom_app.db import read_session  # noqa: PLC0415  (CLI start-up)

    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            print(f"--since: not a date: {args.since!r} (use YYYY-MM-DD)", file=sys.stderr)
            return 2
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
    with read_session(_engine()) as session:
        report = reconcile(session, since=since)
    print(report.to_json() if args.json else render_text(report))
    return 0 if report.ok else 1


def _register_reconcile(sub: Subparsers) -> None:
    p = sub.add_parser(
        "reconcile", help="match payments, invoices and credit grants (exit 1 on any mismatch)"
    )
    p.add_argument("--since", help="only payments from this date (YYYY-MM-DD, UTC)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_cmd_reconcile)


# ------------------------------------------------------------ registration

REGISTRARS: list[Callable] = [
    _register_db,
    _register_seed_demo,
    _register_demo_logins,
    _register_worker,
]
REGISTRARS += [_register_renew, _register_clock, _register_outbox]
REGISTRARS += [_register_ledger, _register_bench]
REGISTRARS += [_register_reconcile]


# ------------------------------------------------ broken-result reports


def _cmd_reports_pending(args: argparse.Namespace) -> int:
    from workroom_app.billing import formatting  # noqa: PLC0415  (CLI start-up)
    from workroom_app.db import read_session  # noqa: PLC0415  (CLI start-up)
    from workroom_app.generation import reports  # noqa: PLC0415  (CLI start-up)

    with read_session(_engine()) as s:
        rows = reports.pending(s)
    for r in rows:
        print(
            f"#{r.id}  job {r.job_id}  account {r.account_id}  {formatting.format_stamp(r.created_at)}  {r.reason}"
        )
    if not rows:
        print("No reports wait for staff.")
    return 0


def _cmd_reports_decide(args: argparse.Namespace) -> int:
    from workroom_app.billing import accounts  # noqa: PLC0415  (CLI start-up)
    from workroom_app.billing.staff import StaffError  # noqa: PLC0415  (CLI start-up)
    from workroom_app.db import write_session  # noqa: PLC0415  (CLI start-up)
    from workroom_app.generation import reports  # noqa: PLC0415  (CLI start-up)

    with write_session(_engine()) as s:
        staff = accounts.find_account(s, args.staff)
        if staff is None:
            print(f"No account {args.staff!r}.", file=sys.stderr)
            return 1
        try:
            out = reports.decide(
                s, args.report_id, staff.id, accept=args.verb == "accept", note=args.note
            )
        except (reports.ReportError, StaffError) as exc:
            print(str(exc), file=sys.stderr)
            return 1
    print(f"Report #{out.report_id}: {out.message}")
    return 0


def _register_reports(sub: Subparsers) -> None:
    p = sub.add_parser("reports", help='"report a broken result": the ones waiting for staff')
    verbs = p.add_subparsers(dest="reports_command", metavar="VERB", required=True)
    verbs.add_parser("pending", help="list reports waiting for staff").set_defaults(
        func=_cmd_reports_pending
    )
    for verb, text in (
        ("accept", "refund the result's credits"),
        ("decline", "decline with a note"),
    ):
        d = verbs.add_parser(verb, help=text)
        d.add_argument("report_id", type=int)
        d.add_argument("--staff", required=True, help="the deciding staff member's email")
        d.add_argument(
            "--note", required=verb == "decline", help="what the user reads (decline: required)"
        )
        d.set_defaults(func=_cmd_reports_decide, verb=verb)


REGISTRARS += [_register_reports]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workroom", description="Workroom billing tools")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in REGISTRARS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (DatabaseUnavailable, sqlalchemy.exc.OperationalError) as exc:
        # A database that cannot be opened is the commonest first-run failure:
        # say which one and why in one line, not a traceback.
        message = (
            str(exc)
            if isinstance(exc, DatabaseUnavailable)
            else describe_failure(get_settings().database_url, exc)
        )
        print(f"workroom: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
