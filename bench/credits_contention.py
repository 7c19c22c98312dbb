"""Debits per second on ONE user's balance at 1, 8 and 32 concurrent clients on PostgreSQL: our spend path
(user row lock, soonest-expiring grant first, ledger entry with allocations) against a raw single-row
`UPDATE ... SET balance = balance - 1 WHERE balance >= 1` in the same process, printed as a ratio.
Afterwards both are checked for lost or doubled debits and the ledger is audited.

    .venv/bin/python bench/credits_contention.py [--seconds 1] [--rounds 5] [--clients 1,8,32] [--threads]

Uses a throwaway database on ATELIER_TEST_PG (default postgresql://postgres@127.0.0.1:5432/test).
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import func, select, text  # noqa: E402

from app import create_app  # noqa: E402
from app.errors import ApiError  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import Transaction, User  # noqa: E402
from app.services import credits  # noqa: E402
from _servers import throwaway_database  # noqa: E402

START = 10_000_000


def run_clients(app, clients: int, schedule: list[tuple[str, float]], debits: dict) -> dict[str, int]:
    """Threads: run each (name, seconds) slice of the schedule with `clients` threads calling debits[name]()
    in a loop, each thread in its own app context; returns successful debits per name."""
    totals = dict.fromkeys(debits, 0)
    for name, seconds in schedule:
        counts = [0] * clients
        barrier = threading.Barrier(clients + 1)
        stop = threading.Event()

        def client(i: int, debit=debits[name]) -> None:
            with app.app_context():
                barrier.wait()
                while not stop.is_set():
                    counts[i] += bool(debit())
                db.session.remove()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        barrier.wait()
        time.sleep(seconds)
        stop.set()
        for thread in threads:
            thread.join()
        totals[name] += sum(counts)
    return totals


def run_client_processes(config: dict, clients: int, schedule: list[tuple[str, float]], debits: dict) -> dict[str, int]:
    """Processes: like run_clients, but each client is a forked process with its own app (as gunicorn workers
    are), started once and kept for every slice."""
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(clients + 1), context.Queue()

    def client() -> None:
        app = create_app(config)
        counts = dict.fromkeys(debits, 0)
        with app.app_context():
            for name, seconds in schedule:
                debit = debits[name]
                barrier.wait()
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    counts[name] += bool(debit())
            db.session.remove()
            db.engine.dispose()
        results.put(counts)

    processes = [context.Process(target=client) for _ in range(clients)]
    for process in processes:
        process.start()
    for _ in schedule:
        barrier.wait()
    totals = dict.fromkeys(debits, 0)
    for _ in processes:
        for name, count in results.get(timeout=sum(s for _, s in schedule) + 180).items():
            totals[name] += count
    for process in processes:
        process.join()
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one slice")
    parser.add_argument("--rounds", type=int, default=5, help="alternating slices per side and level")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--threads", action="store_true",
                        help="clients are threads of this process (default: forked processes, like gunicorn workers)")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]

    failures = 0
    with throwaway_database() as url:
        config = {"environment": "testing", "server_type": "cpu", "database_url": url,
                  "instance_dir": tempfile.mkdtemp(), "log_json": False}
        app = create_app(config)
        with app.app_context():
            user = User(email="bench@example.com", password_hash="x", referral_code="bench", is_verified=True)
            db.session.add(user)
            db.session.commit()
            uid = user.id
            for days in (7, 30, 90):  # a few grants, as a real user has
                credits.grant(uid, START // 3, expires_in_days=days)
            ledger_start = credits.balance(uid)["balance"]
            db.session.execute(text("CREATE TABLE bench_balance (id int PRIMARY KEY, balance bigint NOT NULL)"))
            db.session.execute(text("INSERT INTO bench_balance VALUES (1, :b)"), {"b": START})
            db.session.commit()
            db.session.remove()
            db.engine.dispose()  # forked clients must not share the parent's connections

        def ours() -> bool:
            try:
                credits.spend(uid, 1)
                return True
            except ApiError:
                return False

        raw_update = text("UPDATE bench_balance SET balance = balance - 1 WHERE id = 1 AND balance >= 1")

        def raw() -> bool:
            with db.engine.connect() as connection:
                done = connection.execute(raw_update).rowcount == 1
                connection.commit()
            return done

        print(f"clients are {'threads' if args.threads else 'processes'}; {args.rounds} alternating rounds of "
              f"{args.seconds:g} s each for our spend path and the raw UPDATE at every level")
        print(f"{'clients':>7} {'spend/s':>10} {'raw/s':>10} {'ratio':>7}")
        ours_total = raw_total = 0
        debits = {"ours": ours, "raw": raw}
        # Alternate short slices so a change in machine load hits both sides alike.
        schedule = [(name, args.seconds) for _ in range(args.rounds) for name in ("ours", "raw")]
        for clients in levels:
            if args.threads:
                counts = run_clients(app, clients, schedule, debits)
            else:
                counts = run_client_processes(config, clients, schedule, debits)
            ours_total += counts["ours"]
            raw_total += counts["raw"]
            span = args.seconds * args.rounds
            ratio = counts["ours"] / counts["raw"] if counts["raw"] else float("nan")
            print(f"{clients:>7} {counts['ours'] / span:>10.0f} {counts['raw'] / span:>10.0f} {ratio:>7.2f}",
                  flush=True)

        with app.app_context():
            balance = credits.balance(uid)["balance"]
            spends = db.session.scalar(select(func.count()).where(Transaction.kind == "spend"))
            raw_balance = db.session.scalar(text("SELECT balance FROM bench_balance WHERE id = 1"))
            report = credits.audit()
            db.session.remove()
            db.engine.dispose()
        checks = {
            "spend: balance fell by exactly the successful debits": ledger_start - balance == ours_total,
            "spend: one ledger entry per successful debit": spends == ours_total,
            "raw: balance fell by exactly the successful debits": START - raw_balance == raw_total,
            "ledger audit passes": report.ok,
        }
        for label, ok in checks.items():
            print(f"{'ok  ' if ok else 'FAIL'} {label}")
            failures += not ok
        if not report.ok:
            print("     first violation:", report.violations[0])
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
