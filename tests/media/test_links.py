"""Share links: only owners create them, the page shows the item with Open Graph tags and counts views."""
from __future__ import annotations

import re
import threading
import uuid

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Audio, Link


def _og(html: str, prop: str) -> str | None:
    match = re.search(rf'<meta property="{prop}" content="([^"]*)"', html)
    return match.group(1) if match else None


def _link(client, headers, image_id):
    response = client.post("/api/v1/links", json={"image_id": image_id}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_owner_creates_link_and_page_shows_image_with_open_graph_tags(client, make_user, store_image):
    me, headers = make_user()
    image_id = store_image(me, prompt="a lighthouse at dusk")
    link = _link(client, headers, image_id)
    assert link["kind"] == "image" and link["item_id"] == image_id and link["views"] == 0
    assert link["url"] == f"http://atelier.test/s/{link['token']}"

    page = client.get(f"/s/{link['token']}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert _og(html, "og:title") == "a lighthouse at dusk"
    og_image = _og(html, "og:image")
    assert og_image == f"http://atelier.test/s/{link['token']}/preview"
    # The preview and the file are served to anyone holding the link, although the image is private.
    preview = client.get(og_image.replace("http://atelier.test", ""))
    assert preview.status_code == 200 and preview.mimetype == "image/webp"
    assert client.get(f"/s/{link['token']}/file").data == client.get(f"/api/v1/images/{image_id}/file",
                                                                       headers=headers).data
    assert client.get(f"/api/v1/images/{image_id}").status_code == 404  # the link shares only its own page


def test_each_page_visit_counts_one_view(client, make_user, store_image):
    me, headers = make_user()
    link = _link(client, headers, store_image(me))
    for _ in range(3):
        assert client.get(f"/s/{link['token']}").status_code == 200
    client.get(f"/s/{link['token']}/preview")  # fetching the preview image is not a view
    assert client.get("/api/v1/links", headers=headers).get_json()["items"][0]["views"] == 3


def test_concurrent_views_are_all_counted(app, make_user, store_image):
    me, headers = make_user()
    token = _link(app.test_client(), headers, store_image(me))["token"]
    barrier = threading.Barrier(8)
    statuses = []

    def visit():
        client = app.test_client()
        barrier.wait()
        for _ in range(5):
            statuses.append(client.get(f"/s/{token}").status_code)

    threads = [threading.Thread(target=visit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 40
    with app.app_context():
        assert db.session.scalar(select(Link.views).where(Link.token == token)) == 40


def test_revoked_link_is_404_on_page_file_and_api(client, make_user, store_image):
    me, headers = make_user()
    image_id = store_image(me)
    keep = _link(client, headers, image_id)
    gone = _link(client, headers, image_id)
    assert client.delete(f"/api/v1/links/{gone['token']}", headers=headers).status_code == 204
    for path in ("", "/file", "/preview"):
        assert client.get(f"/s/{gone['token']}{path}").status_code == 404
    assert client.get(f"/s/{keep['token']}").status_code == 200
    assert [item["token"] for item in client.get("/api/v1/links", headers=headers).get_json()["items"]] == [
        keep["token"]]
    assert client.delete(f"/api/v1/links/{gone['token']}", headers=headers).status_code == 404
    assert client.get("/s/no-such-token").status_code == 404


def test_only_the_owner_can_link_or_revoke(app, client, make_user, store_image):
    owner, owner_headers = make_user()
    _, intruder = make_user()
    image_id = store_image(owner)
    response = client.post("/api/v1/links", json={"image_id": image_id}, headers=intruder)
    assert response.status_code == 404
    # Publishing lets others view the image, still not share it under their name.
    client.patch(f"/api/v1/images/{image_id}", json={"public": True}, headers=owner_headers)
    assert client.post("/api/v1/links", json={"image_id": image_id}, headers=intruder).status_code == 404
    link = _link(client, owner_headers, image_id)
    assert client.delete(f"/api/v1/links/{link['token']}", headers=intruder).status_code == 404
    assert client.get("/api/v1/links", headers=intruder).get_json()["items"] == []
    assert client.get(f"/s/{link['token']}").status_code == 200
    assert client.post("/api/v1/links", json={"image_id": image_id}).status_code == 401


@pytest.mark.parametrize("body", [{}, {"image_id": "x", "audio_id": "y"}, {"image_id": 5}, {"video_id": ""}])
def test_link_body_must_name_exactly_one_item(client, make_user, body):
    _, headers = make_user()
    assert client.post("/api/v1/links", json=body, headers=headers).status_code == 422


def test_links_to_audio_use_the_same_page(app, client, make_user):
    me, headers = make_user()
    with app.app_context():
        storage = app.extensions["storage"]
        storage.put("audio/clip.wav", b"RIFF....WAVE", "audio/wav")
        audio = Audio(user_id=me, kind="upload", storage_key="audio/clip.wav", mime_type="audio/wav",
                      title="Field recording")
        db.session.add(audio)
        db.session.commit()
        audio_id = str(audio.public_id)
    response = client.post("/api/v1/links", json={"audio_id": audio_id}, headers=headers)
    assert response.status_code == 201 and response.get_json()["kind"] == "audio"
    token = response.get_json()["token"]
    html = client.get(f"/s/{token}").get_data(as_text=True)
    assert _og(html, "og:title") == "Field recording" and "<audio" in html
    assert client.get(f"/s/{token}/file").data == b"RIFF....WAVE"
    assert client.post("/api/v1/links", json={"audio_id": str(uuid.uuid4())}, headers=headers).status_code == 404


def test_my_links_list_mixes_kinds_newest_first(app, client, make_user, store_image):
    me, headers = make_user()
    with app.app_context():
        audio = Audio(user_id=me, kind="upload", storage_key="audio/a.wav", mime_type="audio/wav")
        db.session.add(audio)
        db.session.commit()
        audio_id = str(audio.public_id)
    image_id = store_image(me)
    first = _link(client, headers, image_id)["token"]
    second = client.post("/api/v1/links", json={"audio_id": audio_id}, headers=headers).get_json()["token"]
    third = _link(client, headers, image_id)["token"]
    items = client.get("/api/v1/links", headers=headers).get_json()["items"]
    assert [(i["token"], i["kind"], i["item_id"]) for i in items] == [
        (third, "image", image_id), (second, "audio", audio_id), (first, "image", image_id)]


def test_deleting_the_image_ends_its_links(client, make_user, store_image):
    me, headers = make_user()
    image_id = store_image(me)
    link = _link(client, headers, image_id)
    assert client.delete(f"/api/v1/images/{image_id}", headers=headers).status_code == 204
    assert client.get(f"/s/{link['token']}").status_code == 404
    assert client.get("/api/v1/links", headers=headers).get_json()["items"] == []
