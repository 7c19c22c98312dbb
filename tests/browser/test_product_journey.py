"""The whole product in a real browser: sign up through a referral link, verify, generate (price, then the result),
inpaint with a mask painted with the mouse, publish, open the share link logged out, then the library's bulk
actions and its keyboard lightbox. The tiny model runs on a real GPU host behind the proxy (as in
test_generate_journey, whose module-scoped stack this module starts for itself)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from app.extensions import db
from app.models import Image, Referral, User
from app.services import accounts, credits
from tests.browser.conftest import JOURNEY_PASSWORD
from tests.browser.test_generate_journey import browser_gpu_stack  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser

PAINTED_JS = """() => { const c = document.getElementById('mask-canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""


def _quoted(page, images: int, size: int, steps: int) -> int:
    """Set images, size and steps; the price shown once the quote for exactly that has come back."""

    def for_this(response) -> bool:
        sent = response.request.post_data_json if "/api/v1/credits/quote" in response.url else None
        return bool(sent) and (sent["images"], sent["width"], sent["steps"]) == (images, size, steps)

    with page.expect_response(for_this) as answer:
        page.get_by_label("Size").select_option(str(size))
        page.get_by_label("Steps").fill(str(steps))
        page.get_by_label("Images", exact=True).fill(str(images))
    cost = answer.value.json()["cost"]
    expect(page.locator("#price-value")).to_have_text(str(cost))
    return cost


def _generate(page, live_server, prompt: str) -> str:
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Size").select_option("64")
    page.get_by_label("Steps").fill("2")
    page.get_by_role("button", name="Generate").click()
    card = page.locator("#results .image-card").first
    expect(card).to_be_visible(timeout=60_000)
    return card.get_attribute("data-image-id")


def test_referral_sign_up_generate_inpaint_publish_share_and_library(
        app, live_server, browser_gpu_stack, browser, page, check, screenshot):  # noqa: F811
    watch = check(page)
    with app.app_context():
        referrer = accounts.register("referrer-product@example.com", JOURNEY_PASSWORD)
        code = referrer.referral_code

    # A friend follows the referral link, signs up and confirms the email.
    page.goto(live_server.url(f"/r/{code}"))
    expect(page.get_by_label("Referral code (optional)")).to_have_value(code)
    email = "friend-product@example.com"
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(JOURNEY_PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(live_server.url("/account"))
    page.goto(live_server.last_link(email, "/verify?token="))
    page.get_by_role("button", name="Confirm my email address").click()
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        assert user.is_verified
        assert db.session.scalar(select(Referral.referrer_id).where(Referral.referred_id == user.id)) == referrer.id
        credits.grant(user, 60, memo="welcome credits")
        user_id = user.id

    # Logged in, the start page is the generate page; the price shows before anything is spent.
    page.goto(live_server.url("/"))
    expect(page).to_have_url(live_server.url("/generate"))
    one = _quoted(page, 1, 512, 20)
    four = _quoted(page, 4, 512, 20)
    assert four > one >= 1  # the price follows the form before anything is submitted
    price = _quoted(page, 1, 64, 2)
    expect(page.locator("#price-balance")).to_contain_text("you have 60")
    screenshot(page, "1-price")
    original = _generate(page, live_server, "a red boat on a calm lake")
    expect(page.locator("#price-balance")).to_contain_text(f"you have {60 - price}")
    screenshot(page, "2-result")

    # Inpaint: paint a stroke over the image with the mouse, erase part of it, repaint.
    page.locator(f'#results .image-card[data-image-id="{original}"] a').click()
    page.get_by_label("Mode").select_option("inpaint")
    canvas = page.locator("#mask-canvas")
    expect(canvas).to_be_visible()
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.5, steps=8)
    page.mouse.up()
    painted = page.evaluate(PAINTED_JS)
    assert painted > 0
    page.get_by_label("Erase").check()
    page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.85, box["y"] + box["height"] * 0.5, steps=3)
    page.mouse.up()
    assert 0 < page.evaluate(PAINTED_JS) < painted
    page.get_by_label("Erase").uncheck()
    page.get_by_label("Prompt or instruction").fill("a yellow boat")
    page.get_by_role("button", name="Edit", exact=True).click()
    expect(page.locator("#results .image-card")).to_have_count(1, timeout=60_000)
    inpainted = page.locator("#results .image-card").first.get_attribute("data-image-id")
    expect(page.locator("#lineage-strip .lineage-self")).to_be_visible()
    screenshot(page, "3-inpainted")
    with app.app_context():
        row = db.session.scalar(select(Image).where(Image.public_id == inpainted))
        assert row.kind == "inpaint" and str(row.parent.public_id) == original

    # The inpainted image shows its parent in the lineage strip; publish it and share it.
    page.goto(live_server.url(f"/images/{inpainted}"))
    expect(page.locator(f'#lineage-strip .lineage-parent a[href="/images/{original}"]')).to_be_visible()
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_role("button", name="Unpublish")).to_be_visible()
    page.get_by_role("button", name="Share").click()
    expect(page.locator("#share-url")).to_contain_text("/s/")
    share_url = page.locator("#share-url").inner_text().strip()
    page.get_by_role("button", name="Copy link").click()
    expect(page.locator("#copy-status")).to_have_text(re.compile("Copied|Selected"))

    # A stranger (fresh context, no cookies) opens the link and sees the image; chats get its thumbnail.
    stranger = browser.new_context(viewport={"width": 375, "height": 740})
    try:
        other = stranger.new_page()
        stranger_watch = check(other)
        other.goto(share_url)
        shared = other.locator("article.shared-item img")
        expect(shared).to_be_visible()
        other.wait_for_function("document.querySelector('article.shared-item img').naturalWidth > 0")
        og_image = other.locator('meta[property="og:image"]').get_attribute("content")
        preview = other.request.get(og_image)
        assert preview.status == 200 and preview.headers["content-type"].startswith("image/")
        screenshot(other, "4-shared-logged-out")
        other.goto(live_server.url("/"))
        expect(other.locator(f'#landing-gallery .image-card[data-image-id="{inpainted}"] img')).to_have_attribute(
            "loading", "lazy")
        stranger_watch.assert_clean()
    finally:
        stranger.close()

    # Library: a keyboard lightbox (arrows, Escape, focus kept inside and given back), then bulk actions.
    page.goto(live_server.url("/generate"))
    third = _generate(page, live_server, "a green boat")
    page.goto(live_server.url("/library"))
    cards = page.locator("#library .image-card")
    expect(cards).to_have_count(3)
    ids = [cards.nth(i).get_attribute("data-image-id") for i in range(3)]
    assert ids[0] == third
    page.locator("#library .image-card a").first.focus()
    page.keyboard.press("Enter")
    dialog = page.locator("#lightbox")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("data-image-id", ids[0])
    expect(page.locator("#lightbox-caption")).to_contain_text("1 of 3")
    page.keyboard.press("ArrowRight")
    expect(dialog).to_have_attribute("data-image-id", ids[1])
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    expect(dialog).to_have_attribute("data-image-id", ids[0])  # wraps around
    page.keyboard.press("ArrowLeft")
    expect(dialog).to_have_attribute("data-image-id", ids[2])
    page.wait_for_function("document.getElementById('lightbox-image').complete "
                           "&& document.getElementById('lightbox-image').naturalWidth > 0")
    for _ in range(6):
        page.keyboard.press("Tab")
        assert page.evaluate("document.getElementById('lightbox').contains(document.activeElement)")
    screenshot(page, "5-lightbox")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert page.evaluate("document.activeElement === document.querySelector('#library .image-card a')")

    page.get_by_role("button", name="Select all").click()
    expect(page.locator("#selected-count")).to_have_text("3 selected")
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.locator('#library .image-card[data-public="true"]')).to_have_count(3)
    expect(page.locator("#selected-count")).to_have_text("0 selected")
    page.get_by_label(re.compile("Select a green boat")).check()
    page.get_by_label(re.compile("Select a red boat")).check()
    page.once("dialog", lambda prompt: prompt.accept())
    page.get_by_role("button", name="Delete", exact=True).click()
    expect(cards).to_have_count(1)
    screenshot(page, "6-library-after-bulk")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Image).where(Image.user_id == user_id)) == 1
        left = db.session.scalar(select(Image).where(Image.user_id == user_id))
        assert str(left.public_id) == inpainted and left.is_public
    page.goto(live_server.url("/library?public=true"))
    expect(cards).to_have_count(1)
    watch.assert_clean()


def test_generate_without_credits_says_so_next_to_the_button(live_server, browser_gpu_stack, page,  # noqa: F811
                                                            new_account):
    email, _ = new_account(page)
    page.goto(live_server.last_link(email, "/verify?token="))
    page.get_by_role("button", name="Confirm my email address").click()
    page.goto(live_server.url("/generate"))
    expect(page.locator("#price-balance")).to_contain_text("not enough")
    page.get_by_label("Prompt", exact=True).fill("a boat")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#error-form")).to_contain_text(re.compile("credit", re.I))
    expect(page.locator("#progress")).to_be_hidden()
    expect(page.locator("#results .image-card")).to_have_count(0)
    expect(page.get_by_role("button", name="Generate")).to_be_enabled()
