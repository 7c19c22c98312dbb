#!/usr/bin/env python3
"""Cron: post the expire entries of credit grants that are past their expiry.

Runs `flask credits expire` under `flock -n` (lock $ATELIER_LOCK_DIR/atelier-expire-credits.lock, default /tmp). Crontab:

    */15 * * * * cd /srv/atelier && .venv/bin/python cronjobs/expire_credits.py
"""
import sys

from _locked import run_locked

if __name__ == "__main__":
    sys.exit(run_locked("expire-credits", "credits", "expire"))
