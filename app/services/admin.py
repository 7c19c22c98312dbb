"""What the admin pages read and do: user search with balances, per-day stats, live GPU host health, running jobs."""
from __future__ import annotations

import math
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import func, or_, select

from app.errors import ApiError
from app.extensions import db
from app.models import Audio, GenerationJob, Image, Transaction, User, VideoProject, Video, utcnow
from app.models.credit import CREDIT_KINDS
from app.services import accounts, credits, gpu_pool

USERS_PER_PAGE = 25
STATS_DAYS = 30
MAX_GRANT = 10_000_000
MAX_EXPIRY_DAYS = 3650
# Ledger kinds that are credits actually used: direct spends and the final cost of settled holds.
SPENT_KINDS = ("spend", "capture")


# ----------------------------------------------------------------------------------------------- users

@dataclass
class UserRow:
    """One user as the admin list shows them."""

    user: User
    balance: int
    held: int


@dataclass
class UserPage:
    """A page of users matching a search."""

    rows: list[UserRow]
    query: str
    page: int
    pages: int
    total: int


def balances_for(user_ids: list[int], now: datetime | None = None) -> dict[int, tuple[int, int]]:
    """Spendable balance and active holds for many users in one grouped query: {user_id: (balance, held)}."""
    if not user_ids:
        return {}
    now = now or utcnow()
    T = Transaction
    live = (T.kind.in_(CREDIT_KINDS) & (T.remaining > 0) & or_(T.expires_at.is_(None), T.expires_at > now))
    active_hold = (T.kind == "hold") & (T.status == "active")
    rows = db.session.execute(
        select(T.user_id,
               func.coalesce(func.sum(T.remaining).filter(live), 0),
               func.coalesce(func.sum(T.amount).filter(active_hold), 0))
        .where(T.user_id.in_(user_ids), or_(live, active_hold))
        .group_by(T.user_id)
    ).all()
    found = {uid: (int(balance), int(held)) for uid, balance, held in rows}
    return {uid: found.get(uid, (0, 0)) for uid in user_ids}


def search_users(query: str = "", page: int = 1, per_page: int = USERS_PER_PAGE) -> UserPage:
    """Users whose email contains `query` (case-insensitive), newest first, one page with their balances."""
    query = (query or "").strip()
    condition = User.email.contains(query.lower(), autoescape=True) if query else None
    count = select(func.count(User.id))
    listing = select(User).order_by(User.created_at.desc(), User.id.desc())
    if condition is not None:
        count, listing = count.where(condition), listing.where(condition)
    total = db.session.scalar(count) or 0
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    users = list(db.session.scalars(listing.limit(per_page).offset((page - 1) * per_page)))
    balances = balances_for([u.id for u in users])
    rows = [UserRow(u, *balances[u.id]) for u in users]
    return UserPage(rows=rows, query=query, page=page, pages=pages, total=total)


def get_user(public_id: str) -> UserRow:
    """One user by public id with their balance; 404 when unknown."""
    try:
        parsed = uuid.UUID(str(public_id))
    except ValueError:
        parsed = None
    user = db.session.scalar(select(User).where(User.public_id == parsed)) if parsed else None
    if user is None:
        raise ApiError(404, "No such user.")
    return UserRow(user, *balances_for([user.id])[user.id])


def verify_user(public_id: str) -> User:
    """Mark a user's address verified (as `flask users verify` does)."""
    return accounts.verify_user(get_user(public_id).user.email)


def _whole_number(raw: object, name: str, label: str, maximum: int, required: bool = True) -> int | None:
    text = str(raw if raw is not None else "").strip()
    if not text:
        if required:
            raise ApiError(422, f"{label} is required.", field=name)
        return None
    if not text.isdigit() or int(text) < 1:
        raise ApiError(422, f"{label} must be a positive whole number.", field=name)
    if int(text) > maximum:
        raise ApiError(422, f"{label} must be at most {maximum:,}.", field=name)
    return int(text)


def grant_credits(public_id: str, amount: object, expires_in_days: object = None, memo: object = None) -> Transaction:
    """Grant credits to a user from form text; 422 naming the field when the amount or expiry is not valid."""
    row = get_user(public_id)
    whole_amount = _whole_number(amount, "amount", "Amount", MAX_GRANT)
    days = _whole_number(expires_in_days, "expires_in_days", "Expiry", MAX_EXPIRY_DAYS, required=False)
    note = str(memo or "").strip()[:500] or None
    return credits.grant(row.user.id, whole_amount, expires_in_days=days, memo=note)


# ----------------------------------------------------------------------------------------------- overview

@dataclass
class DayStats:
    """What happened on one UTC day."""

    day: date
    images: int = 0
    audio: int = 0
    videos: int = 0
    credits_spent: int = 0

    @property
    def generations(self) -> int:
        """Everything created that day."""
        return self.images + self.audio + self.videos


