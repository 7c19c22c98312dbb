"""The cron wrappers run the real `flask` commands under flock, and skip while another run holds the lock."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from datetime import timedelta

from app.models import utcnow
from app.services import credits

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cron(script: str, settings_overrides: dict, lock_dir) -> subprocess.CompletedProcess:
    env = {**os.environ, "ATELIER_LOCK_DIR": str(lock_dir), "ATELIER_ENVIRONMENT": "testing",
           "ATELIER_SERVER_TYPE": "cpu", "ATELIER_DATABASE_URL": settings_overrides["database_url"],
           "ATELIER_INSTANCE_DIR": settings_overrides["instance_dir"], "ATELIER_LOG_JSON": "false"}
    env.pop("ATELIER_CONFIG", None)
    return subprocess.run([sys.executable, os.path.join(ROOT, "cronjobs", script)], env=env, cwd="/",
                          capture_output=True, text=True, timeout=120)


def test_expire_and_sweep_cronjobs_do_their_work_once(app, make_user, settings_overrides, tmp_path):
    uid = make_user()
    with app.app_context():
        credits.grant(uid, 10, expires_in_days=1, now=utcnow() - timedelta(days=3))
        credits.grant(uid, 10)
        credits.hold(uid, 4, now=utcnow() - timedelta(hours=1))
    first = cron("expire_credits.py", settings_overrides, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "expired 1 credit entries" in first.stdout
    assert "expired 0 credit entries" in cron("expire_credits.py", settings_overrides, tmp_path).stdout
    assert "released 1 stale holds" in cron("sweep_holds.py", settings_overrides, tmp_path).stdout
    assert "paid 0 rewards" in cron("run_rewards.py", settings_overrides, tmp_path).stdout
    with app.app_context():
        assert credits.balance(uid)["balance"] == 10 and credits.audit().ok


def test_a_run_that_finds_the_lock_held_skips(app, settings_overrides, tmp_path):
    with open(tmp_path / "atelier-expire-credits.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another run is still going
        skipped = cron("expire_credits.py", settings_overrides, tmp_path)
    assert skipped.returncode == 0
    assert "skipped" in skipped.stderr and "expired" not in skipped.stdout
