"""Throttles shared by the JSON API and the pages: failed log-ins per account and per IP, and mail-sending forms."""
from __future__ import annotations

import math
import time

from flask import current_app, g, request
from flask_limiter.util import get_remote_address
from limits import parse

from app.errors import ApiError
from app.extensions import limiter


def _deployment() -> str:
    # Flask-Limiter keeps the key prefix of the first app it was bound to, so name the deployment in the key itself
    # (several apps in one process, as in tests, or several deployments on one Redis stay apart).
    return current_app.config["ATELIER"].redis_key_prefix


def _account_key() -> str:
    data = request.get_json(silent=True) if request.is_json else request.form
    email = data.get("email") if hasattr(data, "get") else None
    normalized = email.strip().lower() if isinstance(email, str) else ""
    return f"{_deployment()}:account:{normalized}"


def _ip_key() -> str:
    return f"{_deployment()}:ip:{get_remote_address()}"


def _failed(response) -> bool:
    # Only failed attempts count, so people who log in often are never locked out by their own successes.
    # The log-in page re-renders its form with 200 and sets g.login_failed instead.
    return response.status_code == 401 or bool(g.get("login_failed"))


per_account = limiter.shared_limit(
    lambda: current_app.config["ATELIER"].login_rate_limit_per_account, scope="login-account",
    key_func=_account_key, deduct_when=_failed, methods=["POST"],
    error_message="too many failed log-ins for this account",
)
per_ip = limiter.shared_limit(
    lambda: current_app.config["ATELIER"].login_rate_limit_per_ip, scope="login-ip",
    key_func=_ip_key, deduct_when=_failed, methods=["POST"],
    error_message="too many failed log-ins from this address",
)


def throttled(view):
    """Apply both login limits to a view."""
    return per_ip(per_account(view))


# Each of these sends an email; without a cap anyone could flood an inbox through us.
MAIL_LIMIT = "5 per hour"


def _mail_key() -> str:
    from flask_login import current_user

    if current_user.is_authenticated:
        return f"{_deployment()}:mail:user:{current_user.id}"
    return f"{_deployment()}:mail:{_account_key()}"


mail_limit = limiter.shared_limit(MAIL_LIMIT, scope="account-mail", key_func=_mail_key, methods=["POST"],
                                  error_message="too many emails asked for; wait before asking again")


# Sign-ups per client IP: accounts created, and attempts answered "email taken" (which probe who has an account).
def _registration():
    return parse(current_app.config["ATELIER"].register_rate_limit_per_ip), "register-ip", _ip_key()


def check_registration_allowed() -> None:
    """429 with Retry-After once this client IP has used up register_rate_limit_per_ip."""
    item, *key = _registration()
    if limiter.limiter.test(item, *key):
        return
    wait = max(1, math.ceil(limiter.limiter.get_window_stats(item, *key).reset_time - time.time()))
    raise ApiError(429, f"Too many sign-ups from this address; try again in {math.ceil(wait / 60)} minutes.",
                   headers={"Retry-After": str(wait)})


def count_registration(error: ApiError | None = None) -> None:
    """Count a sign-up from this client IP: a created account, or an attempt on an address already taken."""
    if error is None or error.code == "email_taken":
        item, *key = _registration()
        limiter.limiter.hit(item, *key)
