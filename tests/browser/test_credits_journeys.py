"""Credits and referrals pages in a real browser against the live server: the referral link round trip."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.models import User
from app.services import credits
from tests.browser.conftest import JOURNEY_PASSWORD

pytestmark = pytest.mark.browser


def test_referral_link_copy_sign_up_and_credits_page(app, live_server, page, check, screenshot, new_account):
    watch = check(page)
    email, _ = new_account(page)
    page.goto(live_server.last_link(email, "/verify?token="))
    page.get_by_role("button", name="Confirm my email address").click()

    page.goto(live_server.url("/referrals"))
    link = page.locator("#referral-link").inner_text().strip()
    assert re.fullmatch(re.escape(live_server.url("/r/")) + r"[A-Za-z0-9_-]{12}", link)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.base_url)
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#copy-status")).to_have_text(re.compile("Copied|Selected"))
    if page.locator("#copy-status").inner_text() == "Copied.":
        assert page.evaluate("navigator.clipboard.readText()") == link
    expect(page.locator("#referred-empty")).to_be_visible()
    screenshot(page, "1-referrals")

    page.get_by_role("button", name="Log out").click()
    page.goto(link)  # a friend opens the shared link
    expect(page).to_have_url(re.compile(r"/signup\?ref="))
    expect(page.get_by_label("Referral code (optional)")).to_have_value(link.rsplit("/", 1)[1])
    page.get_by_label("Email").fill("friend-of-journey@example.com")
    page.get_by_label("Password", exact=True).fill(JOURNEY_PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    page.wait_for_url(live_server.url("/account"))
    page.get_by_role("button", name="Log out").click()

    with app.app_context():
        referrer = db.session.scalar(select(User).where(User.email == email))
        credits.grant(referrer, 25, memo="welcome credits")
        credits.spend(referrer, 4, memo="first image")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(JOURNEY_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(live_server.url("/referrals"))
    expect(page.locator("#referred tbody tr")).to_have_count(1)
    expect(page.locator("#referred")).to_contain_text("Not verified yet")
    page.goto(live_server.url("/credits"))
    expect(page.locator("#credit-balance")).to_have_text("21")
    expect(page.locator("#ledger tbody tr")).to_have_count(2)
    expect(page.locator("#ledger tbody tr").first).to_contain_text("first image")
    expect(page.locator("#ledger tbody tr").first).to_contain_text("-4")
    expect(page.locator("#next-expiry")).to_contain_text("21 credits expire on")
    screenshot(page, "2-credits")
    watch.assert_clean()
