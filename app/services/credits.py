"""The credit ledger: grants, spends, holds and their settlement, expiry, balances and the audit.

Every change to a user's credits runs under a lock on that user's row (SELECT ... FOR NO KEY UPDATE on
PostgreSQL; on SQLite a first write takes the database's single writer lock), re-reads what it needs after
taking the lock, and moves a credit entry's `remaining` only with a conditional UPDATE that the CHECK
constraints back up. Nothing is "read in Python, then written" without that lock.

Signs: credit entries (signup_bonus, grant, referral_reward, purchase) add their amount; spend, hold and
expire take theirs away; release gives a hold's unused part back; capture moves nothing (the credits left
the grants when the hold was taken) and records what the work finally cost. So for every user
sum(signed entries) == sum(remaining over credit entries), and the balance a user can spend is the remaining
amount of unexpired credit entries (active holds are already out of it; `held` reports them).

Public functions that change credits commit on success and roll back on failure, unless called with
commit=False from inside another unit of work (the sign-up and verification signal receivers do that).
`now` is injectable everywhere so tests and catch-up jobs can move time.

GPU work pays like this (ids, so a Celery task can settle a hold taken by the web process):

    entry = credits.hold(user_id, pricing.image_cost(...), idempotency_key=..., memo=...)  # 402/403 before work
    ...do the work...
    credits.capture(entry.id, delivered_cost)   # charge what was delivered (≤ held), give back the rest
    credits.release(entry.id)                   # or, when it failed, give everything back

or, in one process, `with credits.reserved(user_id, cost) as r: ...; r.charge(n)`. Every hold has a deadline
(its expires_at: hold_timeout_minutes after it was taken, or later if the caller asks); work that legitimately runs
or waits longer moves it forward with extend_hold(). `flask credits sweep-holds` releases only active holds whose
deadline has passed; capturing a released hold is a 409.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterator

from flask import current_app
from sqlalchemy import and_, func, or_, select, text, tuple_, update
from sqlalchemy.orm import make_transient_to_detached

from app.errors import ApiError
from app.extensions import db
from app.models import Transaction, User, utcnow
from app.models.credit import CREDIT_KINDS

T = Transaction
SIGN = {kind: 1 for kind in CREDIT_KINDS} | {"spend": -1, "hold": -1, "expire": -1, "release": 1, "capture": 0}
MAX_KEY_LENGTH = 200


# ----------------------------------------------------------------------------------------------- helpers

def _settings():
    return current_app.config["ATELIER"]


def _user_id(user: User | int) -> int:
    """The integer id of a user given as a row or an id."""
    return user if isinstance(user, int) else user.id


def _check_amount(amount, name: str = "amount", allow_zero: bool = False) -> int:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < (0 if allow_zero else 1):
        raise ApiError(422, f"'{name}' must be a whole number of credits{'' if allow_zero else ' above 0'}.",
                       field=name)
    return amount


def _check_key(key: str | None) -> str | None:
    if key is not None and (not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH):
        raise ApiError(422, f"'idempotency_key' must be 1 to {MAX_KEY_LENGTH} characters.", field="idempotency_key")
    return key


def _fingerprint(operation: str, **params) -> str:
    payload = json.dumps({"op": operation, **params}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@contextmanager
def _unit(commit: bool) -> Iterator[None]:
    """One ledger operation: commit (or just flush for an enclosing unit of work); roll back on failure."""
    try:
        yield
        if commit:
            db.session.commit()
        else:
            db.session.flush()
    except BaseException:
        if commit:
            db.session.rollback()
        raise


def lock_user(user_id: int) -> bool:
    """Lock the user's row until the transaction ends and return whether the user is verified."""
    session = db.session
    if session.get_bind().dialect.name == "sqlite":
        # Write first, so this transaction holds SQLite's writer lock before it reads anything.
        session.execute(update(User.__table__).where(User.__table__.c.id == user_id).values(id=user_id))
    # NO KEY UPDATE: still lets other transactions insert rows that reference the user.
    verified = session.execute(
        select(User.is_verified).where(User.id == user_id).with_for_update(key_share=True)
    ).scalar_one_or_none()
    if verified is None:
        raise ApiError(404, "No such user.")
    return bool(verified)


