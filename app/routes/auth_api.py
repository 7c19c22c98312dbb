"""JSON API for accounts under /api/v1: sign-up, verification, sessions, passwords, email, deletion, API tokens."""
from __future__ import annotations

from flask import Blueprint, jsonify
from flask_login import current_user, login_user, logout_user

from app.auth import api_login_required, authenticated_by_token
from app.errors import ApiError
from app.routes.api_common import json_body
from app.routes.login_limits import check_registration_allowed, count_registration, mail_limit, throttled
from app.services import accounts, api_tokens

bp = Blueprint("auth_api", __name__, url_prefix="/api/v1")


@bp.post("/auth/register")
def register():
    """Create an account and email a verification link; 201 with the account, 429 past the per-IP sign-up limit."""
    check_registration_allowed()
    data = json_body()
    referral = data.get("referral_code")
    try:
        user = accounts.register(data.get("email"), data.get("password"),
                                 referral.strip() if isinstance(referral, str) else None)
    except ApiError as error:
        count_registration(error)
        raise
    count_registration()
    return jsonify({"user": accounts.serialize_user(user)}), 201


@bp.post("/auth/verify")
def verify():
    """Confirm an email address with the emailed token."""
    user = accounts.verify_email(json_body().get("token"))
    return jsonify({"user": accounts.serialize_user(user)})


@bp.post("/auth/resend-verification")
@api_login_required
@mail_limit
def resend_verification():
    """Send a fresh verification link to the logged-in user."""
    accounts.resend_verification(current_user)
    return jsonify({"message": "We have sent a new verification link."}), 202


@bp.post("/auth/login")
@throttled
def login():
    """Check the credentials and start a session (cookie)."""
    data = json_body()
    user = accounts.authenticate(data.get("email"), data.get("password"))
    login_user(user, remember=bool(data.get("remember")))
    return jsonify({"user": accounts.serialize_user(user)})


@bp.post("/auth/logout")
def logout():
    """End the session; answers 204 whether or not one existed."""
    logout_user()
    return "", 204


@bp.get("/me")
@api_login_required
def me():
    """The account behind the session or API token."""
    return jsonify({"user": accounts.serialize_user(current_user)})


@bp.delete("/me")
@api_login_required
def delete_me():
    """Delete the account and its rows; needs the password."""
    accounts.delete_account(current_user._get_current_object(), json_body().get("password"))
    logout_user()
    return "", 204


@bp.post("/auth/password-reset")
@mail_limit
def password_reset():
    """Email a reset link if the account exists; the answer is the same either way."""
    accounts.request_password_reset(json_body().get("email"))
    return jsonify({"message": accounts.RESET_REQUESTED_MESSAGE}), 202


@bp.post("/auth/password-reset/confirm")
def password_reset_confirm():
    """Set a new password with a reset token; every session of the account ends."""
    data = json_body()
    accounts.reset_password(data.get("token"), data.get("password"))
    return jsonify({"message": "Your password has been changed. Log in with the new one."})


@bp.post("/auth/change-password")
@api_login_required
def change_password():
    """Change the password; other sessions end, this one is renewed."""
    data = json_body()
    user = accounts.change_password(current_user._get_current_object(), data.get("current_password"),
                                    data.get("new_password"))
    if not authenticated_by_token():
        login_user(user)  # the session id carries the new epoch; without this, this session would end too
    return jsonify({"message": "Your password has been changed."})


@bp.post("/auth/change-email")
@api_login_required
@mail_limit
def change_email():
    """Send a confirmation link to the new address; the email changes when it is opened."""
    data = json_body()
    email = accounts.request_email_change(current_user._get_current_object(), data.get("password"),
                                          data.get("new_email"))
    return jsonify({"message": f"We have sent a confirmation link to {email}.", "pending_email": email}), 202


@bp.get("/tokens")
@api_login_required
def list_tokens():
    """The user's API tokens, without their secrets."""
    return jsonify({"tokens": [api_tokens.serialize_token(t) for t in api_tokens.list_tokens(current_user)]})


@bp.post("/tokens")
@api_login_required
def create_token():
    """Create an API token; the secret is in this answer only."""
    token, secret = api_tokens.create_token(current_user, json_body().get("name"))
    return jsonify({"token": {**api_tokens.serialize_token(token), "secret": secret}}), 201


@bp.delete("/tokens/<public_id>")
@api_login_required
def revoke_token(public_id: str):
    """Revoke one of the user's tokens."""
    api_tokens.revoke_token(current_user, public_id)
    return "", 204
