#!/usr/bin/env python3
"""Cron: delete stored Idempotency-Key responses older than a day (retries within the day still replay).

Runs `flask maintenance purge-idempotency` under `flock -n` (lock $ATELIER_LOCK_DIR/atelier-purge-idempotency.lock,
default /tmp); extra arguments pass through, e.g. `--older-than-hours 48`. Crontab:

    17 * * * * cd /srv/atelier && .venv/bin/python cronjobs/purge_idempotency.py
"""
import sys

from _locked import run_locked

if __name__ == "__main__":
    sys.exit(run_locked("purge-idempotency", "maintenance", "purge-idempotency"))
