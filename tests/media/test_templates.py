"""Templates: `flask media add-template PATH` stores an ownerless starter image anyone can list and open."""
from __future__ import annotations

import os

from sqlalchemy import select

from app.extensions import db
from app.models import Image

from .conftest import make_png


def test_add_template_cli_stores_a_template_anyone_can_list_and_open(app, client, runner, tmp_path, make_user):
    path = tmp_path / "portrait.jpg"
    path.write_bytes(make_png(300, 200, fmt="JPEG"))
    result = runner.invoke(args=["media", "add-template", str(path), "--title", "Portrait starter"])
    assert result.exit_code == 0, result.output
    assert "300x200" in result.output
    runner.invoke(args=["media", "add-template", str(path)])  # title defaults to the file name

    with app.app_context():
        rows = list(db.session.scalars(select(Image).order_by(Image.id)))
        assert [(r.kind, r.is_template, r.user_id, r.title) for r in rows] == [
            ("template", True, None, "Portrait starter"), ("template", True, None, "portrait")]
        first = str(rows[0].public_id)

    listed = client.get("/api/v1/templates").get_json()["items"]  # no login needed
    assert [item["title"] for item in listed] == ["portrait", "Portrait starter"]
    assert all(item["template"] and not item["mine"] for item in listed)
    _, headers = make_user()
    assert client.get(f"/api/v1/images/{first}", headers=headers).get_json()["width"] == 300
    assert client.get(f"/api/v1/images/{first}/file").mimetype == "image/jpeg"
    # Templates are not anyone's library items and cannot be changed through the API.
    assert client.get("/api/v1/images", headers=headers).get_json()["items"] == []
    assert client.delete(f"/api/v1/images/{first}", headers=headers).status_code == 404
    assert client.get("/api/v1/gallery").get_json()["items"] == []


def test_add_template_refuses_files_that_are_not_images(app, runner, tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image")
    result = runner.invoke(args=["media", "add-template", str(path)])
    assert result.exit_code != 0
    assert "not a PNG, JPEG or WebP" in result.output
    with app.app_context():
        assert db.session.scalars(select(Image)).first() is None


def test_remove_template_deletes_row_and_files(app, client, runner, tmp_path, settings_overrides):
    path = tmp_path / "start.png"
    path.write_bytes(make_png(32, 32))
    runner.invoke(args=["media", "add-template", str(path)])
    template_id = client.get("/api/v1/templates").get_json()["items"][0]["id"]
    result = runner.invoke(args=["media", "remove-template", template_id])
    assert result.exit_code == 0, result.output
    assert client.get("/api/v1/templates").get_json()["items"] == []
    assert client.get(f"/api/v1/images/{template_id}").status_code == 404
    root = settings_overrides["storage_local_dir"]
    assert [f for _, _, files in os.walk(root) for f in files] == []
    again = runner.invoke(args=["media", "remove-template", template_id])
    assert again.exit_code != 0 and "No such template" in again.output
