"""`flask hosts ...` and `flask models ...` against the real database and a real GPU host."""
from __future__ import annotations

import pytest

from tests.gpu.conftest import SECRET


@pytest.fixture
def settings_overrides(settings_overrides):
    """The CLI signs its health checks with the pool's secret."""
    return {**settings_overrides, "gpu_shared_secret": SECRET}


def test_hosts_add_list_with_live_health_disable_enable_remove(runner, pool):
    live = pool["host_a"].url
    dead = "http://127.0.0.1:9"
    assert runner.invoke(args=["hosts", "add", live, "--name", "a"]).output.strip() == f"added {live}"
    assert runner.invoke(args=["hosts", "add", dead + "/"]).exit_code == 0
    duplicate = runner.invoke(args=["hosts", "add", live])
    assert duplicate.exit_code != 0 and "already listed" in duplicate.output
    assert "not an http(s) URL" in runner.invoke(args=["hosts", "add", "ftp://x"]).output

    lines = runner.invoke(args=["hosts", "list"]).output.strip().splitlines()
    assert lines[0].startswith(f"{live}\ta\tenabled\tup loaded=tiny queue=0")
    assert lines[1].startswith(f"{dead}\t-\tenabled\tdown")

    assert runner.invoke(args=["hosts", "disable", dead]).exit_code == 0
    assert f"{dead}\t-\tdisabled" in runner.invoke(args=["hosts", "list", "--no-health"]).output
    assert runner.invoke(args=["hosts", "enable", dead]).exit_code == 0
    assert runner.invoke(args=["hosts", "remove", dead]).exit_code == 0
    assert dead not in runner.invoke(args=["hosts", "list", "--no-health"]).output
    missing = runner.invoke(args=["hosts", "remove", dead])
    assert missing.exit_code != 0 and "no host" in missing.output


def test_models_add_list_disable_and_pull(runner, monkeypatch):
    assert runner.invoke(args=["models", "add", "tiny", "--name", "Tiny", "--preload"]).exit_code == 0
    assert runner.invoke(args=["models", "add", "runwayml/stable-diffusion-v1-5", "--price", "2"]).exit_code == 0
    assert "already registered" in runner.invoke(args=["models", "add", "tiny"]).output
    assert runner.invoke(args=["models", "disable", "runwayml/stable-diffusion-v1-5"]).exit_code == 0
    listing = runner.invoke(args=["models", "list"]).output.strip().splitlines()
    assert listing == ["tiny\tTiny\timage\tx1\tenabled,preload",
                       "runwayml/stable-diffusion-v1-5\t-\timage\tx2\tdisabled"]

    assert "built in" in runner.invoke(args=["models", "pull", "tiny"]).output
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = runner.invoke(args=["models", "pull", "runwayml/stable-diffusion-v1-5"])
    assert offline.exit_code != 0 and "does not reach the Hugging Face Hub" in offline.output
