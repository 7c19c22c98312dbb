"""Every GET page of the app, at desktop (1280px) and phone (375px) sizes: no console errors, no failed requests,
no horizontal scroll, and a label for every control.

The page routes are enumerated from the app's URL map, so a page added later fails this test until it is listed in
`_urls` below (with the data it needs)."""
from __future__ import annotations

import io
import math
import struct
import wave
from pathlib import Path

import pytest
from PIL import Image as PILImage

from app.extensions import db
from app.routes import PAGE_BLUEPRINTS
from app.services import accounts, audio, links, media, videos
from tests.browser.conftest import JOURNEY_PASSWORD

pytestmark = pytest.mark.browser

# Not pages: bytes behind a share link (their page is /s/<token>).
NOT_PAGES = {"share_pages.shared_file", "share_pages.shared_preview"}
# Pages a visitor sees logged out; every other page is visited logged in (as an admin, who can see them all).
PUBLIC = {"pages.landing", "pages.signup", "pages.login", "pages.verify", "pages.forgot_password",
          "pages.reset_password", "generate_pages.gallery_page", "generate_pages.image_page",
          "share_pages.shared_item", "credit_pages.referral_link"}

# Interactive elements that must have an accessible name (a label, aria-label or aria-labelledby).
UNLABELLED_CONTROLS_JS = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
  .filter((el) => !el.closest('[hidden]') && !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !el.getAttribute('aria-labelledby') && !(el.tagName === 'BUTTON' && el.textContent.trim()))
  .map((el) => el.outerHTML.slice(0, 120))"""


@pytest.fixture
def settings_overrides(settings_overrides, live_server):
    """Files this test stores land where the live server reads them."""
    return {**settings_overrides, "storage_local_dir": str(Path(live_server.folder) / "media")}


def _png(size: int = 96) -> bytes:
    picture = PILImage.new("RGB", (size, size), (40, 90, 160))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _wav(seconds: float = 2.0, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(i / 6))) for i in range(int(seconds * rate))))
    return buffer.getvalue()


def _page_endpoints(app) -> set[str]:
    names = {module.rsplit(".", 1)[1] for module in PAGE_BLUEPRINTS}
    return {rule.endpoint for rule in app.url_map.iter_rules()
            if "GET" in rule.methods and rule.endpoint.split(".")[0] in names and rule.endpoint not in NOT_PAGES}


def _urls(app, email: str) -> dict[str, str]:
    """One URL per page endpoint, with an image, audio, video project and share link of an admin behind them."""
    with app.app_context():
        user = accounts.register(email, JOURNEY_PASSWORD, is_admin=True)
        accounts.verify_user(email)
        image = media.store_upload(user, _png(), title="a blue square")
        media.update_image(user, str(image.public_id), {"public": True})
        clip = audio.store_upload(user, _wav(), title="hum.wav")
        project = videos.create_project(user, {"audio_id": str(clip.public_id), "prompts": [
            {"at": 0, "prompt": "a red fox"}]})
        link = links.create_link(user, "image_id", str(image.public_id))
        return {
            "pages.landing": "/", "pages.signup": "/signup?ref=" + user.referral_code, "pages.login": "/login",
            "pages.verify": "/verify?token=not-a-real-token", "pages.forgot_password": "/forgot-password",
            "pages.reset_password": "/reset-password?token=not-a-real-token", "pages.account": "/account",
            "credit_pages.credits_page": "/credits", "credit_pages.referrals_page": "/referrals",
            "credit_pages.referral_link": "/r/" + user.referral_code,
            "generate_pages.generate_page": "/generate", "generate_pages.library_page": "/library",
            "generate_pages.image_page": f"/images/{image.public_id}", "generate_pages.gallery_page": "/gallery",
            "share_pages.shared_item": f"/s/{link.token}",
            "media_job_pages.audio_page": "/audio", "media_job_pages.audio_detail": f"/audio/{clip.public_id}",
            "media_job_pages.videos_page": "/videos",
            "media_job_pages.project_page": f"/videos/projects/{project.public_id}",
            "admin_pages.overview": "/admin", "admin_pages.users": "/admin/users",
            "admin_pages.user_detail": f"/admin/users/{user.public_id}", "admin_pages.hosts": "/admin/hosts",
            "admin_pages.models": "/admin/models", "admin_pages.jobs": "/admin/jobs",
        }


def _visit(page, live_server, check, path: str) -> list[str]:
    """Open one page and return what is wrong with it."""
    watch = check(page)
    response = page.goto(live_server.url(path), wait_until="load")
    try:
        page.wait_for_load_state("networkidle", timeout=3_000)
    except Exception:  # a page that polls never goes idle; what it loaded so far is checked
        pass
    wrong = [f"{p}" for p in watch.problems]
    if response is None or response.status != 200:
        wrong.append(f"answered {response.status if response else 'nothing'}")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    if overflow > 0:
        wrong.append(f"scrolls sideways by {overflow}px")
    wrong += [f"unlabelled control {html}" for html in page.evaluate(UNLABELLED_CONTROLS_JS)]
    return [f"{path} at {page.viewport_size['width']}px: {line}" for line in wrong]


def _log_in(page, live_server, email: str) -> None:
    page.goto(live_server.url("/login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(JOURNEY_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url)


def test_every_page_is_clean_on_desktop_and_phone(app, live_server, browser, check, screenshot):
    urls = _urls(app, "every-page-admin@example.com")
    assert set(urls) == _page_endpoints(app), "list every page route in _urls"
    problems: list[str] = []
    for width, height in ((1280, 900), (375, 740)):
        visitor = browser.new_context(viewport={"width": width, "height": height})
        member = browser.new_context(viewport={"width": width, "height": height})
        try:
            visitor_page, member_page = visitor.new_page(), member.new_page()
            _log_in(member_page, live_server, "every-page-admin@example.com")
            for endpoint, path in sorted(urls.items()):
                target = visitor_page if endpoint in PUBLIC else member_page
                problems += _visit(target, live_server, check, path)
                if endpoint in ("pages.landing", "generate_pages.library_page", "generate_pages.image_page"):
                    screenshot(target, f"{width}-{endpoint}")
        finally:
            visitor.close()
            member.close()
    assert not problems, "\n".join(problems)
