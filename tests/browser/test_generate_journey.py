"""Generating in a real browser: log in, see the price, generate, see the result, find it in the library.

The live server (tests/browser/conftest.py) is pointed at a proxy on a port chosen when this module is imported,
before the session's live server starts; the proxy and one GPU host (tiny) start with the first test here.
"""
from __future__ import annotations

import re
from unittest import mock

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.models import User
from app.services import credits
from tests.browser.conftest import LIVE_SERVER_ENV, _free_port
from tests.gpu import conftest as gpu_helpers

pytestmark = pytest.mark.browser

PROXY_PORT = _free_port()
LIVE_SERVER_ENV.update({"ATELIER_PROXY_URL": f"http://127.0.0.1:{PROXY_PORT}",
                        "ATELIER_GPU_SHARED_SECRET": gpu_helpers.SECRET})


@pytest.fixture(scope="module")
def browser_gpu_stack(tmp_path_factory):
    """One GPU host with tiny and proxy.py on PROXY_PORT."""
    host = gpu_helpers.start_gpu_host("browser_gpu", tmp_path_factory, gpu_batch_wait_ms=5)
    proxy = None
    try:
        host.wait_ready("/readyz")
        tmp = tmp_path_factory.mktemp("browser_proxy")
        with mock.patch.object(gpu_helpers, "free_port", return_value=PROXY_PORT):
            proxy = gpu_helpers.Process("browser_proxy", "proxy:app", gpu_helpers.base_env(
                tmp, server_type="cpu", database_url="sqlite:////nonexistent/none.db", gpu_hosts=[host.url],
                proxy_health_interval_seconds=1), tmp)
        proxy.wait_ready("/healthz")
        yield
    finally:
        for process in (proxy, host):
            if process is not None:
                process.stop()


def test_generate_see_the_price_and_find_the_image_in_the_library(app, live_server, browser_gpu_stack, page, check,
                                                                   screenshot, new_account):
    watch = check(page)
    email, _ = new_account(page)
    page.goto(live_server.last_link(email, "/verify?token="))
    page.get_by_role("button", name="Confirm my email address").click()
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        credits.grant(user, 50, memo="welcome credits")

    page.goto(live_server.url("/generate"))
    page.get_by_label("Prompt", exact=True).fill("a lighthouse at dusk")
    page.get_by_label("Size").select_option("64")
    page.get_by_label("Steps").fill("2")
    expect(page.locator("#price-value")).to_have_text(re.compile(r"^\d+$"))
    expect(page.locator("#price-balance")).to_contain_text("you have 50")
    page.get_by_role("button", name="Random seed").click()
    expect(page.get_by_label("Seed", exact=True)).to_have_value(re.compile(r"^\d+$"))
    screenshot(page, "1-priced")

    page.get_by_role("button", name="Generate").click()
    result = page.locator("#results .image-card")
    expect(result).to_have_count(1, timeout=60_000)
    expect(page.locator("#progress")).to_be_hidden()
    screenshot(page, "2-result")
    image_id = result.first.get_attribute("data-image-id")

    page.goto(live_server.url("/library"))
    expect(page.locator(f'#library .image-card[data-image-id="{image_id}"]')).to_be_visible()
    page.locator(f'#library .image-card[data-image-id="{image_id}"] a').click()  # opens the lightbox
    page.get_by_role("link", name="Open image page").click()
    expect(page.locator("#image-prompt")).to_have_text("a lighthouse at dusk")
    page.get_by_role("button", name="Like").click()
    expect(page.get_by_role("button", name="Unlike")).to_be_visible()
    page.get_by_role("button", name="Share").click()
    expect(page.locator("#share-url")).to_contain_text("/s/")
    page.get_by_role("button", name="Variations").click()
    expect(page.locator("#results .image-card")).to_have_count(1, timeout=60_000)
    page.get_by_label("Prompt or instruction").fill("the same lighthouse in snow")
    page.get_by_label("Strength").fill("0.5")
    page.get_by_role("button", name="Edit", exact=True).click()
    expect(page.locator("#results .image-card")).to_have_count(2, timeout=60_000)
    screenshot(page, "3-image")
    page.locator("#results .image-card a").first.click()
    expect(page.locator("#lineage-parent")).to_contain_text("Made from")
    page.goto(live_server.url("/library?liked=true"))
    expect(page.locator("#library .image-card")).to_have_count(1)
    page.goto(live_server.url("/library?kind=variation"))
    expect(page.locator("#library .image-card")).to_have_count(1)
    watch.assert_clean()

    # A refused request (Chromium logs its 422, so this comes after the clean check) is explained by the field.
    page.goto(live_server.url("/generate"))
    page.get_by_label("Prompt", exact=True).fill("x")
    page.get_by_label("Steps").fill("0")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#error-steps")).to_contain_text("'steps' must be a whole number")