def _utc_day(column):
    if db.session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def _as_date(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def daily_stats(days: int = STATS_DAYS, now: datetime | None = None) -> list[DayStats]:
    """Images, audio and videos created and credits spent per UTC day, the last `days` days, oldest first."""
    now = now or utcnow()
    first = now.date() - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=now.tzinfo)
    stats = {first + timedelta(days=i): DayStats(first + timedelta(days=i)) for i in range(days)}

    def per_day(model, value, *conditions):
        day = _utc_day(model.created_at)
        rows = db.session.execute(select(day, value).where(model.created_at >= since, *conditions).group_by(day))
        return {_as_date(d): int(v or 0) for d, v in rows}

    # Generated images only: uploads, templates and video frames are not generations.
    generated = Image.kind.notin_(("upload", "template", "frame"))
    series = {
        "images": per_day(Image, func.count(Image.id), generated),
        "audio": per_day(Audio, func.count(Audio.id), Audio.kind != "upload"),
        "videos": per_day(Video, func.count(Video.id)),
        "credits_spent": per_day(Transaction, func.sum(Transaction.amount), Transaction.kind.in_(SPENT_KINDS)),
    }
    for name, values in series.items():
        for day, value in values.items():
            if day in stats:
                setattr(stats[day], name, value)
    return list(stats.values())


@dataclass
class Counts:
    """Totals shown above the charts."""

    users: int
    verified_users: int
    images: int
    active_holds: int
    held_credits: int


def counts() -> Counts:
    """Users, verified users, images and active holds right now."""
    users, verified = db.session.execute(
        select(func.count(User.id), func.count(User.id).filter(User.is_verified.is_(True)))).one()
    holds, held = db.session.execute(
        select(func.count(Transaction.id), func.coalesce(func.sum(Transaction.amount), 0))
        .where(Transaction.kind == "hold", Transaction.status == "active")).one()
    images = db.session.scalar(select(func.count(Image.id))) or 0
    return Counts(int(users), int(verified), int(images), int(holds), int(held))


# ----------------------------------------------------------------------------------------------- hosts

@dataclass
class HostStatus:
    """A GPU host, where it is listed, and what its health endpoint said just now."""

    url: str
    name: str | None
    source: str  # "database" or "config"
    enabled: bool
    up: bool = False
    error: str | None = None
    health: dict = field(default_factory=dict)

    @property
    def memory_mb(self) -> tuple[int, int]:
        """(used, budget) in MiB."""
        memory = self.health.get("memory") or {}
        return int(memory.get("used_bytes") or 0) // 2**20, int(memory.get("budget_bytes") or 0) // 2**20


def host_statuses() -> list[HostStatus]:
    """Hosts from the api_hosts table and config gpu_hosts, each with live health fetched in parallel."""
    settings = current_app.config["ATELIER"]
    statuses = [HostStatus(h.url, h.name, "database", h.enabled) for h in gpu_pool.list_hosts()]
    listed = {s.url for s in statuses}
    statuses += [HostStatus(url.rstrip("/"), None, "config", True) for url in settings.gpu_hosts
                 if url.rstrip("/") not in listed]
    if statuses:
        with ThreadPoolExecutor(max_workers=min(8, len(statuses))) as pool:
            results = list(pool.map(lambda s: gpu_pool.fetch_health(s.url, settings.gpu_shared_secret), statuses))
        for status, (report, error) in zip(statuses, results):
            status.up, status.error, status.health = report is not None, error, report or {}
    return statuses


# ----------------------------------------------------------------------------------------------- jobs

@dataclass
class RunningJobs:
    """Work in progress: video renders, audio generations and asynchronous image generations."""

    videos: list[tuple[VideoProject, str]]
    audio: list[tuple[Audio, str]]
    generations: list[tuple[GenerationJob, str]]


def running_jobs(limit: int = 200) -> RunningJobs:
    """Unfinished work with the owner's email, oldest first (one query per kind of work)."""

    def unfinished(model, state_column, states):
        rows = db.session.execute(
            select(model, User.email).join(User, User.id == model.user_id)
            .where(state_column.in_(states)).order_by(model.created_at, model.id).limit(limit))
        return [(item, email) for item, email in rows]

    return RunningJobs(
        videos=unfinished(VideoProject, VideoProject.status, ("queued", "rendering")),
        audio=unfinished(Audio, Audio.status, ("queued", "processing")),
        generations=unfinished(GenerationJob, GenerationJob.state, ("queued", "running")),
    )


# ----------------------------------------------------------------------------------------------- models

def add_model(model_id: object, display_name: object = None, kind: object = "image", preload: bool = False,
              price_multiplier: object = "1") -> object:
    """Register a model from form text (as `flask models add` does); 422 naming the field when a value is bad."""
    text = str(price_multiplier or "").strip() or "1"
    try:
        price = float(text)
    except ValueError:
        raise ApiError(422, "Price multiplier must be a number such as 1 or 1.5.", field="price_multiplier") from None
    if not math.isfinite(price) or price <= 0:
        raise ApiError(422, "Price multiplier must be a number above 0.", field="price_multiplier")
    name = str(display_name or "").strip()[:100] or None
    return gpu_pool.add_model(str(model_id or ""), name, str(kind or "image"), preload, price)
