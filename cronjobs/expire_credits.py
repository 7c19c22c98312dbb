#!/usr/bin/env python3
"""Cron: post the expire entries of credit grants that are past their expiry.

It takes its own lock with `flock -n`, so while one run is still going the next one skips. Crontab:

    */15 * * * * cd /srv/atelier && .venv/bin/python cronjobs/expire_credits.py

The lock file is $ATELIER_LOCK_DIR/atelier-expire-credits.lock (default /tmp); a skipped run exits 0.
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUSY = 75  # flock's exit status when another run holds the lock


def main() -> int:
    """Run `flask credits expire` under `flock -n`; report a skipped run instead of waiting."""
    lock = os.path.join(os.environ.get("ATELIER_LOCK_DIR", "/tmp"), "atelier-expire-credits.lock")
    flask = [sys.executable, "-m", "flask", "--app", "wsgi:app", "credits", "expire", *sys.argv[1:]]
    status = subprocess.call(["flock", "-n", "-E", str(BUSY), lock, *flask], cwd=ROOT)
    if status == BUSY:
        print(f"another run holds {lock}; skipped", file=sys.stderr)
        return 0
    return status


if __name__ == "__main__":
    sys.exit(main())