def _replay(user_id: int, key: str | None, fingerprint: str) -> Transaction | None:
    """The entry an earlier call with this idempotency key posted, or a 409 if its parameters differ."""
    if key is None:
        return None
    entry = db.session.execute(
        select(T).where(T.user_id == user_id, T.idempotency_key == key).execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if entry is not None and entry.request_fingerprint != fingerprint:
        raise ApiError(409, f"The idempotency key {key!r} was already used with different parameters.",
                       code="idempotency_conflict")
    return entry


def _post(user_id: int, kind: str, amount: int, now: datetime, **fields) -> Transaction:
    entry = T(user_id=user_id, kind=kind, amount=amount, created_at=now, **fields)
    db.session.add(entry)
    db.session.flush()
    return entry


def _live_credit_filter(user_id: int, now: datetime):
    return (T.user_id == user_id, T.kind.in_(CREDIT_KINDS), T.remaining > 0,
            or_(T.expires_at.is_(None), T.expires_at > now))


def _draw(user_id: int, amount: int, now: datetime) -> list[dict]:
    """Take `amount` from the user's unexpired credit entries, soonest expiry first; 402 if they fall short."""
    rows = db.session.execute(
        select(T.id, T.remaining).where(*_live_credit_filter(user_id, now))
        .order_by(T.expires_at.asc().nulls_last(), T.id)
    ).all()
    available = sum(row.remaining for row in rows)
    if available < amount:
        raise ApiError(402, f"This needs {amount} credits and {available} are available.",
                       code="insufficient_credits")
    allocations, left = [], amount
    for row in rows:
        take = min(left, row.remaining)
        _move(row.id, -take)
        allocations.append({"entry": row.id, "amount": take})
        left -= take
        if left == 0:
            break
    return allocations


def _move(entry_id: int, delta: int) -> None:
    """Change one credit entry's remaining by delta, only if it stays within 0..amount."""
    result = db.session.execute(
        update(T).where(T.id == entry_id, T.remaining + delta >= 0, T.remaining + delta <= T.amount)
        .values(remaining=T.remaining + delta).execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise RuntimeError(f"credit entry {entry_id} changed under a held lock")


def _resolve_expiry(now: datetime, expires_in_days: int | None, expires_at: datetime | None) -> datetime | None:
    if expires_at is not None:
        return expires_at
    days = _settings().default_credit_expiration if expires_in_days is None else expires_in_days
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ApiError(422, "'expires_in_days' must be a whole number of days above 0.", field="expires_in_days")
    return now + timedelta(days=days)


# ----------------------------------------------------------------------------------------------- credits

def credit(user: User | int, amount: int, *, kind: str = "grant", expires_in_days: int | None = None,
           expires_at: datetime | None = None, memo: str | None = None, idempotency_key: str | None = None,
           reward_id: int | None = None, referral_id: int | None = None, now: datetime | None = None,
           commit: bool = True) -> tuple[Transaction, bool]:
    """Add a credit entry; returns (entry, created) where created is False for an idempotent replay."""
    if kind not in CREDIT_KINDS:
        raise ValueError(f"not a credit kind: {kind!r}")
    uid, now = _user_id(user), now or utcnow()
    _check_amount(amount)
    _check_key(idempotency_key)
    with _unit(commit):
        lock_user(uid)
        fingerprint = _fingerprint("credit", kind=kind, amount=amount, expires_in_days=expires_in_days,
                                   expires_at=expires_at, memo=memo, reward=reward_id, referral=referral_id)
        previous = _replay(uid, idempotency_key, fingerprint)
        if previous is not None:
            return previous, False
        expiry = _resolve_expiry(now, expires_in_days, expires_at)
        entry = _post(uid, kind, amount, now, remaining=amount, expires_at=expiry, memo=memo,
                      idempotency_key=idempotency_key, request_fingerprint=fingerprint,
                      reward_id=reward_id, referral_id=referral_id)
    return entry, True


def grant(user: User | int, amount: int, *, expires_in_days: int | None = None, memo: str | None = None,
          idempotency_key: str | None = None, now: datetime | None = None, commit: bool = True) -> Transaction:
    """An admin grant that expires after `expires_in_days` (default_credit_expiration unless given)."""
    return credit(user, amount, kind="grant", expires_in_days=expires_in_days, memo=memo,
                  idempotency_key=idempotency_key, now=now, commit=commit)[0]


def purchase(user: User | int, amount: int, provider_reference: str, *, expires_in_days: int | None = None,
             memo: str | None = None, now: datetime | None = None) -> Transaction:
    """Credit a completed payment exactly once per provider reference; the seam a payment provider calls."""
    from app import signals

    if not isinstance(provider_reference, str) or not provider_reference.strip():
        raise ApiError(422, "'provider_reference' is required.", field="provider_reference")
    with _unit(True):
        entry, created = credit(user, amount, kind="purchase", expires_in_days=expires_in_days, memo=memo,
                                idempotency_key=f"purchase:{provider_reference.strip()}", now=now, commit=False)
        if created:
            buyer = user if isinstance(user, User) else db.session.get(User, user)
            signals.purchase_completed.send(buyer, transaction=entry)
    return entry


# ----------------------------------------------------------------------------------------------- debits

def spend(user: User | int, amount: int, *, idempotency_key: str | None = None, memo: str | None = None,
          now: datetime | None = None) -> Transaction:
    """Charge credits at once (403 unverified, 402 short); soonest-expiring credits go first."""
    return _debit("spend", user, amount, idempotency_key, memo, now)


def hold(user: User | int, amount: int, *, idempotency_key: str | None = None, memo: str | None = None,
         expires_at: datetime | None = None, now: datetime | None = None) -> Transaction:
    """Reserve credits before GPU work; settle the returned hold with capture() or release() by its id.

    The hold's deadline is now + hold_timeout_minutes, or `expires_at` when that is later.
    """
    return _debit("hold", user, amount, idempotency_key, memo, now, expires_at)


def _hold_deadline(now: datetime, requested: datetime | None) -> datetime:
    default = now + timedelta(minutes=_settings().hold_timeout_minutes)
    return default if requested is None or requested < default else requested


def _debit(kind: str, user: User | int, amount: int, key: str | None, memo: str | None,
           now: datetime | None, expires_at: datetime | None = None) -> Transaction:
    uid, now = _user_id(user), now or utcnow()
    _check_amount(amount)
    _check_key(key)
    # The deadline is not part of the fingerprint: a retried request computes a slightly different one.
    fingerprint = _fingerprint(kind, amount=amount, memo=memo)
    postgres = db.session.get_bind().dialect.name == "postgresql"
    fields = dict(idempotency_key=key, request_fingerprint=fingerprint, memo=memo,
                  status="active" if kind == "hold" else None,
                  expires_at=_hold_deadline(now, expires_at) if kind == "hold" else None)
    if postgres and key is None:
        with _unit(True):
            row = _draw_and_post_pg(uid, kind, amount, now, fields, lock=True) or _refuse(uid, amount, now)
        return _entity(row)  # built after the commit, so the lock is not held while Python works
    with _unit(True):
        verified = lock_user(uid)
        previous = _replay(uid, key, fingerprint)
        if previous is not None:
            return previous
        if not verified:
            raise ApiError(403, "Verify your email address before spending credits.", code="email_not_verified")
        if not postgres:
            return _post(uid, kind, amount, now, allocations=_draw(uid, amount, now), **fields)
        row = _draw_and_post_pg(uid, kind, amount, now, fields) or _refuse(uid, amount, now)
    return _entity(row)


# The PostgreSQL hot path. After the user's row is locked, ONE statement (with a fresh READ COMMITTED snapshot,
# so it sees every earlier lock holder's commit) checks the user is verified, picks the soonest-expiring credits,
# draws them with guarded updates and posts the debit with its allocations; it inserts nothing when the user is
# unverified or short of credits. It does what _draw + _post do in one round trip instead of three. Without an
# idempotency key to check first, the lock is sent in the same query string as a separate statement (each
# statement still takes its own snapshot), so the lock is held for one round trip plus the commit, like a bare
# `UPDATE ... WHERE balance >= n`.
_KIND_LIST = ", ".join(f"'{k}'" for k in CREDIT_KINDS)
_LOCK_SQL = "SELECT 1 FROM users WHERE id = :user_id FOR NO KEY UPDATE;\n"
_DRAW_AND_POST_SQL = f"""
WITH live AS (
    SELECT id, remaining,
           COALESCE(SUM(remaining) OVER (ORDER BY expires_at ASC NULLS LAST, id
                                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before,
           SUM(remaining) OVER () AS available
    FROM transactions
    WHERE user_id = :user_id AND kind IN ({_KIND_LIST}) AND remaining > 0
      AND (expires_at IS NULL OR expires_at > :now)
), take AS (
    SELECT id, before, LEAST(remaining, :amount - before) AS amount
    FROM live WHERE before < :amount AND available >= :amount
      AND EXISTS (SELECT 1 FROM users WHERE id = :user_id AND is_verified)
), moved AS (
    UPDATE transactions AS t SET remaining = t.remaining - take.amount
    FROM take WHERE t.id = take.id AND t.remaining >= take.amount
    RETURNING t.id, take.amount, take.before
)
INSERT INTO transactions (public_id, user_id, kind, amount, allocations, status, expires_at, idempotency_key,
                          request_fingerprint, memo, created_at)
SELECT CAST(:public_id AS uuid), :user_id, :kind, :amount,
       json_agg(json_build_object('entry', id, 'amount', amount) ORDER BY before),
       :status, :expires_at, :idempotency_key, :request_fingerprint, :memo, :now
FROM moved HAVING COALESCE(SUM(amount), 0) = :amount
RETURNING *
"""
_DRAW_AND_POST = text(_DRAW_AND_POST_SQL).columns(*T.__table__.columns)
_LOCK_DRAW_AND_POST = text(_LOCK_SQL + _DRAW_AND_POST_SQL).columns(*T.__table__.columns)


def _draw_and_post_pg(user_id: int, kind: str, amount: int, now: datetime, fields: dict,
                      lock: bool = False) -> dict | None:
    params = {"user_id": user_id, "kind": kind, "amount": amount, "now": now, "public_id": str(uuid.uuid4()),
              **fields}
    statement = _LOCK_DRAW_AND_POST if lock else _DRAW_AND_POST
    row = db.session.execute(statement, params).mappings().one_or_none()
    return dict(row) if row is not None else None


def _entity(row: dict) -> Transaction:
    """The posted entry as a persistent ORM object, from the row the statement returned (no query)."""
    entry = T(**row)
    make_transient_to_detached(entry)
    db.session.add(entry)
    return entry


def _refuse(user_id: int, amount: int, now: datetime):
    """Say why a debit posted nothing (the user's row is still locked, so the answer is exact)."""
    if not lock_user(user_id):
        raise ApiError(403, "Verify your email address before spending credits.", code="email_not_verified")
    available = db.session.scalar(select(func.coalesce(func.sum(T.remaining), 0))
                                  .where(*_live_credit_filter(user_id, now)))
    if available >= amount:
        raise RuntimeError(f"credits of user {user_id} changed under a held lock")
    raise ApiError(402, f"This needs {amount} credits and {available} are available.", code="insufficient_credits")


def _locked_hold(hold_id: int) -> Transaction:
    user_id = db.session.scalar(select(T.user_id).where(T.id == hold_id, T.kind == "hold"))
    if user_id is None:
        raise ApiError(404, "No such credit hold.")
    lock_user(user_id)
    return db.session.execute(select(T).where(T.id == hold_id).execution_options(populate_existing=True)).scalar_one()


def _children(hold_entry: Transaction, kind: str) -> list[Transaction]:
    return list(db.session.scalars(select(T).where(T.hold_id == hold_entry.id, T.kind == kind).order_by(T.id)))


def _set_status(hold_entry: Transaction, status: str, now: datetime) -> None:
    result = db.session.execute(
        update(T).where(T.id == hold_entry.id, T.status == "active").values(status=status, settled_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise RuntimeError(f"hold {hold_entry.id} settled under a held lock")
    db.session.refresh(hold_entry)


def _give_back(hold_entry: Transaction, allocations: list[dict], now: datetime, memo: str | None,
               key: str | None = None, fingerprint: str | None = None) -> None:
    for allocation in allocations:
        _move(allocation["entry"], allocation["amount"])
    _post(hold_entry.user_id, "release", sum(a["amount"] for a in allocations), now, hold_id=hold_entry.id,
          allocations=allocations, memo=memo, idempotency_key=key, request_fingerprint=fingerprint)


def _split(allocations: list[dict], amount: int) -> tuple[list[dict], list[dict]]:
    """Split a hold's allocations into the first `amount` credits (kept) and the rest (given back)."""
    kept, returned, left = [], [], amount
    for allocation in allocations:
        keep = min(left, allocation["amount"])
        if keep:
            kept.append({"entry": allocation["entry"], "amount": keep})
        if allocation["amount"] - keep:
            returned.append({"entry": allocation["entry"], "amount": allocation["amount"] - keep})
        left -= keep
    return kept, returned


def capture(hold_id: int, amount: int | None = None, *, idempotency_key: str | None = None,
            memo: str | None = None, now: datetime | None = None) -> Transaction:
    """Charge `amount` (default: all) of an active hold and give back the rest; returns the settled hold.

    Capturing 0 is a release. Repeating the same capture returns the settled hold; a different amount after
    settlement, or any capture of a released hold, is a 409 (work on a released hold is never charged).
    """
    now = now or utcnow()
    _check_key(idempotency_key)
    if amount is not None:
        _check_amount(amount, allow_zero=True)
    with _unit(True):
        hold_entry = _locked_hold(hold_id)
        amount = hold_entry.amount if amount is None else amount
        if amount > hold_entry.amount:
            raise ApiError(422, f"Cannot capture {amount} credits from a hold of {hold_entry.amount}.", field="amount")
        fingerprint = _fingerprint("capture", hold=hold_entry.id, amount=amount)
        if _replay(hold_entry.user_id, idempotency_key, fingerprint) is not None:
            return hold_entry
        if hold_entry.status == "captured":
            if sum(c.amount for c in _children(hold_entry, "capture")) == amount:
                return hold_entry
            raise ApiError(409, "This hold was already captured for a different amount.", code="hold_settled")
        if hold_entry.status == "released":
            if amount == 0:
                return hold_entry
            raise ApiError(409, "This hold was already released; nothing can be charged.", code="hold_released")
        if amount == 0:
            _give_back(hold_entry, hold_entry.allocations, now, memo, idempotency_key, fingerprint)
            _set_status(hold_entry, "released", now)
            return hold_entry
        kept, returned = _split(hold_entry.allocations, amount)
        _post(hold_entry.user_id, "capture", amount, now, hold_id=hold_entry.id, allocations=kept, memo=memo,
              idempotency_key=idempotency_key, request_fingerprint=fingerprint)
        if returned:
            _give_back(hold_entry, returned, now, memo)
        _set_status(hold_entry, "captured", now)
        return hold_entry


def release(hold_id: int, *, idempotency_key: str | None = None, memo: str | None = None,
            now: datetime | None = None) -> Transaction:
    """Give an active hold back in full (the work failed); releasing twice is harmless, after capture a 409."""
    now = now or utcnow()
    _check_key(idempotency_key)
    with _unit(True):
        hold_entry = _locked_hold(hold_id)
        fingerprint = _fingerprint("release", hold=hold_entry.id)
        if _replay(hold_entry.user_id, idempotency_key, fingerprint) is not None:
            return hold_entry
        if hold_entry.status == "released":
            return hold_entry
        if hold_entry.status == "captured":
            raise ApiError(409, "This hold was already captured.", code="hold_settled")
        _give_back(hold_entry, hold_entry.allocations, now, memo, idempotency_key, fingerprint)
        _set_status(hold_entry, "released", now)
        return hold_entry


@dataclass
class Reservation:
    """A hold being used by a piece of work; call charge(n) to capture n instead of the whole hold."""

    hold_id: int
    amount: int
    charged: int | None = None

    def charge(self, amount: int) -> None:
        """Capture `amount` (≤ the hold) when the block ends without an error."""
        self.charged = _check_amount(amount, allow_zero=True)


@contextmanager
def reserved(user: User | int, amount: int, *, idempotency_key: str | None = None,
             memo: str | None = None) -> Iterator[Reservation]:
    """Hold credits for a block of work: an exception releases them all, otherwise the charge is captured."""
    entry = hold(user, amount, idempotency_key=idempotency_key, memo=memo)
    reservation = Reservation(hold_id=entry.id, amount=entry.amount)
    try:
        yield reservation
    except BaseException:
        db.session.rollback()
        release(reservation.hold_id, memo=memo)
        raise
    capture(reservation.hold_id, reservation.amount if reservation.charged is None else reservation.charged,
            memo=memo)


# ------------------------------------------------------------------------------------------ housekeeping

def expire_due(now: datetime | None = None) -> int:
    """Post an `expire` entry for what is left on every expired credit entry; returns how many were posted."""
    now = now or utcnow()
    due = db.session.execute(
        select(T.id, T.user_id).where(T.kind.in_(CREDIT_KINDS), T.remaining > 0, T.expires_at <= now)
        .order_by(T.expires_at, T.id)
    ).all()
    db.session.rollback()
    posted = 0
    for entry_id, user_id in due:
        with _unit(True):
            lock_user(user_id)
            left = db.session.scalar(select(T.remaining).where(T.id == entry_id))
            if left:
                _move(entry_id, -left)
                _post(user_id, "expire", left, now, allocations=[{"entry": entry_id, "amount": left}],
                      memo="credits expired")
                posted += 1
    return posted


def _deadline(hold_entry: Transaction, timeout: timedelta) -> datetime:
    """When an active hold becomes stale: its expires_at, or created_at + timeout for rows without one."""
    return hold_entry.expires_at or hold_entry.created_at + timeout


def extend_hold(hold_id: int, until: datetime) -> Transaction:
    """Move an active hold's deadline forward to `until` (long work that is still alive); never moves it back.

    A captured or released hold is returned unchanged, so a late heartbeat is harmless; check its status.
    """
    with _unit(True):
        hold_entry = _locked_hold(hold_id)
        timeout = timedelta(minutes=_settings().hold_timeout_minutes)
        if hold_entry.status == "active" and until > _deadline(hold_entry, timeout):
            db.session.execute(update(T).where(T.id == hold_entry.id, T.status == "active").values(expires_at=until)
                               .execution_options(synchronize_session=False))
            db.session.refresh(hold_entry)
        return hold_entry


def sweep_stale_holds(now: datetime | None = None, timeout_minutes: int | None = None) -> int:
    """Release every active hold whose deadline has passed; returns how many this run released.

    Holds without a deadline (rows from before deadlines existed) are stale `timeout_minutes` (default
    hold_timeout_minutes) after they were taken.
    """
    now = now or utcnow()
    minutes = _settings().hold_timeout_minutes if timeout_minutes is None else timeout_minutes
    timeout = timedelta(minutes=minutes)
    stale = db.session.scalars(
        select(T.id).where(T.kind == "hold", T.status == "active",
                           or_(T.expires_at <= now, and_(T.expires_at.is_(None), T.created_at <= now - timeout)))
        .order_by(T.id)
    ).all()
    db.session.rollback()
    swept = 0
    for hold_id in stale:
        with _unit(True):
            hold_entry = _locked_hold(hold_id)
            # Re-checked under the lock: the job may have extended the hold since the scan.
            if hold_entry.status == "active" and _deadline(hold_entry, timeout) <= now:
                _give_back(hold_entry, hold_entry.allocations, now, "released by the sweeper: never settled")
                _set_status(hold_entry, "released", now)
                swept += 1
    return swept


# ----------------------------------------------------------------------------------------------- reading

def balance(user: User | int, now: datetime | None = None) -> dict:
    """What a user has: spendable balance, credits held for running work, and what expires next."""
    uid, now = _user_id(user), now or utcnow()
    live = db.session.execute(
        select(T.expires_at, func.sum(T.remaining)).where(*_live_credit_filter(uid, now))
        .group_by(T.expires_at).order_by(T.expires_at.asc().nulls_last())
    ).all()
    held = db.session.scalar(
        select(func.coalesce(func.sum(T.amount), 0)).where(T.user_id == uid, T.kind == "hold", T.status == "active")
    )
    expiring = [{"expires_at": at, "amount": int(total)} for at, total in live if at is not None]
    return {
        "balance": sum(int(total) for _, total in live),
        "held": int(held),
        "next_expiry": expiring[0]["expires_at"] if expiring else None,
        "expiring_amount": expiring[0]["amount"] if expiring else 0,
        "expiring": expiring,
    }


def signed_amount(entry: Transaction) -> int:
    """The entry's effect on the user's credits: + for credits and releases, - for spends, holds, expiry."""
    return SIGN[entry.kind] * entry.amount


def _encode_cursor(entry: Transaction) -> str:
    raw = f"{entry.id}@{entry.created_at.astimezone(timezone.utc).isoformat()}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        entry_id, _, stamp = raw.partition("@")
        created_at = datetime.fromisoformat(stamp)
        if created_at.tzinfo is None:
            raise ValueError
        return created_at, int(entry_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(422, "'cursor' is not a cursor this API gave out.", field="cursor") from None


def ledger_page(user: User | int, limit: int = 20, cursor: str | None = None) -> tuple[list[Transaction], str | None]:
    """One page of the user's entries, newest first, and the cursor of the next page (None at the end)."""
    query = select(T).where(T.user_id == _user_id(user))
    if cursor:
        query = query.where(tuple_(T.created_at, T.id) < tuple_(*_decode_cursor(cursor)))
    # (user_id, created_at) is indexed, so a page costs the same however long the ledger is.
    entries = list(db.session.scalars(query.order_by(T.created_at.desc(), T.id.desc()).limit(limit + 1)))
    more = len(entries) > limit
    entries = entries[:limit]
    return entries, (_encode_cursor(entries[-1]) if more and entries else None)


def hold_public_ids(entries: list[Transaction]) -> dict[int, str]:
    """Public ids of the holds these entries settle, for serializing without exposing integer keys."""
    ids = {e.hold_id for e in entries if e.hold_id}
    if not ids:
        return {}
    return {row.id: str(row.public_id) for row in db.session.execute(select(T.id, T.public_id).where(T.id.in_(ids)))}


# ----------------------------------------------------------------------------------------------- audit

def audit(now: datetime | None = None, user: User | int | None = None):
    """Recompute every balance from the entries and check every invariant (see app.services.credit_audit)."""
    from app.services import credit_audit

    return credit_audit.audit(now, user)
