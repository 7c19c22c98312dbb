"""Edits, variations and upscaling with lineage; privacy of other users' images; Idempotency-Key."""
from __future__ import annotations

import io

from PIL import Image as PILImage

from tests.media.conftest import make_png

TINY = {"prompt": "a red fox", "width": 64, "height": 64, "steps": 2}


def _generate(client, headers, **extra) -> dict:
    response = client.post("/api/v1/images/generations", json={**TINY, **extra}, headers=headers)
    assert response.status_code == 201, response.json
    return response.json["images"][0]


def _mask_png(width=64, height=64) -> bytes:
    mask = PILImage.new("L", (width, height), 0)
    mask.paste(255, (16, 16, 48, 48))
    out = io.BytesIO()
    mask.save(out, "PNG")
    return out.getvalue()


def test_img2img_from_a_library_image_records_the_parent(client, make_user, balance):
    user_id, headers, _, _ = make_user(credit=100)
    source = _generate(client, headers)
    response = client.post("/api/v1/images/edits", headers=headers, json={
        "image_id": source["id"], "prompt": "the fox in snow", "strength": 0.5, "steps": 2, "n": 2})
    assert response.status_code == 201, response.json
    edits = response.json["images"]
    assert [e["kind"] for e in edits] == ["img2img", "img2img"]
    assert all(e["parent"]["id"] == source["id"] and e["strength"] == 0.5 for e in edits)
    children = client.get(f"/api/v1/images/{source['id']}", headers=headers).json["children"]
    assert {c["id"] for c in children} == {e["id"] for e in edits}


def test_inpaint_with_an_uploaded_image_and_mask_in_the_same_request(client, make_user):
    _, headers, _, _ = make_user()
    response = client.post("/api/v1/images/edits", headers=headers, content_type="multipart/form-data", data={
        "image": (io.BytesIO(make_png(64, 64)), "photo.png"), "mask": (io.BytesIO(_mask_png()), "mask.png"),
        "prompt": "a hat", "steps": "2"})
    assert response.status_code == 201, response.json
    edit = response.json["images"][0]
    assert edit["kind"] == "inpaint" and (edit["width"], edit["height"]) == (64, 64)
    upload = client.get(f"/api/v1/images/{edit['parent']['id']}", headers=headers).json
    assert upload["kind"] == "upload"


def test_instruction_edit_and_template_source(app, client, make_user):
    _, headers, _, _ = make_user()
    from app.services import media

    with app.app_context():
        template_id = str(media.store_template(make_png(64, 64), "starter").public_id)
    response = client.post("/api/v1/images/edits", headers=headers, json={
        "template_id": template_id, "prompt": "make it night", "mode": "instruct", "steps": 2})
    assert response.status_code == 201, response.json
    assert response.json["images"][0]["kind"] == "instruct"
    assert response.json["images"][0]["parent"]["id"] == template_id


def test_edit_validation_names_the_field_before_any_charge(client, make_user, balance):
    user_id, headers, _, _ = make_user(credit=100)
    source = _generate(client, headers)
    spent = 100 - balance(user_id)[0]
    cases = [({"prompt": "x"}, "image_id"),
             ({"image_id": source["id"]}, "prompt"),
             ({"image_id": source["id"], "prompt": "x", "mode": "paint"}, "mode"),
             ({"image_id": source["id"], "prompt": "x", "mode": "inpaint"}, "mask"),
             ({"image_id": source["id"], "prompt": "x", "strength": 0}, "strength"),
             ({"image_id": source["id"], "prompt": "x", "strength": 0.2}, "steps"),
             ({"image_id": source["id"], "prompt": "x", "mask": "not base64!"}, "mask")]
    for body, field in cases:
        response = client.post("/api/v1/images/edits", headers=headers, json={**body, "steps": 2})
        assert response.status_code == 422 and response.json["error"]["field"] == field, (body, response.json)
    bad = client.post("/api/v1/images/edits", headers=headers, content_type="multipart/form-data",
                      data={"image": (io.BytesIO(b"GIF89a not really"), "x.png"), "prompt": "x"})
    assert bad.status_code == 422
    assert balance(user_id) == (100 - spent, 0)


