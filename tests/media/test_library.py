"""The library API: listing, filters, cursors, lineage, PATCH/DELETE, privacy between users, the gallery."""
from __future__ import annotations

import hashlib
import io
import os
import uuid
from datetime import timedelta

import pytest
from PIL import Image as PILImage
from sqlalchemy import event, func, select, update
from sqlalchemy.exc import DataError

from app.extensions import db
from app.models import Image, User, utcnow
from app.services import media
from app.services.storage import StorageError

from .conftest import make_png


def _ids(response) -> list[str]:
    return [item["id"] for item in response.get_json()["items"]]


def _stored_files(settings_overrides) -> list[str]:
    root = settings_overrides["storage_local_dir"]
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files)


def test_store_generated_image_records_params_hash_size_and_thumbnail(app, client, make_user, store_image):
    user_id, headers = make_user()
    image_id = store_image(user_id, size=(512, 384), kind="txt2img", prompt="a red fox", negative_prompt="blurry",
                           seed=42, steps=20, guidance=7.5, scheduler="euler", model_id="tiny")
    body = client.get(f"/api/v1/images/{image_id}", headers=headers).get_json()
    assert {k: body[k] for k in ("kind", "prompt", "negative_prompt", "seed", "steps", "guidance", "scheduler",
                                 "model", "width", "height", "public", "liked")} == {
        "kind": "txt2img", "prompt": "a red fox", "negative_prompt": "blurry", "seed": 42, "steps": 20,
        "guidance": 7.5, "scheduler": "euler", "model": "tiny", "width": 512, "height": 384, "public": False,
        "liked": False}
    original = client.get(f"/api/v1/images/{image_id}/file", headers=headers)
    assert original.mimetype == "image/png" and len(original.data) == body["byte_size"]
    assert hashlib.sha256(original.data).hexdigest() == body["content_hash"]
    thumb = PILImage.open(io.BytesIO(client.get(f"/api/v1/images/{image_id}/thumbnail", headers=headers).data))
    assert (thumb.format, thumb.size) == ("WEBP", (256, 192))
    # The JSON carries short-lived signed URLs that work without credentials.
    assert client.get(body["url"].replace("http://atelier.test", "")).data == original.data
    assert client.get(body["thumbnail_url"].replace("http://atelier.test", "")).mimetype == "image/webp"


def test_store_is_all_or_nothing_when_the_row_fails(app, make_user, settings_overrides):
    user_id, _ = make_user()
    with app.app_context():
        user = db.session.get(User, user_id)
        with pytest.raises(DataError):  # PostgreSQL refuses a seed beyond BIGINT
            media.store_generated_image(user, make_png(), media.ImageParams(seed=2 ** 70))
        assert db.session.scalar(select(func.count()).select_from(Image)) == 0
    assert _stored_files(settings_overrides) == []


def test_store_is_all_or_nothing_when_storage_fails(app, make_user, settings_overrides, monkeypatch):
    user_id, _ = make_user()
    with app.app_context():
        storage = app.extensions["storage"]
        real_put = storage.put

        def put_image_then_fail(key, data, content_type):
            if key.startswith("thumbnails/"):
                raise StorageError("disk full")
            real_put(key, data, content_type)

        monkeypatch.setattr(storage, "put", put_image_then_fail)
        with pytest.raises(StorageError):
            media.store_generated_image(db.session.get(User, user_id), make_png(), media.ImageParams())
        assert db.session.scalar(select(func.count()).select_from(Image)) == 0
    assert _stored_files(settings_overrides) == []


def test_library_lists_mine_newest_first_with_filters(client, make_user, store_image):
    me, headers = make_user()
    other, _ = make_user()
    a = store_image(me, kind="txt2img", model_id="tiny")
    b = store_image(me, kind="img2img", model_id="sd15", parent_public_id=a)
    c = store_image(me, kind="txt2img", model_id="sd15")
    store_image(other, kind="txt2img", model_id="tiny")
    assert client.patch(f"/api/v1/images/{a}", json={"liked": True}, headers=headers).status_code == 200
    assert client.patch(f"/api/v1/images/{c}", json={"public": True}, headers=headers).status_code == 200

    assert _ids(client.get("/api/v1/images", headers=headers)) == [c, b, a]
    assert _ids(client.get("/api/v1/images?liked=true", headers=headers)) == [a]
    assert _ids(client.get("/api/v1/images?liked=false", headers=headers)) == [c, b]
    assert _ids(client.get("/api/v1/images?public=true", headers=headers)) == [c]
    assert _ids(client.get("/api/v1/images?kind=img2img", headers=headers)) == [b]
    assert _ids(client.get("/api/v1/images?model=sd15", headers=headers)) == [c, b]
    assert _ids(client.get("/api/v1/images?model=sd15&public=false", headers=headers)) == [b]
    items = client.get("/api/v1/images", headers=headers).get_json()["items"]
    assert items[1]["parent"] == {"id": a, "kind": "txt2img"}

    for query in ("liked=maybe", "kind=painting", "limit=0", "limit=500", "cursor=not-a-cursor"):
        response = client.get(f"/api/v1/images?{query}", headers=headers)
        assert response.status_code == 422, query
        assert response.get_json()["error"]["code"] == "invalid_request"
    assert client.get("/api/v1/images").status_code == 401


