#!/usr/bin/env python3
"""Cron: pay referral rewards that are due and were missed by the triggers.

Runs `flask rewards run` under `flock -n` (lock $ATELIER_LOCK_DIR/atelier-run-rewards.lock, default /tmp). Crontab:

    17 * * * * cd /srv/atelier && .venv/bin/python cronjobs/run_rewards.py
"""
import sys

from _locked import run_locked

if __name__ == "__main__":
    sys.exit(run_locked("run-rewards", "rewards", "run"))
