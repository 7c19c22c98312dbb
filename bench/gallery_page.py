"""Time the public gallery's first page (and the landing page) with 1,000 published images in the library.

1,000 small real images (stored with their thumbnails in local storage, as uploads are) are published by 10 users;
then GET /gallery and GET / are timed through the Flask test client (the whole request: routing, session, queries,
signed/public URLs, template), median and p95 over --requests each, and the SQL statements one request runs.

    .venv/bin/python bench/gallery_page.py [--images 1000] [--requests 200]

Uses a throwaway database on ATELIER_TEST_PG (default postgresql://postgres@127.0.0.1:5432/test). Target: median
under 100 ms.
"""
from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from PIL import Image as PILImage  # noqa: E402
from sqlalchemy import event  # noqa: E402

from app import create_app  # noqa: E402
from app.extensions import db  # noqa: E402
from app.models import User  # noqa: E402
from app.services import media  # noqa: E402
from _servers import throwaway_database  # noqa: E402

TARGET_MS = 100.0


def _png(i: int) -> bytes:
    picture = PILImage.new("RGB", (64, 64), ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _fill(app, images: int) -> None:
    with app.app_context():
        users = [User(email=f"bench{i}@example.com", password_hash="x", referral_code=f"bench{i}", is_verified=True)
                 for i in range(10)]
        db.session.add_all(users)
        db.session.commit()
        for i in range(images):
            image = media.store_upload(users[i % len(users)], _png(i), title=f"bench image {i}")
            media.update_image(users[i % len(users)], str(image.public_id), {"public": True})


def _time(client, path: str, requests: int) -> list[float]:
    for _ in range(5):  # warm up: template compilation, connection pool
        assert client.get(path).status_code == 200
    took = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get(path)
        took.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    failures = 0
    with throwaway_database() as url:
        folder = tempfile.mkdtemp(prefix="atelier-gallery-bench-")
        app = create_app({"environment": "testing", "server_type": "cpu", "database_url": url,
                          "instance_dir": folder, "storage_local_dir": os.path.join(folder, "media"),
                          "log_json": False})
        started = time.perf_counter()
        _fill(app, args.images)
        print(f"stored {args.images} published images with thumbnails in {time.perf_counter() - started:.1f} s")
        client = app.test_client()
        with app.app_context():
            engine = db.engine
        for path in ("/gallery", "/"):
            statements: list[str] = []
            listener = lambda *a: statements.append(a[2])  # noqa: E731
            event.listen(engine, "before_cursor_execute", listener)
            body = client.get(path).get_data(as_text=True)
            event.remove(engine, "before_cursor_execute", listener)
            took = _time(client, path, args.requests)
            median = statistics.median(took)
            p95 = statistics.quantiles(took, n=20)[18]
            cards, lazy = body.count('class="image-card"'), body.count('loading="lazy"')
            ok = median < TARGET_MS
            failures += not ok
            print(f"{'ok  ' if ok else 'SLOW'} GET {path:<9} median {median:6.1f} ms  p95 {p95:6.1f} ms  "
                  f"({cards} cards, {len(statements)} SQL statements, {lazy} lazy images; "
                  f"target median < {TARGET_MS:.0f} ms, "
                  f"ratio {median / TARGET_MS:.2f})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
