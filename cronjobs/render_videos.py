#!/usr/bin/env python3
"""Cron: queue the video projects waiting for the batch. Run it under flock so two runs never overlap:

    */5 * * * * cd /srv/atelier && flock -n /tmp/atelier-render-videos.lock .venv/bin/python cronjobs/render_videos.py
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if __name__ == "__main__":
    flask = [sys.executable, "-m", "flask", "--app", "wsgi:app", "videos", "enqueue-queued", *sys.argv[1:]]
    sys.exit(subprocess.call(flask, cwd=ROOT))
