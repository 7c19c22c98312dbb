#!/usr/bin/env python3
"""Cron: queue the video projects waiting for the batch (and re-send abandoned renders).

Runs `flask videos enqueue-queued` under `flock -n` (lock $ATELIER_LOCK_DIR/atelier-render-videos.lock, default /tmp). Crontab:

    */5 * * * * cd /srv/atelier && .venv/bin/python cronjobs/render_videos.py
"""
import sys

from _locked import run_locked

if __name__ == "__main__":
    sys.exit(run_locked("render-videos", "videos", "enqueue-queued"))
