"""job_executor = "celery": asynchronous generations run in a real Celery worker process."""
from __future__ import annotations

import os
import time

import pytest

from tests.gpu.conftest import base_env
from tests.video.conftest import Worker

TINY = {"prompt": "a red fox", "width": 64, "height": 64, "steps": 2, "n": 2}


@pytest.mark.settings(job_executor="celery")
def test_an_async_generation_runs_in_a_celery_worker(client, make_user, balance, settings_overrides, tmp_path):
    (tmp_path / "worker").mkdir()
    env = {**os.environ, **base_env(tmp_path / "worker", **settings_overrides), "OMP_NUM_THREADS": "1"}
    worker = Worker(env, str(tmp_path / "worker.log"))
    try:
        user_id, headers, _, _ = make_user(credit=100)
        job = client.post("/api/v1/images/generations", json=TINY,
                          headers={**headers, "Prefer": "respond-async"}).json
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            state = client.get(f"/api/v1/jobs/{job['id']}", headers=headers).json
            if state["state"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.3)
        assert state["state"] == "succeeded", (state, worker.output()[-3000:])
        assert len(state["result"]["images"]) == 2
        assert len(client.get("/api/v1/images", headers=headers).json["items"]) == 2
        assert balance(user_id)[1] == 0 and balance(user_id)[0] < 100
        assert "atelier.generation.run_job" in worker.output()
    finally:
        worker.stop()
