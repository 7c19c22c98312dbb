"""No N+1 on the list pages: the library, the gallery, the landing page and an image's lineage run the same
number of SQL statements whether they show 3 images or 30 (parents included)."""
from __future__ import annotations

import re
import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from app.extensions import db
from app.models import Image
from app.services import accounts

PASSWORD = "query counting passphrase"


@contextmanager
def counted(app):
    """Count the SQL statements sent while the block runs."""
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _images(user, count: int, parent: Image | None = None, public: bool = True) -> list[Image]:
    rows = []
    for i in range(count):
        public_id = uuid.uuid4()
        rows.append(Image(public_id=public_id, user_id=user.id, kind="img2img" if parent else "txt2img",
                          storage_key=f"images/{user.id}/{public_id}.png",
                          thumbnail_key=f"thumbnails/{user.id}/{public_id}.webp", mime_type="image/png",
                          width=64, height=64, prompt=f"image {i}", is_public=public,
                          published_at=db.func.now() if public else None,
                          parent_id=parent.id if parent is not None else None))
    db.session.add_all(rows)
    db.session.commit()
    return rows


def _with_parents(owner, stranger, count: int) -> None:
    """`count` public images of owner, each made from its own private image of a stranger (outside any list)."""
    for parent in _images(stranger, count, public=False):
        _images(owner, 1, parent=parent)


def _log_in(client, email: str) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token}).status_code == 302


def _statements(app, client, path: str) -> int:
    """Statements for one request, made like a browser's: outside any app context of the test."""
    with counted(app) as statements:
        response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return len(statements)


def _cards(client, path: str, marker: str = 'class="image-card"') -> int:
    return client.get(path).get_data(as_text=True).count(marker)


@pytest.mark.parametrize("path", ["/library", "/gallery", "/"])
def test_list_pages_run_the_same_queries_for_3_and_30_images(app, client, path):
    with app.app_context():
        owner = accounts.register("lister@example.com", PASSWORD)
        stranger = accounts.register("stranger@example.com", PASSWORD)
        _images(owner, 1)
        _with_parents(owner, stranger, 2)  # 3 images, two with a parent each
    if path != "/":
        _log_in(client, "lister@example.com")
    few = _statements(app, client, path)
    assert _cards(client, path) == 3
    with app.app_context():
        _with_parents(db.session.merge(owner), db.session.merge(stranger), 27)
    many = _statements(app, client, path)
    assert _cards(client, path) == (12 if path == "/" else 24)  # a page's worth: the landing shows fewer
    assert many == few, f"{path}: {few} statements for 3 images, {many} for 30"


def test_image_page_lineage_queries_do_not_grow_with_children(app, client):
    with app.app_context():
        owner = accounts.register("lineage@example.com", PASSWORD)
        first = _images(owner, 1)[0]
        _images(owner, 3, parent=first)
        path = f"/images/{first.public_id}"
    few = _statements(app, client, path)
    assert _cards(client, path, 'class="lineage-child"') == 3
    with app.app_context():
        _images(db.session.merge(owner), 27, parent=db.session.merge(first))
    many = _statements(app, client, path)
    assert _cards(client, path, 'class="lineage-child"') == 30
    assert many == few
