#!/usr/bin/env python3
"""Cron: release credit holds that were never settled.

Runs `flask credits sweep-holds` under `flock -n` (lock $ATELIER_LOCK_DIR/atelier-sweep-holds.lock, default /tmp). Crontab:

    */5 * * * * cd /srv/atelier && .venv/bin/python cronjobs/sweep_holds.py
"""
import sys

from _locked import run_locked

if __name__ == "__main__":
    sys.exit(run_locked("sweep-holds", "credits", "sweep-holds"))
