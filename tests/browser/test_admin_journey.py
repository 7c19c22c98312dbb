"""Admin journey in a real browser: log in, search a user, verify them, grant credits, see the new balance."""
from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import JOURNEY_PASSWORD, _free_port

pytestmark = pytest.mark.browser

# For the failure message: elements that reach past the right edge of the viewport.
WIDEST_ELEMENTS = """[...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
  .slice(0, 8).map(e => `${e.tagName}.${e.className}#${e.id} right=${Math.round(e.getBoundingClientRect().right)}`)"""
ADMIN_PAGES = ["/admin", "/admin/users", "/admin/hosts", "/admin/models", "/admin/jobs"]


@pytest.fixture
def accounts(runner):
    """An admin and an unverified member, made with `flask users create` on the live server's database."""
    suffix = uuid.uuid4().hex[:8]
    admin, member = f"chief-{suffix}@example.com", f"Member-{suffix}@Studio.example"
    for email, flags in ((admin, ["--admin", "--verified"]), (member, [])):
        result = runner.invoke(args=["users", "create", email, "--password", JOURNEY_PASSWORD, *flags])
        assert result.exit_code == 0, result.output
    return admin, member.lower()


@pytest.fixture
def activity(app, accounts):
    """Three weeks of images and spends by the admin, so the overview's charts have bars to draw; a GPU host that
    refuses connections and a model, so those pages have rows."""
    from datetime import timedelta

    from sqlalchemy import select

    from app.extensions import db
    from app.models import ApiHost, Image, ModelEntry, User, utcnow
    from app.services import credits

    now = utcnow()
    with app.app_context():
        owner = db.session.scalar(select(User).where(User.email == accounts[0]))
        credits.grant(owner.id, 5000, expires_in_days=90, now=now - timedelta(days=25))
        for days_ago in range(0, 22, 3):
            for _ in range(1 + days_ago % 4):
                db.session.add(Image(user_id=owner.id, kind="txt2img", width=64, height=64,
                                     created_at=now - timedelta(days=days_ago)))
            credits.spend(owner.id, 8 * (1 + days_ago % 5), now=now - timedelta(days=days_ago))
        db.session.add(ApiHost(url=f"http://127.0.0.1:{_free_port()}", name="spare", enabled=True))
        db.session.add(ModelEntry(model_id="tiny", display_name="Tiny test model", kind="image"))
        db.session.commit()
        db.session.remove()


def log_in(page, live_server, email: str) -> None:
    page.goto(live_server.url("/login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(JOURNEY_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(live_server.url("/account"))


def test_admin_searches_a_user_verifies_and_grants_credits(live_server, page, check, screenshot, accounts):
    admin, member = accounts
    watch = check(page)
    log_in(page, live_server, admin)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    expect(page.get_by_role("heading", name="Admin overview")).to_be_visible()
    expect(page.locator("#count-users")).to_have_text("2")
    expect(page.locator("#generations-chart svg")).to_be_visible()

    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Users").click()
    page.get_by_label("Search by email").fill(member.split("@")[0].upper())
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#user-count")).to_contain_text("1 user matching")
    row = page.locator(f'tr[data-email="{member}"]')
    expect(row).to_contain_text("not verified")
    row.get_by_role("button", name=f"Verify {member}").click()
    expect(page.get_by_role("status").filter(has_text=f"{member} is verified.")).to_be_visible()
    expect(page.get_by_label("Search by email")).to_have_value(member.split("@")[0].upper())  # back to the search
    screenshot(page, "1-search-verified")

    page.locator(f'tr[data-email="{member}"]').get_by_role("link", name=f"Grant credits to {member}").click()
    expect(page.locator("#user-balance")).to_have_text("0")
    page.get_by_label("Amount").fill("0")
    page.get_by_role("button", name="Grant credits").click()
    expect(page.locator("#amount-error")).to_have_text("Amount must be a positive whole number.")
    expect(page.get_by_label("Amount")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#user-balance")).to_have_text("0")

    page.get_by_label("Amount").fill("150")
    page.get_by_label("Expires in (days)").fill("14")
    page.get_by_label("Memo").fill("Welcome gift")
    page.get_by_role("button", name="Grant credits").click()
    expect(page.get_by_role("status").filter(has_text="Granted 150 credits")).to_be_visible()
    expect(page.locator("#user-balance")).to_have_text("150")
    screenshot(page, "2-granted")

    page.get_by_role("link", name="← All users").click()
    expect(page.locator(f'tr[data-email="{member}"] [data-balance]')).to_have_text("150")
    screenshot(page, "3-list-with-balance")
    watch.assert_clean()

    # The member sees the grant in their own ledger.
    member_page = page.context.browser.new_context().new_page()
    try:
        log_in(member_page, live_server, member)
        member_page.goto(live_server.url("/credits"))
        expect(member_page.locator("#credit-balance")).to_have_text("150")
        expect(member_page.locator("#ledger")).to_contain_text("Welcome gift")
    finally:
        member_page.context.close()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_every_admin_page_is_clean_at_desktop_and_phone_width(live_server, request, check, screenshot, accounts,
                                                              activity, size):
    admin, _ = accounts
    tab = request.getfixturevalue("page" if size == "desktop" else "mobile_page")
    watch = check(tab)
    log_in(tab, live_server, admin)
    for path in ADMIN_PAGES:
        tab.goto(live_server.url(path))
        expect(tab.locator("h1")).to_be_visible()
        if path == "/admin/hosts":
            expect(tab.locator("tr[data-url] [data-health]")).to_contain_text("down")
        overflow = tab.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        wide = tab.evaluate(WIDEST_ELEMENTS)
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at {size} width: {wide}"
        screenshot(tab, f"{size}-{path.strip('/').replace('/', '-')}")
    watch.assert_clean()


def test_members_get_a_403_page_on_admin_pages(live_server, page, check, accounts):
    _, member = accounts
    watch = check(page)
    log_in(page, live_server, member)
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin")).to_have_count(0)
    response = page.goto(live_server.url("/admin/users"))
    assert response.status == 403
    expect(page.get_by_role("heading")).to_contain_text(re.compile("403"))
    assert all(line.startswith("403") for line in watch.client_errors)
