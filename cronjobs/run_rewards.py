#!/usr/bin/env python3
"""Cron: pay referral rewards that are due and were missed by the triggers.

It takes its own lock with `flock -n`, so while one run is still going the next one skips. Crontab:

    17 * * * * cd /srv/atelier && .venv/bin/python cronjobs/run_rewards.py

The lock file is $ATELIER_LOCK_DIR/atelier-run-rewards.lock (default /tmp); a skipped run exits 0.
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUSY = 75  # flock's exit status when another run holds the lock


def main() -> int:
    """Run `flask rewards run` under `flock -n`; report a skipped run instead of waiting."""
    lock = os.path.join(os.environ.get("ATELIER_LOCK_DIR", "/tmp"), "atelier-run-rewards.lock")
    flask = [sys.executable, "-m", "flask", "--app", "wsgi:app", "rewards", "run", *sys.argv[1:]]
    status = subprocess.call(["flock", "-n", "-E", str(BUSY), lock, *flask], cwd=ROOT)
    if status == BUSY:
        print(f"another run holds {lock}; skipped", file=sys.stderr)
        return 0
    return status


if __name__ == "__main__":
    sys.exit(main())
