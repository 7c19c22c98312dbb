"""Server-rendered account pages: landing, sign up, log in/out, verify, forgot/reset password, account."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user

from app.errors import ApiError
from app.routes.login_limits import check_registration_allowed, count_registration, mail_limit, throttled
from app.services import accounts, api_tokens

bp = Blueprint("pages", __name__)

# Sections other areas add; the nav shows one only when a page is registered at its path.
NAV_SECTIONS = (
    ("/generate", "Generate", False),
    ("/library", "Library", False),
    ("/audio", "Audio", False),
    ("/videos", "Videos", False),
    ("/gallery", "Gallery", True),
    ("/credits", "Credits", False),
    ("/referrals", "Referrals", False),
)
ADMIN_PATH = "/admin"


def _registered_paths() -> set[str]:
    paths = current_app.extensions.get("page_paths")
    if paths is None:
        paths = {rule.rule.rstrip("/") or "/" for rule in current_app.url_map.iter_rules() if "GET" in rule.methods}
        current_app.extensions["page_paths"] = paths
    return paths


@bp.app_context_processor
def navigation():
    """Template helpers base.html uses for its nav."""

    def nav_items(public_only: bool = False) -> list[tuple[str, str]]:
        paths = _registered_paths()
        return [(path, label) for path, label, public in NAV_SECTIONS if path in paths and (public or not public_only)]

    def admin_path() -> str | None:
        return ADMIN_PATH if ADMIN_PATH in _registered_paths() else None

    return {"nav_items": nav_items, "admin_path": admin_path}


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths, so ?next= cannot send people to another site."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
            return target
    return url_for("pages.account")


def _field_errors(error: ApiError) -> dict[str, str]:
    return {error.field or "form": error.message}


LANDING_GALLERY_SIZE = 12


@bp.get("/")
def landing():
    """Visitors see what Atelier is and the public gallery; logged-in people go straight to generating."""
    if current_user.is_authenticated and "/generate" in _registered_paths():
        return redirect("/generate")
    from app.routes.media_api import image_json
    from app.services import media

    rows, next_cursor = media.list_gallery(LANDING_GALLERY_SIZE, None)
    return render_template("pages/landing.html", images=[image_json(row) for row in rows],
                           more=next_cursor is not None)


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    """Sign-up form; ?ref= pre-fills a referral code."""
    if current_user.is_authenticated and request.method == "GET":
        return redirect(url_for("pages.account"))
    form = {"email": request.form.get("email", ""), "referral_code": request.form.get("referral_code",
                                                                                      request.args.get("ref", ""))}
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            check_registration_allowed()
        except ApiError as error:  # the form says so, with the status and Retry-After a client can act on
            return render_template("pages/signup.html", form=form, errors=_field_errors(error)), 429, error.headers
        try:
            user = accounts.register(form["email"], request.form.get("password", ""),
                                     form["referral_code"].strip() or None)
        except ApiError as error:
            count_registration(error)
            errors = _field_errors(error)
        else:
            count_registration()
            login_user(user)
            flash(f"Welcome! We have sent a link to {user.email}; open it to verify your address.", "success")
            return redirect(url_for("pages.account"))
    return render_template("pages/signup.html", form=form, errors=errors)


@bp.route("/login", methods=["GET", "POST"])
@throttled
def login():
    """Log-in form."""
    next_url = request.values.get("next")
    if current_user.is_authenticated and request.method == "GET":
        return redirect(_safe_next(next_url))
    form = {"email": request.form.get("email", "")}
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            user = accounts.authenticate(form["email"], request.form.get("password", ""))
        except ApiError as error:
            g.login_failed = True
            errors = _field_errors(error)
        else:
            login_user(user, remember=bool(request.form.get("remember")))
            return redirect(_safe_next(next_url))
    return render_template("pages/login.html", form=form, errors=errors, next_url=next_url)


@bp.post("/logout")
def logout():
    """End the session."""
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("pages.login"))


@bp.route("/verify", methods=["GET", "POST"])
def verify():
    """The emailed link lands here; confirming is a button (POST) so mail scanners that prefetch links spend nothing."""
    token = request.values.get("token", "")
    if request.method == "POST":
        try:
            user = accounts.verify_email(token)
        except ApiError as error:
            return render_template("pages/verify.html", token=token, error=error.message)
        flash(f"Thank you: {user.email} is verified.", "success")
        return redirect(url_for("pages.account") if current_user.is_authenticated else url_for("pages.login"))
    return render_template("pages/verify.html", token=token, error=None if token else "This link has no token.")


@bp.route("/forgot-password", methods=["GET", "POST"])
@mail_limit
def forgot_password():
    """Ask for a reset link; the answer never says whether the account exists."""
    errors: dict[str, str] = {}
    email = request.form.get("email", "")
    if request.method == "POST":
        try:
            accounts.request_password_reset(accounts.normalize_email(email))
        except ApiError as error:
            errors = _field_errors(error)
        else:
            flash(accounts.RESET_REQUESTED_MESSAGE, "info")
            return redirect(url_for("pages.login"))
    return render_template("pages/forgot_password.html", email=email, errors=errors)


@bp.route("/reset-password", methods=["GET", "POST"])
def reset_password():
    """Choose a new password with the emailed token."""
    token = request.values.get("token", "")
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            accounts.reset_password(token, request.form.get("password", ""))
        except ApiError as error:
            errors = _field_errors(error)
        else:
            logout_user()
            flash("Your password has been changed. Log in with the new one.", "success")
            return redirect(url_for("pages.login"))
    return render_template("pages/reset_password.html", token=token, errors=errors)


def _account_page(status: int = 200, **context):
    tokens = api_tokens.list_tokens(current_user)
    context.setdefault("errors", {})
    return render_template("pages/account.html", tokens=tokens, **context), status


@bp.get("/account")
@login_required
def account():
    """The account page: address, password, email, API tokens, deletion."""
    return _account_page()


@bp.post("/account/password")
@login_required
def change_password():
    """Change the password from the account page; this session stays, others end."""
    try:
        user = accounts.change_password(current_user._get_current_object(), request.form.get("current_password", ""),
                                        request.form.get("new_password", ""))
    except ApiError as error:
        return _account_page(errors=_field_errors(error), section="password")
    login_user(user)
    flash("Your password has been changed. Other sessions have been logged out.", "success")
    return redirect(url_for("pages.account"))


@bp.post("/account/email")
@login_required
@mail_limit
def change_email():
    """Ask to change the email address; it changes when the link sent there is opened."""
    try:
        email = accounts.request_email_change(current_user._get_current_object(), request.form.get("password", ""),
                                              request.form.get("new_email", ""))
    except ApiError as error:
        return _account_page(errors=_field_errors(error), section="email", new_email=request.form.get("new_email"))
    flash(f"We have sent a confirmation link to {email}. Your address changes when you open it.", "info")
    return redirect(url_for("pages.account"))


@bp.post("/account/resend-verification")
@login_required
@mail_limit
def resend_verification():
    """Send a fresh verification link."""
    try:
        accounts.resend_verification(current_user)
    except ApiError as error:
        flash(error.message, "info")
    else:
        flash(f"We have sent a new link to {current_user.email}.", "success")
    return redirect(url_for("pages.account"))


@bp.post("/account/tokens")
@login_required
def create_token():
    """Create an API token and show its secret this once."""
    try:
        token, secret = api_tokens.create_token(current_user, request.form.get("name", ""))
    except ApiError as error:
        return _account_page(errors=_field_errors(error), section="tokens")
    return _account_page(new_token=secret, new_token_name=token.name)


@bp.post("/account/tokens/<public_id>/revoke")
@login_required
def revoke_token(public_id: str):
    """Revoke an API token."""
    try:
        api_tokens.revoke_token(current_user, public_id)
    except ApiError as error:
        flash(error.message, "error")
    else:
        flash("The token has been revoked.", "success")
    return redirect(url_for("pages.account"))


@bp.post("/account/delete")
@login_required
def delete_account():
    """Delete the account after checking the password."""
    try:
        accounts.delete_account(current_user._get_current_object(), request.form.get("password", ""))
    except ApiError as error:
        return _account_page(errors=_field_errors(error), section="delete")
    logout_user()
    flash("Your account has been deleted.", "info")
    return redirect(url_for("pages.landing"))
