"""Account journeys in a real browser against the live server."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_sign_up_verify_log_out_log_in(live_server, page, check, screenshot, new_account):
    watch = check(page)
    email, password = new_account(page)
    expect(page.locator("#verified-state")).to_have_text("Not verified")
    screenshot(page, "1-signed-up")

    page.goto(live_server.last_link(email, "/verify?token="))
    page.get_by_role("button", name="Confirm my email address").click()
    expect(page.get_by_role("status").filter(has_text="is verified")).to_be_visible()
    expect(page.locator("#verified-state")).to_have_text("Verified")
    screenshot(page, "2-verified")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(live_server.url("/account"))
    expect(page).to_have_url(re.compile(r"/login\?next="))  # the account page needs a login now

    page.get_by_label("Email").fill(email.upper())  # addresses compare case-insensitively
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(live_server.url("/account"))
    expect(page.locator("#account-email")).to_have_text(email)
    expect(page.locator("#verified-state")).to_have_text("Verified")
    screenshot(page, "3-logged-in-again")
    watch.assert_clean()


def test_sign_up_form_shows_errors_next_to_the_fields_and_prefills_the_referral(live_server, page, check,
                                                                                 new_account, browser):
    watch = check(page)
    taken, _ = new_account(page)
    page.get_by_role("button", name="Log out").click()
    page.goto(live_server.url("/signup?ref=FRIEND123"))
    expect(page.get_by_label("Referral code (optional)")).to_have_value("FRIEND123")
    page.get_by_label("Email").fill("someone@example.com")
    page.get_by_label("Password", exact=True).fill("password1")
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("#password-error")).to_contain_text("most common")
    expect(page.get_by_label("Password", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Email")).to_have_value("someone@example.com")  # what was typed stays

    page.get_by_label("Email").fill(taken)
    page.get_by_label("Password", exact=True).fill("a perfectly fine passphrase")
    page.get_by_label("Referral code (optional)").fill("")
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("#email-error")).to_contain_text("already exists")
    watch.assert_clean()


def test_forgot_and_reset_password_then_log_in_with_the_new_one(live_server, page, check, screenshot, new_account):
    watch = check(page)
    email, old_password = new_account(page)
    page.get_by_role("button", name="Log out").click()

    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Send reset link").click()
    expect(page.get_by_role("status").filter(has_text="If an account exists")).to_be_visible()

    reset_link = live_server.last_link(email, "/reset-password?token=")
    page.goto(reset_link)
    page.get_by_label("New password").fill("12345678")
    page.get_by_role("button", name="Set new password").click()
    expect(page.locator("#password-error")).to_be_visible()
    page.get_by_label("New password").fill("the new journey passphrase")
    page.get_by_role("button", name="Set new password").click()
    expect(page.get_by_role("status").filter(has_text="password has been changed")).to_be_visible()
    screenshot(page, "reset-done")

    page.goto(reset_link)  # single use
    page.get_by_label("New password").fill("yet another passphrase")
    page.get_by_role("button", name="Set new password").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid or has already been used")

    page.goto(live_server.url("/login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(old_password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#password-error, .flash-error").first).to_contain_text("not right")
    page.get_by_label("Password").fill("the new journey passphrase")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(live_server.url("/account"))
    watch.assert_clean()


def test_password_change_ends_a_session_in_another_browser(live_server, browser, page, new_account):
    email, password = new_account(page)
    other = browser.new_context()
    try:
        other.add_cookies(page.context.cookies())
        other_page = other.new_page()
        other_page.goto(live_server.url("/account"))
        expect(other_page.locator("#account-email")).to_have_text(email)

        page.get_by_label("Current password").fill(password)
        page.get_by_label("New password").fill("changed journey passphrase")
        page.get_by_role("button", name="Change password").click()
        expect(page.get_by_role("status").filter(has_text="password has been changed")).to_be_visible()
        expect(page.locator("#account-email")).to_have_text(email)  # this browser stays logged in

        other_page.goto(live_server.url("/account"))
        expect(other_page).to_have_url(re.compile(r"/login\?next="))
    finally:
        other.close()


def test_api_token_is_shown_once_with_a_copy_button_and_can_be_revoked(live_server, page, check, new_account):
    watch = check(page)
    new_account(page)
    page.get_by_label("Token name").fill("laptop script")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token").inner_text()
    assert secret.startswith("atl_")
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#copy-status")).not_to_be_empty()

    api = page.context.request
    me = api.get(live_server.url("/api/v1/me"), headers={"Authorization": f"Bearer {secret}"})
    assert me.status == 200

    page.goto(live_server.url("/account"))
    expect(page.locator("#new-token")).to_have_count(0)  # never shown again
    page.get_by_role("button", name="Revoke token laptop script").click()
    expect(page.get_by_text("You have no API tokens.")).to_be_visible()
    watch.assert_clean()


def test_delete_account_from_the_account_page(live_server, page, check, new_account):
    watch = check(page)
    email, password = new_account(page)
    page.locator("#delete-password").fill("wrong password")
    page.get_by_role("button", name="Delete my account").click()
    expect(page.locator("#delete-password-error")).to_contain_text("not right")
    page.locator("#delete-password").fill(password)
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_role("status").filter(has_text="account has been deleted")).to_be_visible()
    page.goto(live_server.url("/login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("not right")
    watch.assert_clean()


def test_pages_fit_a_375px_screen(live_server, mobile_page, check, screenshot):
    watch = check(mobile_page)
    for path in ("/", "/signup", "/login", "/forgot-password"):
        mobile_page.goto(live_server.url(path))
        width = mobile_page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"{path} scrolls sideways ({width}px)"
        screenshot(mobile_page, path.strip("/") or "landing")
    watch.assert_clean()
