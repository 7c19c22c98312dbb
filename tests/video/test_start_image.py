"""Interpolation videos that start from an image in the library instead of a prompt + seed: chosen by id (404 when
not visible), checked (422), rendered through the real proxy and GPU hosts, refused once the image is gone."""
from __future__ import annotations

import io
import uuid

import av
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from app.extensions import db
from app.models import VideoProject
from app.services import video_render
from tests.conftest import sign_up_in_browser
from tests.gpu.conftest import Signed, png_base64
from tests.video.conftest import make_wav, upload_wav, wait_for

pytestmark = pytest.mark.timeout(300)
# Four frames at 4 fps: t = 0, 1/3, 2/3 from the fox to the sea, then the sea holds (the walk has arrived).
PROMPTS = [{"at": 0, "prompt": "a red fox", "seed": 5}, {"at": 0.75, "prompt": "a blue sea", "seed": 6}]
BODY = {"kind": "interpolation", "duration": 1, "fps": 4, "width": 64, "height": 64, "steps": 4,
        "prompts": PROMPTS}


def _upload_image(client, headers, size=(96, 64)) -> dict:
    """A striped PNG uploaded to the user's library (wider than the video: the render fits it)."""
    yy, xx = np.mgrid[0:size[1], 0:size[0]]
    pixels = np.stack([(xx * 8) % 256, (yy * 4) % 256, 255 - (xx * 2) % 256], -1).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    response = client.post("/api/v1/images/uploads", headers=headers, content_type="multipart/form-data",
                           data={"image": (io.BytesIO(buffer.getvalue()), "start.png")})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _render_here(app, project_public_id: str) -> str:
    with app.app_context():
        project_id = db.session.scalar(select(VideoProject.id).where(VideoProject.public_id == project_public_id))
        while (outcome := video_render.render_step(project_id)) == "continue":
            pass
        return outcome


def _decoded_frames(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as container:
        return [frame.to_ndarray(format="rgb24").astype(int) for frame in container.decode(video=0)]


def _render(app, client, headers, body: dict) -> list[np.ndarray]:
    project = client.post("/api/v1/video-projects", headers=headers, json=body)
    assert project.status_code == 201, project.get_json()
    project_id = project.get_json()["id"]
    assert client.post(f"/api/v1/video-projects/{project_id}/render", headers=headers,
                       json={"batch": True}).status_code == 202
    assert _render_here(app, project_id) == "done"
    state = client.get(f"/api/v1/video-projects/{project_id}", headers=headers).get_json()
    assert state["status"] == "ready", state["failure_reason"]
    return _decoded_frames(client.get(state["video"]["url"], headers=headers).data)


def test_interpolation_video_from_a_library_image_through_the_proxy(app, client, make_user, gpu_pool):
    _, headers = make_user(credits=50)
    image = _upload_image(client, headers)
    created = client.post("/api/v1/video-projects", headers=headers,
                          json={**BODY, "start_image_id": image["id"], "start_strength": 0.25})
    assert created.status_code == 201, created.get_json()
    project = created.get_json()
    assert (project["start_image_id"], project["start_strength"]) == (image["id"], 0.25)
    page = client.get(f"/videos/projects/{project['id']}", headers=headers)
    assert image["id"] in page.get_data(as_text=True)  # offered in the picker, and selected

    client.post(f"/api/v1/video-projects/{project['id']}/render", headers=headers, json={"batch": True})
    assert _render_here(app, project["id"]) == "done"
    state = client.get(f"/api/v1/video-projects/{project['id']}", headers=headers).get_json()
    from_image = _decoded_frames(client.get(state["video"]["url"], headers=headers).data)
    from_seed = _render(app, client, headers, BODY)
    assert len(from_image) == len(from_seed) == 4
    # The same walk ends at the same place (prompt B's seed); it starts elsewhere: at the image.
    first_gap = np.abs(from_image[0] - from_seed[0]).mean()
    last_gap = np.abs(from_image[-1] - from_seed[-1]).mean()
    assert last_gap < 8 and first_gap > 4 * last_gap  # (H.264 alone moves equal frames by a few levels)
    # Same project, same inputs: the render is reproducible.
    again = _render(app, client, headers, {**BODY, "start_image_id": image["id"], "start_strength": 0.25})
    assert np.abs(again[0] - from_image[0]).mean() < 1

    cleared = client.patch(f"/api/v1/video-projects/{project['id']}", headers=headers,
                           json={"start_image_id": None})
    assert cleared.status_code == 200 and cleared.get_json()["start_image_id"] is None


def test_a_host_behind_the_proxy_renders_from_a_start_image_and_refuses_a_wrong_size(gpu_pool):
    client = Signed(gpu_pool["proxy"].url)
    body = {"model": "tiny", "width": 64, "height": 64, "steps": 4, "prompt_a": "", "prompt_b": "a blue whale",
            "seed_a": 1, "seed_b": 2, "t": [0, 1], "image_a": png_base64(64, 64), "strength_a": 0.25}
    answer = client.post("/gpu/v1/interpolate", body)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["images"]) == 2 and answer.json()["strength_a"] == 0.25
    refused = client.post("/gpu/v1/interpolate", {**body, "image_a": png_base64(64, 72)})
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "image_a" and "64x64" in refused.json()["error"]["message"]


