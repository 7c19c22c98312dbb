"""Interpolation videos (prompt + seed to prompt + seed, no audio) rendered by the render service through the real
proxy; projects edited, refused by the GPU, deleted."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Transaction, Video, VideoProject
from app.services import credits as ledger
from app.services import mp4, video_render
from tests.video.conftest import make_wav, upload_wav

pytestmark = pytest.mark.timeout(300)


def _render_here(app, project_public_id: str) -> str:
    """What a worker does, in this process: run slices until the render stops."""
    with app.app_context():
        project_id = db.session.scalar(select(VideoProject.id).where(VideoProject.public_id == project_public_id))
        while (outcome := video_render.render_step(project_id)) == "continue":
            pass
        return outcome


def test_interpolation_video_from_one_prompt_to_another(app, client, make_user, gpu_pool, settings_overrides):
    _, headers = make_user(credits=30)
    body = {"kind": "interpolation", "title": "Fox to sea", "duration": 1.5, "width": 64, "height": 64,
            "steps": 2, "prompts": [{"at": 0, "prompt": "a red fox", "seed": 5},
                                    {"at": 1.5, "prompt": "a blue sea", "seed": 6}]}
    project = client.post("/api/v1/video-projects", headers=headers, json=body).get_json()
    assert project["fps"] == 16 and project["audio_id"] is None  # video_generation_fps by default
    curve = client.get(f"/api/v1/video-projects/{project['id']}/schedule", headers=headers).get_json()
    assert [p["t"] for p in curve["points"]] == pytest.approx([i / 24 for i in range(24)], abs=1e-6)

    client.post(f"/api/v1/video-projects/{project['id']}/render", headers=headers, json={"batch": True})
    assert _render_here(app, project["id"]) == "done"
    state = client.get(f"/api/v1/video-projects/{project['id']}", headers=headers).get_json()
    assert state["status"] == "ready" and state["video"]["has_audio"] is False
    info = mp4.probe(client.get(state["video"]["url"], headers=headers).data)
    assert info["frames"] == 24 and info["fps"] == 16 and info["audio"] == []
    assert info["duration"] == pytest.approx(1.5, abs=0.1)
    # Running the task again (a duplicate message) changes nothing.
    assert _render_here(app, project["id"]) == "done"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Video)) == 1
        assert db.session.scalar(select(func.count()).select_from(Transaction)
                                 .where(Transaction.kind == "capture")) == 1


def test_render_the_gpu_refuses_fails_releases_and_can_be_edited_and_rendered_again(
        app, client, make_user, gpu_pool, outbox):
    user_id, headers = make_user(credits=30)
    app.config["ATELIER"].gpu_models.append("only-in-the-web-config")
    clip = upload_wav(client, headers, make_wav(1.0)).get_json()
    project = client.post("/api/v1/video-projects", headers=headers, json={
        "audio_id": clip["id"], "model": "only-in-the-web-config", "width": 64, "height": 64, "steps": 2,
        "fps": 4, "prompts": [{"at": 0, "prompt": "fox", "seed": 1}]}).get_json()
    client.post(f"/api/v1/video-projects/{project['id']}/render", headers=headers, json={"batch": True})
    assert _render_here(app, project["id"]) == "stopped"
    state = client.get(f"/api/v1/video-projects/{project['id']}", headers=headers).get_json()
    assert state["status"] == "failed" and "GPU refused" in state["failure_reason"]
    with app.app_context():
        assert ledger.balance(user_id) == {**ledger.balance(user_id), "balance": 30, "held": 0}
    assert "failed" in outbox()[-1]["subject"]

    edited = client.patch(f"/api/v1/video-projects/{project['id']}", headers=headers, json={"model": "tiny"})
    assert edited.status_code == 200
    client.post(f"/api/v1/video-projects/{project['id']}/render", headers=headers, json={"batch": True})
    assert _render_here(app, project["id"]) == "done"
    video = client.get(f"/api/v1/video-projects/{project['id']}", headers=headers).get_json()["video"]
    # The single prompt holds for the whole clip: 4 frames of one image, with the audio.
    assert mp4.probe(client.get(video["url"], headers=headers).data)["audio"] == ["aac"]

    _, stranger = make_user()
    assert client.get(f"/api/v1/video-projects/{project['id']}", headers=stranger).status_code == 404
    assert client.delete(f"/api/v1/video-projects/{project['id']}", headers=headers).status_code == 204
    assert client.get(video["url"], headers=headers).status_code == 200  # the video stays in the library
    assert client.delete(f"/api/v1/videos/{video['id']}", headers=headers).status_code == 204
    assert client.get(video["url"], headers=headers).status_code == 404


def test_flask_videos_render_renders_a_queued_project_in_the_operators_shell(app, client, make_user, gpu_pool,
                                                                             runner):
    _, headers = make_user(credits=30)
    project = client.post("/api/v1/video-projects", headers=headers, json={
        "kind": "interpolation", "duration": 0.5, "fps": 4, "width": 64, "height": 64, "steps": 2,
        "prompts": [{"at": 0, "prompt": "a", "seed": 1}, {"at": 0.5, "prompt": "b", "seed": 2}]}).get_json()
    client.post(f"/api/v1/video-projects/{project['id']}/render", headers=headers, json={"batch": True})
    result = runner.invoke(args=["videos", "render", project["id"]])
    assert result.exit_code == 0 and "render done" in result.output
    assert client.get(f"/api/v1/video-projects/{project['id']}", headers=headers).get_json()["status"] == "ready"
    missing = runner.invoke(args=["videos", "render", "00000000-0000-0000-0000-000000000000"])
    assert missing.exit_code != 0 and "no such video project" in missing.output