def test_cursor_pagination_walks_every_image_once_even_with_equal_timestamps(app, client, make_user, store_image):
    me, headers = make_user()
    ids = [store_image(me, prompt=f"image {n}") for n in range(7)]
    with app.app_context():  # three images created in the same instant: the id breaks the tie
        same = utcnow() - timedelta(minutes=5)
        db.session.execute(update(Image).where(Image.public_id.in_([uuid.UUID(i) for i in ids[1:4]]))
                           .values(created_at=same))
        db.session.commit()
    seen, cursor, pages = [], None, 0
    while True:
        url = "/api/v1/images?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = client.get(url, headers=headers).get_json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 4
    assert seen == [ids[6], ids[5], ids[4], ids[0], ids[3], ids[2], ids[1]]


def test_patch_changes_title_like_and_publishing(client, make_user, store_image):
    me, headers = make_user()
    image_id = store_image(me)
    body = client.patch(f"/api/v1/images/{image_id}", json={"title": "  Dawn  ", "liked": True},
                        headers=headers).get_json()
    assert (body["title"], body["liked"], body["public"], body["published_at"]) == ("Dawn", True, False, None)
    private_url = body["url"]
    assert "signature=" in private_url

    body = client.patch(f"/api/v1/images/{image_id}", json={"public": True}, headers=headers).get_json()
    assert body["public"] is True and body["published_at"] is not None
    assert body["url"] == f"http://atelier.test/api/v1/images/{image_id}/file"  # stable once published
    assert client.get(f"/api/v1/images/{image_id}", headers=headers).get_json()["url"] == body["url"]

    body = client.patch(f"/api/v1/images/{image_id}", json={"public": False, "title": None},
                        headers=headers).get_json()
    assert (body["public"], body["published_at"], body["title"]) == (False, None, None)

    for bad in ({"liked": "yes"}, {"public": 1}, {"title": 5}, {"title": "x" * 201}, {"prompt": "hack"}):
        response = client.patch(f"/api/v1/images/{image_id}", json=bad, headers=headers)
        assert response.status_code == 422, bad
    assert client.patch(f"/api/v1/images/{image_id}", data="liked=1", headers=headers).status_code == 415


def test_delete_removes_row_bytes_and_thumbnail_and_keeps_children(app, client, make_user, store_image,
                                                                   settings_overrides):
    me, headers = make_user()
    parent = store_image(me)
    child = store_image(me, kind="variation", parent_public_id=parent)
    assert len(_stored_files(settings_overrides)) == 4
    with app.app_context():
        row = db.session.scalar(select(Image).where(Image.public_id == uuid.UUID(parent)))
        keys = (row.storage_key, row.thumbnail_key)
    assert client.delete(f"/api/v1/images/{parent}", headers=headers).status_code == 204
    with app.app_context():
        storage = app.extensions["storage"]
        assert not storage.exists(keys[0]) and not storage.exists(keys[1])
    assert len(_stored_files(settings_overrides)) == 2
    assert client.get(f"/api/v1/images/{parent}", headers=headers).status_code == 404
    assert client.get(f"/api/v1/images/{child}", headers=headers).get_json()["parent"] is None
    assert client.delete(f"/api/v1/images/{parent}", headers=headers).status_code == 404


def test_another_users_private_image_is_404_for_every_verb(client, make_user, store_image):
    owner, owner_headers = make_user()
    _, intruder = make_user()
    image_id = store_image(owner, prompt="secret")
    for method, path in (("get", ""), ("patch", ""), ("delete", ""), ("get", "/file"), ("get", "/thumbnail")):
        kwargs = {"json": {"public": True}} if method == "patch" else {}
        response = getattr(client, method)(f"/api/v1/images/{image_id}{path}", headers=intruder, **kwargs)
        assert response.status_code == 404, (method, path)
        assert "secret" not in response.get_data(as_text=True)
    # Same answer as for an id that never existed, and for anonymous visitors.
    assert client.get(f"/api/v1/images/{uuid.uuid4()}", headers=intruder).status_code == 404
    assert client.get(f"/api/v1/images/{image_id}").status_code == 404
    assert client.get("/api/v1/images/not-a-uuid", headers=intruder).status_code == 404
    # Nothing changed for the owner.
    body = client.get(f"/api/v1/images/{image_id}", headers=owner_headers).get_json()
    assert body["public"] is False and body["prompt"] == "secret"


