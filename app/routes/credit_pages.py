"""Pages for credits (balance, expiry, ledger) and referrals (link with a copy button), and the /r/<code> link."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user, login_required

from app.routes.api_common import page_args
from app.services import credits, referrals

bp = Blueprint("credit_pages", __name__)


@bp.get("/credits")
@login_required
def credits_page():
    """Balance, what expires when, and the ledger, newest first."""
    limit, cursor = page_args(default_limit=50)
    entries, next_cursor = credits.ledger_page(current_user.id, limit, cursor)
    return render_template("credits/credits.html", summary=credits.balance(current_user.id), entries=entries,
                           next_cursor=next_cursor, signed=credits.signed_amount)


@bp.get("/referrals")
@login_required
def referrals_page():
    """The user's referral link with a copy button, the people referred, and rewards earned."""
    return render_template("credits/referrals.html", data=referrals.summary(current_user))


@bp.get("/r/<code>")
def referral_link(code: str):
    """A shared referral link: go to sign-up with the code filled in (nothing is stored until sign-up)."""
    return redirect(url_for("pages.signup", ref=code))
