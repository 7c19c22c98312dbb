"""Run one `flask` command under `flock -n`, so a cron run that finds the previous one still going skips it."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUSY = 75  # flock's exit status when another run holds the lock


def run_locked(job: str, *command: str) -> int:
    """Run `flask COMMAND...` holding $ATELIER_LOCK_DIR/atelier-JOB.lock; a skipped run exits 0 and says so."""
    lock = os.path.join(os.environ.get("ATELIER_LOCK_DIR", "/tmp"), f"atelier-{job}.lock")
    flask = [sys.executable, "-m", "flask", "--app", "wsgi:app", *command, *sys.argv[1:]]
    status = subprocess.call(["flock", "-n", "-E", str(BUSY), lock, *flask], cwd=ROOT)
    if status == BUSY:
        print(f"another run holds {lock}; skipped", file=sys.stderr)
        return 0
    return status
