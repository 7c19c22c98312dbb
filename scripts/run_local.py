"""`make run`: migrate the local SQLite database and start every process of the platform on this machine."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
WEB_PORT = int(os.environ.get("ATELIER_WEB_PORT", "5000"))
PROXY_PORT = int(os.environ.get("ATELIER_PROXY_PORT", "5100"))
GPU_PORT = int(os.environ.get("ATELIER_GPU_PORT", "5200"))
PROXY_URL = f"http://127.0.0.1:{PROXY_PORT}"
GPU_URL = f"http://127.0.0.1:{GPU_PORT}"


def processes() -> list[tuple[str, list[str], dict[str, str]]]:
    """(name, command, extra environment) for each process a local platform runs."""
    python = sys.executable
    gunicorn = [python, "-m", "gunicorn", "--worker-class", "gthread", "--threads", "8", "--workers", "1",
                "--access-logfile", "-"]
    return [
        ("web", gunicorn + ["--bind", f"127.0.0.1:{WEB_PORT}", "wsgi:app"],
         {"ATELIER_SERVER_TYPE": "cpu", "ATELIER_PROXY_URL": PROXY_URL}),
        # One GPU host with the built-in tiny model (CPU, float32) and the proxy in front of it.
        ("gpu", gunicorn + ["--bind", f"127.0.0.1:{GPU_PORT}", "--timeout", "300", "wsgi:app"],
         {"ATELIER_SERVER_TYPE": "gpu", "ATELIER_GPU_MODELS": "tiny", "ATELIER_GPU_PRELOAD_MODELS": "tiny"}),
        ("proxy", gunicorn + ["--bind", f"127.0.0.1:{PROXY_PORT}", "--threads", "32", "proxy:app"],
         {"ATELIER_GPU_HOSTS": GPU_URL}),
        # Long jobs (audio, video renders); with no redis_url the queue is a SQLite file, no service needed.
        ("worker", [python, "-m", "celery", "-A", "app.celery_worker", "worker", "-Q", "default,media",
                    "--concurrency", "2", "--loglevel", "INFO"],
         {"ATELIER_SERVER_TYPE": "cpu", "ATELIER_PROXY_URL": PROXY_URL}),
    ]


def main() -> int:
    """Migrate, start the processes, and stop them all when one exits or on Ctrl-C."""
    os.chdir(ROOT)
    from app.config import load_settings
    from app.services import migrations

    settings = load_settings()
    print(f"migrating {settings.database_url}", flush=True)
    migrations.upgrade(settings.database_url)

    children: list[tuple[str, subprocess.Popen]] = []
    for name, command, extra_env in processes():
        env = {**os.environ, **extra_env}
        children.append((name, subprocess.Popen(command, env=env, cwd=ROOT)))
        print(f"started {name}: {' '.join(command[2:])}", flush=True)
    print(f"\nAtelier is running on http://127.0.0.1:{WEB_PORT}  (Ctrl-C stops everything)\n", flush=True)

    def stop(*_args) -> None:
        for _, child in children:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(child.poll() is None for _, child in children):
            time.sleep(0.5)
        for name, child in children:
            if child.poll() is not None:
                print(f"{name} exited with {child.returncode}; stopping the rest", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        for _, child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
