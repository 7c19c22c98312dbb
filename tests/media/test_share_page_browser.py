"""The shared page in a real browser, served over HTTP: the image loads, the preview tags point at real bytes."""
from __future__ import annotations

import urllib.request


def test_shared_image_page_renders_in_chromium(app_url, client, make_user, store_image, browser):
    me, headers = make_user()
    image_id = store_image(me, size=(96, 64), prompt="neon koi")
    link = client.post("/api/v1/links", json={"image_id": image_id}, headers=headers).get_json()
    assert link["url"] == f"{app_url}/s/{link['token']}"

    context = browser.new_context()
    try:
        page = context.new_page()
        response = page.goto(link["url"])
        assert response.status == 200
        assert page.locator("h1").inner_text() == "neon koi"
        image = page.locator("article img")
        image.wait_for()
        page.wait_for_function("document.querySelector('article img').complete")
        assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [96, 64]
        og_image = page.locator('meta[property="og:image"]').get_attribute("content")
    finally:
        context.close()

    with urllib.request.urlopen(og_image, timeout=10) as preview:  # what a link unfurler would fetch
        assert preview.headers["Content-Type"] == "image/webp"
    assert client.get("/api/v1/links", headers=headers).get_json()["items"][0]["views"] == 1