def test_variations_and_upscale_keep_lineage(client, make_user):
    _, headers, _, _ = make_user()
    source = _generate(client, headers)
    variations = client.post(f"/api/v1/images/{source['id']}/variations", headers=headers,
                             json={"n": 2, "steps": 2})
    assert variations.status_code == 201, variations.json
    assert [v["kind"] for v in variations.json["images"]] == ["variation", "variation"]
    assert all(v["prompt"] == "a red fox" and v["parent"]["id"] == source["id"] for v in variations.json["images"])
    upscaled = client.post(f"/api/v1/images/{source['id']}/upscale", headers=headers, json={"steps": 2})
    assert upscaled.status_code == 201, upscaled.json
    image = upscaled.json["images"][0]
    assert (image["kind"], image["width"], image["height"]) == ("upscale", 256, 256)
    assert image["parent"]["id"] == source["id"]


def test_nobody_can_use_read_change_or_delete_another_users_private_image(client, make_user, balance):
    _, owner_headers, _, _ = make_user()
    intruder_id, intruder, _, _ = make_user(credit=100)
    private = _generate(client, owner_headers)
    assert client.get(f"/api/v1/images/{private['id']}", headers=intruder).status_code == 404
    assert client.get(f"/api/v1/images/{private['id']}/file", headers=intruder).status_code == 404
    assert client.patch(f"/api/v1/images/{private['id']}", headers=intruder, json={"public": True}).status_code == 404
    assert client.delete(f"/api/v1/images/{private['id']}", headers=intruder).status_code == 404
    assert client.post(f"/api/v1/images/{private['id']}/variations", headers=intruder, json={}).status_code == 404
    assert client.post(f"/api/v1/images/{private['id']}/upscale", headers=intruder).status_code == 404
    assert client.post("/api/v1/images/edits", headers=intruder,
                       json={"image_id": private["id"], "prompt": "mine now"}).status_code == 404
    assert balance(intruder_id) == (100, 0)
    assert client.get(f"/api/v1/images/{private['id']}", headers=owner_headers).status_code == 200
    # Once published, anyone may start a variation from it (and the variation is theirs).
    client.patch(f"/api/v1/images/{private['id']}", headers=owner_headers, json={"public": True})
    response = client.post(f"/api/v1/images/{private['id']}/variations", headers=intruder, json={"steps": 2})
    assert response.status_code == 201 and response.json["images"][0]["mine"] is True


def test_the_same_idempotency_key_twice_charges_once(client, make_user, balance, image_rows):
    user_id, headers, _, _ = make_user(credit=100)
    key_headers = {**headers, "Idempotency-Key": "order-7"}
    first = client.post("/api/v1/images/generations", json=TINY, headers=key_headers)
    second = client.post("/api/v1/images/generations", json=TINY, headers=key_headers)
    assert first.status_code == second.status_code == 201
    assert second.json == first.json and second.headers.get("Idempotent-Replayed") == "true"
    assert image_rows(user_id) == 1
    assert balance(user_id)[0] == 100 - first.json["credits_charged"]
    conflict = client.post("/api/v1/images/generations", json={**TINY, "prompt": "another"}, headers=key_headers)
    assert conflict.status_code == 409 and conflict.json["error"]["code"] == "idempotency_conflict"
    # Keys are per user: someone else's identical key is a separate request.
    other_id, other, _, _ = make_user(credit=100)
    assert client.post("/api/v1/images/generations", json=TINY,
                       headers={**other, "Idempotency-Key": "order-7"}).status_code == 201
    assert image_rows(other_id) == 1


def test_idempotent_multipart_edit_is_replayed(client, make_user, image_rows):
    user_id, headers, _, _ = make_user()
    png = make_png(64, 64)

    def send():
        return client.post("/api/v1/images/edits", headers={**headers, "Idempotency-Key": "edit-1"},
                           content_type="multipart/form-data",
                           data={"image": (io.BytesIO(png), "a.png"), "prompt": "p", "steps": "2"})

    first, second = send(), send()
    assert first.status_code == second.status_code == 201
    assert first.json == second.json
    assert image_rows(user_id) == 2  # the upload and its edit, once