def test_start_images_the_user_may_not_see_are_404_and_bad_values_422(app, client, make_user):
    _, headers = make_user()
    _, other = make_user()
    private = _upload_image(client, other)
    response = client.post("/api/v1/video-projects", headers=headers, json={**BODY, "start_image_id": private["id"]})
    assert response.status_code == 404 and response.get_json()["error"]["code"]
    for missing in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        assert client.post("/api/v1/video-projects", headers=headers,
                           json={**BODY, "start_image_id": missing}).status_code == 404
    # Published by its owner, anyone may start from it.
    assert client.patch(f"/api/v1/images/{private['id']}", headers=other, json={"public": True}).status_code == 200
    assert client.post("/api/v1/video-projects", headers=headers,
                       json={**BODY, "start_image_id": private["id"]}).status_code == 201
    own = _upload_image(client, headers)
    for changes, field in [({"start_image_id": 5}, "start_image_id"), ({"start_strength": 0}, "start_strength"),
                           ({"start_strength": 1.5}, "start_strength"), ({"start_strength": "x"}, "start_strength"),
                           ({"steps": 1, "start_strength": 0.5}, "start_strength")]:
        response = client.post("/api/v1/video-projects", headers=headers,
                               json={**BODY, "start_image_id": own["id"], **changes})
        assert response.status_code == 422, changes
        assert response.get_json()["error"]["field"] == field
    # Only the project from the published image was created; the refused ones left no row.
    assert len(client.get("/api/v1/video-projects", headers=headers).get_json()["projects"]) == 1


def test_a_start_image_unpublished_before_the_render_fails_it_and_releases_the_credits(app, client, make_user,
                                                                                       outbox):
    owner_id, owner = make_user()
    user_id, headers = make_user(credits=30)
    image = _upload_image(client, owner)
    client.patch(f"/api/v1/images/{image['id']}", headers=owner, json={"public": True})
    project = client.post("/api/v1/video-projects", headers=headers,
                          json={**BODY, "start_image_id": image["id"]}).get_json()
    client.patch(f"/api/v1/images/{image['id']}", headers=owner, json={"public": False})
    client.post(f"/api/v1/video-projects/{project['id']}/render", headers=headers, json={"batch": True})
    assert _render_here(app, project["id"]) == "stopped"
    state = client.get(f"/api/v1/video-projects/{project['id']}", headers=headers).get_json()
    assert state["status"] == "failed" and "start image" in state["failure_reason"]
    from app.services import credits as ledger

    with app.app_context():
        assert ledger.balance(user_id)["balance"] == 30 and ledger.balance(user_id)["held"] == 0


@pytest.mark.browser
def test_pick_a_start_image_from_the_library_on_the_project_page(app, app_url, browser):
    from app.models import User
    from app.services import media

    email = f"start-{uuid.uuid4().hex[:8]}@example.com"
    errors: list[str] = []
    context = browser.new_context()
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_up_in_browser(page, app_url, email, "start image passphrase 42")
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), (200, 40, 40)).save(buffer, "PNG")
        with app.app_context():
            user = db.session.scalar(select(User).where(User.email == email))
            user.is_verified = True
            db.session.commit()
            image_id = str(media.store_upload(user, buffer.getvalue(), "Red square").public_id)
        project = page.evaluate("""async (body) => {
            const response = await fetch('/api/v1/video-projects', {method: 'POST', body: JSON.stringify(body),
                headers: {'Content-Type': 'application/json'}});
            return response.json(); }""", BODY)
        page.goto(f"{app_url}/videos/projects/{project['id']}")
        picker = page.get_by_label("Start from an image in my library")
        assert picker.input_value() == "" and page.locator("#start-image-preview").is_hidden()
        picker.select_option(label="Red square (64x64)")
        page.locator("#start-image-preview").wait_for()
        page.get_by_label("Start strength (low stays close to the image)").fill("0.25")
        page.get_by_role("button", name="Save").click()
        wait_for(lambda: page.evaluate(f"fetch('/api/v1/video-projects/{project['id']}').then(r => r.json())")
                 ["start_image_id"] == image_id, timeout=10, message="the start image to be saved")
        page.reload()
        assert page.get_by_label("Start from an image in my library").input_value() == image_id
        assert page.get_by_label("Start strength (low stays close to the image)").input_value() == "0.25"
        assert errors == []
    finally:
        context.close()


def test_a_music_video_can_start_from_a_library_image(app, client, make_user, gpu_pool):
    _, headers = make_user(credits=50)
    image = _upload_image(client, headers)
    clip = upload_wav(client, headers, make_wav(1.0)).get_json()
    body = {"audio_id": clip["id"], "width": 64, "height": 64, "steps": 4, "fps": 4,
            "prompts": [{"at": 0, "prompt": "a red fox", "seed": 5}, {"at": 0.5, "prompt": "a blue sea", "seed": 6}]}
    from_image = _render(app, client, headers, {**body, "start_image_id": image["id"], "start_strength": 0.25})
    from_seed = _render(app, client, headers, body)
    # The walk from the first keyframe starts at the image; from the second keyframe on, nothing changes.
    assert np.abs(from_image[0] - from_seed[0]).mean() > 4 * np.abs(from_image[-1] - from_seed[-1]).mean()
