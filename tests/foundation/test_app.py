"""The factory, config, roles, health and the JSON error shape."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app import create_app
from app.config import ConfigError, load_settings


def test_config_layers_defaults_then_file_then_environment(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"video_generation_fps": 24, "audio_gen_duration": 12, "environment": "testing"}))
    settings = load_settings(environ={"ATELIER_CONFIG": str(path), "ATELIER_AUDIO_GEN_DURATION": "15"})
    assert settings.default_credit_expiration == 30  # default in code
    assert settings.video_generation_fps == 24  # from the file
    assert settings.audio_gen_duration == 15  # the environment wins over the file


def test_config_rejects_unknown_keys_and_bad_values(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"dropbox_token": "x"}))
    with pytest.raises(ConfigError, match="unknown config key 'dropbox_token'"):
        load_settings(environ={"ATELIER_CONFIG": str(path)})
    with pytest.raises(ConfigError, match="video_generation_fps"):
        load_settings(environ={"ATELIER_VIDEO_GENERATION_FPS": "sixteen"})
    with pytest.raises(ConfigError, match="server_type"):
        load_settings({"server_type": "tpu", "environment": "testing"}, environ={})


def test_production_without_secret_fails_at_start_with_clear_message():
    with pytest.raises(ConfigError, match="secret_key"):
        create_app({"environment": "production", "server_type": "cpu", "gpu_shared_secret": "s"})


def test_config_example_documents_every_key():
    from dataclasses import fields

    from app.config import Settings

    example = json.load(open("config.example.json", encoding="utf-8"))
    documented = {key for key in example if not key.startswith("_")}
    assert documented == {f.name for f in fields(Settings)}


def test_cpu_role_never_imports_torch_or_diffusers(pg_database_url, tmp_path):
    code = (
        "import sys; from app import create_app; "
        f"app = create_app({{'environment': 'testing', 'server_type': 'cpu', 'database_url': '{pg_database_url}', "
        f"'instance_dir': '{tmp_path}'}}); "
        "client = app.test_client(); assert client.get('/readyz').status_code == 200; "
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_healthz_and_readyz_report_database_and_redis(client):
    assert client.get("/healthz").get_json() == {"status": "ok", "role": "cpu"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_answers_503_naming_the_dependency_that_is_down(settings_overrides):
    settings_overrides["redis_url"] = "redis://127.0.0.1:1/0"  # nothing listens there
    app = create_app(settings_overrides)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("failed")


def test_unknown_api_route_is_json_404(client):
    response = client.get("/api/v1/does-not-exist")
    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["error"]["code"] == "not_found"


def test_gpu_role_needs_no_database(tmp_path):
    app = create_app({"environment": "testing", "server_type": "gpu", "instance_dir": str(tmp_path),
                      "database_url": "postgresql://nobody@127.0.0.1:1/none", "gpu_preload_models": []})
    client = app.test_client()
    assert client.get("/healthz").get_json()["role"] == "gpu"
    assert "sqlalchemy" not in app.extensions
    assert client.get("/api/v1/me").status_code == 404  # no account routes on a gpu host


def test_every_response_carries_a_request_id_and_metrics_count_it(client):
    response = client.get("/healthz", headers={"X-Request-Id": "abc123"})
    assert response.headers["X-Request-Id"] == "abc123"
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'atelier_http_requests_total{method="GET",route="/healthz",status="200"}' in metrics


def test_sqlite_deployment_cascades_deletes(tmp_path):
    """The local default (SQLite) enforces foreign keys, so deleting a user removes their tokens too."""
    from sqlalchemy import func, select

    from app.extensions import db
    from app.models import ApiToken, User
    from app.services import migrations

    url = f"sqlite:///{tmp_path / 'local.db'}"
    migrations.upgrade(url)
    app = create_app({"environment": "testing", "server_type": "cpu", "database_url": url,
                      "instance_dir": str(tmp_path)})
    with app.app_context():
        user = User(email="a@example.com", password_hash="x", referral_code="code1")
        db.session.add(user)
        db.session.flush()
        db.session.add(ApiToken(user_id=user.id, name="t", token_hash="h" * 64, prefix="atl_"))
        db.session.commit()
        db.session.delete(user)
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(ApiToken)) == 0


def test_readme_documents_every_config_key():
    from dataclasses import fields

    from app.config import Settings

    readme = open("README.md", encoding="utf-8").read()
    missing = [f.name for f in fields(Settings) if f"| `{f.name}` |" not in readme]
    assert missing == [], "regenerate the README table with scripts/config_reference.py"


def test_role_all_serves_the_web_and_the_gpu_api(settings_overrides):
    app = create_app({**settings_overrides, "server_type": "all", "gpu_preload_models": []})
    client = app.test_client()
    assert client.get("/api/v1/me").status_code == 401  # account routes are there
    unsigned = client.get("/gpu/v1/health")  # and so is the GPU API, which wants a signature
    assert unsigned.status_code == 401
    assert unsigned.get_json()["error"]["code"] == "bad_signature"
