"""Admin pages (admins only): overview with charts, users, GPU hosts, models and running jobs."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app.auth import admin_required
from app.errors import ApiError, error_response, wants_json
from app.models import utcnow
from app.services import admin, gpu_pool

bp = Blueprint("admin_pages", __name__, url_prefix="/admin")


@bp.before_request
@admin_required
def require_admin():
    """Every admin page: anonymous visitors go to log in, everyone else but admins gets 403."""


@bp.errorhandler(ApiError)
def admin_error(error: ApiError):
    """A refused or missing page is an HTML page here; JSON only for clients that ask for it."""
    if wants_json():
        return error_response(error.status, error.message, error.code, error.field, error.headers)
    title = {403: "Forbidden", 404: "Not found"}.get(error.status, "Error")
    return render_template("error.html", status=error.status, title=title, message=error.message), error.status


def _errors(error: ApiError) -> dict[str, str]:
    return {error.field or "form": error.message}


def _page_number() -> int:
    value = request.args.get("page", "1")
    return int(value) if value.isdigit() else 1


@bp.get("")
def overview():
    """Counts and charts of generations and credits spent per day over the last 30 days."""
    return render_template("admin/overview.html", counts=admin.counts(), days=admin.daily_stats())


@bp.get("/users")
def users():
    """Search users by email, a page at a time, with their balances."""
    result = admin.search_users(request.args.get("q", ""), _page_number())
    return render_template("admin/users.html", result=result)


def _user_page(public_id: str, errors: dict | None = None, form: dict | None = None):
    row = admin.get_user(public_id)
    return render_template("admin/user.html", row=row, errors=errors or {}, form=form or {},
                           back=request.values.get("back", ""))


@bp.get("/users/<public_id>")
def user_detail(public_id: str):
    """One user: flags, balance, and the verify and grant forms."""
    return _user_page(public_id)


@bp.post("/users/<public_id>/verify")
def verify_user(public_id: str):
    """Mark the user's address verified."""
    user = admin.verify_user(public_id)
    flash(f"{user.email} is verified.", "success")
    back = request.form.get("back", "")
    return redirect(back if back.startswith("/admin/") else url_for("admin_pages.user_detail", public_id=public_id))


@bp.post("/users/<public_id>/grant")
def grant_credits(public_id: str):
    """Grant credits; bad values are shown next to their field and nothing is written."""
    form = {name: request.form.get(name, "") for name in ("amount", "expires_in_days", "memo")}
    try:
        entry = admin.grant_credits(public_id, form["amount"], form["expires_in_days"], form["memo"])
    except ApiError as error:
        if error.status == 404:
            raise
        return _user_page(public_id, _errors(error), form)
    flash(f"Granted {entry.amount} credits, expiring {entry.expires_at:%Y-%m-%d}.", "success")
    return redirect(url_for("admin_pages.user_detail", public_id=public_id))


def _hosts_page(errors: dict | None = None, form: dict | None = None):
    return render_template("admin/hosts.html", hosts=admin.host_statuses(), errors=errors or {},
                           form=form or {})


@bp.get("/hosts")
def hosts():
    """GPU hosts with the live health each reports (loaded models, queue, in flight, memory)."""
    return _hosts_page()


@bp.post("/hosts")
def add_host():
    """List a new GPU host."""
    form = {"url": request.form.get("url", ""), "name": request.form.get("name", "")}
    try:
        host = gpu_pool.add_host(form["url"], form["name"].strip() or None)
    except ApiError as error:
        return _hosts_page({error.field or "url": error.message}, form)
    flash(f"Added {host.url}.", "success")
    return redirect(url_for("admin_pages.hosts"))


@bp.post("/hosts/<action>")
def change_host(action: str):
    """Enable, disable or remove a listed host (its URL is in the form)."""
    url = request.form.get("url", "")
    if action == "remove":
        gpu_pool.remove_host(url)
    elif action in ("enable", "disable"):
        gpu_pool.set_host_enabled(url, action == "enable")
    else:
        raise ApiError(404, f"No host action {action!r}.")
    flash(f"{action.capitalize()}d {url}." if action != "remove" else f"Removed {url}.", "success")
    return redirect(url_for("admin_pages.hosts"))


def _models_page(errors: dict | None = None, form: dict | None = None):
    return render_template("admin/models.html", models=gpu_pool.list_models(), errors=errors or {},
                           form=form or {})


@bp.get("/models")
def models():
    """Registered models."""
    return _models_page()


@bp.post("/models")
def add_model():
    """Register a model."""
    form = {name: request.form.get(name, "") for name in ("model_id", "display_name", "kind", "price_multiplier")}
    form["preload"] = bool(request.form.get("preload"))
    try:
        entry = admin.add_model(form["model_id"], form["display_name"], form["kind"], form["preload"],
                                form["price_multiplier"])
    except ApiError as error:
        return _models_page({error.field or "model_id": error.message}, form)
    flash(f"Added {entry.model_id}.", "success")
    return redirect(url_for("admin_pages.models"))


@bp.post("/models/<action>")
def change_model(action: str):
    """Offer a model again or stop offering it (its id is in the form)."""
    if action not in ("enable", "disable"):
        raise ApiError(404, f"No model action {action!r}.")
    entry = gpu_pool.set_model_enabled(request.form.get("model_id", ""), action == "enable")
    flash(f"{action.capitalize()}d {entry.model_id}.", "success")
    return redirect(url_for("admin_pages.models"))


@bp.get("/jobs")
def jobs():
    """Work in progress: video renders with frame progress, audio generations, queued image generations."""
    return render_template("admin/jobs.html", jobs=admin.running_jobs(), now=utcnow())
