"""The audio and video project pages in Chromium: upload a clip, make a project, edit timed prompts, preview the
schedule, render with a live progress bar (a real worker, the real GPU pool), watch and download the video."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import User
from app.services import credits as ledger
from tests.conftest import sign_up_in_browser
from tests.video.conftest import make_wav, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def test_audio_to_music_video_journey(app, app_url, gpu_pool, start_worker, tmp_path, browser):
    email = f"journey-{uuid.uuid4().hex[:8]}@example.com"
    errors: list[str] = []
    context = browser.new_context()
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        sign_up_in_browser(page, app_url, email, "journey passphrase 42")
        with app.app_context():
            user = db.session.scalar(select(User).where(User.email == email))
            user.is_verified = True
            db.session.commit()
            user_id = user.id
            ledger.grant(user_id, 40, memo="journey")

        page.goto(f"{app_url}/audio")
        wav = tmp_path / "beat.wav"
        wav.write_bytes(make_wav(2.0))
        page.set_input_files("#audio-file", str(wav))
        page.get_by_role("button", name="Upload").click()
        page.locator(".clip audio").wait_for()
        assert page.locator(".clip h3").inner_text().startswith("beat.wav")
        assert page.evaluate("document.querySelector('canvas.waveform').dataset.peaks.length") > 100

        page.get_by_role("link", name="Make a music video").click()
        page.get_by_label("First prompt").fill("a red fox")
        page.get_by_role("button", name="Create project").click()
        page.wait_for_url(f"{app_url}/videos/projects/*")
        for field, value in (("Width", "64"), ("Height", "64"), ("Steps", "2"), ("Frames per second", "4")):
            page.get_by_label(field, exact=True).fill(value)
        page.get_by_role("button", name="Add prompt").click()
        page.locator(".p-at").nth(1).fill("2")
        page.locator(".p-prompt").nth(1).fill("a blue sea")
        page.get_by_role("button", name="Save").click()
        page.wait_for_function("document.getElementById('schedule-curve').dataset.points === '8'")
        assert page.locator("#edit-error").inner_text() == ""

        start_worker()
        page.get_by_role("button", name="Render", exact=True).click()
        page.wait_for_function("document.getElementById('project').dataset.status === 'rendering' || "
                               "document.getElementById('project').dataset.status === 'ready'")
        page.locator("#watch-video").wait_for(timeout=120_000)
        assert page.evaluate("document.getElementById('render-progress').value") == 8
        assert "8 / 8 frames" in page.locator("#render-text").inner_text()
        page.wait_for_function("document.getElementById('watch-video').readyState >= 1", timeout=20_000)
        assert page.evaluate("document.getElementById('watch-video').duration") == pytest.approx(2.0, abs=0.1)
        with page.expect_download() as download:
            page.get_by_role("link", name="Download MP4").click()
        assert download.value.suggested_filename.endswith(".mp4")
        page.get_by_role("button", name="Share").click()
        wait_for(lambda: "/s/" in page.locator("#video-share-url").inner_text(), timeout=10, message="link")

        page.goto(f"{app_url}/videos")
        assert page.locator("#videos video").count() == 1
        assert page.locator("nav").get_by_role("link", name="Videos").count() == 1
    finally:
        context.close()
    assert errors == []
    with app.app_context():
        assert ledger.balance(user_id)["balance"] == 40 - 8