def test_published_image_is_readable_by_anyone_but_changeable_only_by_its_owner(client, make_user, store_image):
    owner, owner_headers = make_user()
    _, other = make_user()
    image_id = store_image(owner)
    client.patch(f"/api/v1/images/{image_id}", json={"public": True}, headers=owner_headers)
    assert client.get(f"/api/v1/images/{image_id}").get_json()["mine"] is False
    assert client.get(f"/api/v1/images/{image_id}/file").mimetype == "image/png"
    assert client.patch(f"/api/v1/images/{image_id}", json={"public": False}, headers=other).status_code == 404
    assert client.delete(f"/api/v1/images/{image_id}", headers=other).status_code == 404
    assert client.get(f"/api/v1/images/{image_id}").status_code == 200


def test_lineage_shows_parent_and_only_the_children_a_viewer_may_see(client, make_user, store_image):
    owner, owner_headers = make_user()
    remixer, remixer_headers = make_user()
    root = store_image(owner)
    client.patch(f"/api/v1/images/{root}", json={"public": True}, headers=owner_headers)
    mine = store_image(owner, kind="variation", parent_public_id=root)
    theirs_private = store_image(remixer, kind="img2img", parent_public_id=root)

    owner_view = client.get(f"/api/v1/images/{root}", headers=owner_headers).get_json()
    assert [c["id"] for c in owner_view["children"]] == [mine]
    remixer_view = client.get(f"/api/v1/images/{root}", headers=remixer_headers).get_json()
    assert [c["id"] for c in remixer_view["children"]] == [theirs_private]
    child = client.get(f"/api/v1/images/{theirs_private}", headers=remixer_headers).get_json()
    assert child["parent"] == {"id": root, "kind": "txt2img"}

    client.patch(f"/api/v1/images/{root}", json={"public": False}, headers=owner_headers)
    # The parent went private: the remixer no longer learns its id.
    assert client.get(f"/api/v1/images/{theirs_private}", headers=remixer_headers).get_json()["parent"] is None


def test_gallery_shows_only_published_images_most_recent_first(client, make_user, store_image):
    alice, alice_headers = make_user()
    bob, bob_headers = make_user()
    a1, a2 = store_image(alice), store_image(alice)
    b1 = store_image(bob)
    client.patch(f"/api/v1/images/{a2}", json={"public": True}, headers=alice_headers)
    client.patch(f"/api/v1/images/{b1}", json={"public": True}, headers=bob_headers)
    client.patch(f"/api/v1/images/{a1}", json={"public": True}, headers=alice_headers)
    client.patch(f"/api/v1/images/{a1}", json={"public": False}, headers=alice_headers)
    assert _ids(client.get("/api/v1/gallery")) == [b1, a2]
    page = client.get("/api/v1/gallery?limit=1").get_json()
    assert _ids(client.get(f"/api/v1/gallery?limit=1&cursor={page['next_cursor']}")) == [a2]


def test_gallery_query_count_does_not_grow_with_the_page(app, client, make_user, store_image):
    user, headers = make_user()
    parent = store_image(user)

    def publish(n):
        for _ in range(n):
            image_id = store_image(user, kind="variation", parent_public_id=parent)
            client.patch(f"/api/v1/images/{image_id}", json={"public": True}, headers=headers)

    def count_queries() -> int:
        statements = []
        with app.app_context():
            engine = db.engine
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            assert client.get("/api/v1/gallery?limit=50").status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(statements)

    publish(2)
    few = count_queries()
    publish(8)
    assert len(client.get("/api/v1/gallery?limit=50").get_json()["items"]) == 10
    assert count_queries() == few


def test_delete_all_images_of_a_user_removes_rows_and_files(app, make_user, store_image, settings_overrides):
    leaving, _ = make_user()
    staying, _ = make_user()
    store_image(leaving)
    store_image(leaving)
    kept = store_image(staying)
    with app.app_context():
        assert media.delete_all_images(db.session.get(User, leaving)) == 2
        assert [str(i) for i in db.session.scalars(select(Image.public_id))] == [kept]
    assert len(_stored_files(settings_overrides)) == 2  # the other user's image and thumbnail
