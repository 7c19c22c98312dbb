"""The ledger on PostgreSQL: spending order, idempotency, holds and their settlement, expiry, the audit."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.errors import ApiError
from app.extensions import db
from app.models import Transaction
from app.services import credits
from tests.credits.conftest import T0, run_concurrently


def entries(user_id: int, kind: str | None = None) -> list[Transaction]:
    query = select(Transaction).where(Transaction.user_id == user_id).order_by(Transaction.id)
    if kind:
        query = query.where(Transaction.kind == kind)
    return list(db.session.scalars(query))


def test_spending_takes_the_credits_that_expire_first(ctx, make_user):
    uid = make_user()
    late = credits.grant(uid, 10, expires_in_days=30, now=T0)
    early = credits.grant(uid, 10, expires_in_days=1, now=T0)
    spent = credits.spend(uid, 12, memo="two images", now=T0)
    assert spent.allocations == [{"entry": early.id, "amount": 10}, {"entry": late.id, "amount": 2}]
    db.session.refresh(early), db.session.refresh(late)
    assert (early.remaining, late.remaining) == (0, 8)
    assert credits.balance(uid, now=T0)["balance"] == 8
    assert credits.audit().ok


def test_balance_summary_reports_held_and_next_expiry(ctx, make_user):
    uid = make_user()
    credits.grant(uid, 5, expires_in_days=1, now=T0)
    credits.grant(uid, 7, expires_in_days=30, now=T0)
    credits.hold(uid, 3, now=T0)
    summary = credits.balance(uid, now=T0)
    assert summary["balance"] == 9 and summary["held"] == 3
    assert summary["next_expiry"] == T0 + timedelta(days=1) and summary["expiring_amount"] == 2
    # Once the first grant has expired it no longer counts, even before the expiry job has run.
    assert credits.balance(uid, now=T0 + timedelta(days=2))["balance"] == 7


def test_insufficient_credits_is_402_and_changes_nothing(ctx, make_user):
    uid = make_user()
    credits.grant(uid, 3, now=T0)
    with pytest.raises(ApiError) as raised:
        credits.spend(uid, 4, now=T0)
    assert (raised.value.status, raised.value.code) == (402, "insufficient_credits")
    assert credits.balance(uid, now=T0)["balance"] == 3 and entries(uid, "spend") == []


def test_unverified_users_cannot_spend_or_hold(ctx, make_user):
    uid = make_user(verified=False)
    credits.grant(uid, 10, now=T0)
    for operation in (credits.spend, credits.hold):
        with pytest.raises(ApiError) as raised:
            operation(uid, 1, now=T0)
        assert (raised.value.status, raised.value.code) == (403, "email_not_verified")
    assert credits.balance(uid, now=T0)["balance"] == 10


def test_same_idempotency_key_returns_the_first_result_and_different_parameters_conflict(ctx, make_user):
    uid = make_user()
    first_grant = credits.grant(uid, 10, idempotency_key="grant-1", now=T0)
    assert credits.grant(uid, 10, idempotency_key="grant-1", now=T0).id == first_grant.id
    first = credits.spend(uid, 2, idempotency_key="job-1", now=T0)
    again = credits.spend(uid, 2, idempotency_key="job-1", now=T0)
    assert again.id == first.id and credits.balance(uid, now=T0)["balance"] == 8
    for call in (lambda: credits.spend(uid, 3, idempotency_key="job-1", now=T0),
                 lambda: credits.hold(uid, 2, idempotency_key="job-1", now=T0),
                 lambda: credits.grant(uid, 11, idempotency_key="grant-1", now=T0)):
        with pytest.raises(ApiError) as raised:
            call()
        assert raised.value.status == 409
    held = credits.hold(uid, 4, idempotency_key="hold-1", now=T0)
    assert credits.hold(uid, 4, idempotency_key="hold-1", now=T0).id == held.id
    credits.capture(held.id, 3, idempotency_key="cap-1", now=T0)
    assert credits.capture(held.id, 3, idempotency_key="cap-1", now=T0).status == "captured"
    with pytest.raises(ApiError) as raised:
        credits.capture(held.id, 2, idempotency_key="cap-1", now=T0)
    assert raised.value.status == 409
    assert credits.balance(uid, now=T0)["balance"] == 5 and credits.audit().ok


def test_partial_capture_charges_that_much_and_refunds_the_rest(ctx, make_user):
    uid = make_user()
    credits.grant(uid, 10, now=T0)
    held = credits.hold(uid, 8, memo="4 images", now=T0)
    assert credits.balance(uid, now=T0) | {"expiring": None} == {
        "balance": 2, "held": 8, "next_expiry": T0 + timedelta(days=30), "expiring_amount": 2, "expiring": None}
    settled = credits.capture(held.id, 6, now=T0)  # 3 of 4 images delivered
    assert settled.status == "captured"
    assert credits.balance(uid, now=T0)["balance"] == 4 and credits.balance(uid, now=T0)["held"] == 0
    assert [e.amount for e in entries(uid, "capture")] == [6] and [e.amount for e in entries(uid, "release")] == [2]
    assert credits.capture(held.id, 6, now=T0).id == held.id  # a retried capture charges nothing more
    with pytest.raises(ApiError) as raised:
        credits.release(held.id, now=T0)
    assert raised.value.status == 409
    assert credits.balance(uid, now=T0)["balance"] == 4 and credits.audit().ok


def test_release_after_failure_restores_the_balance_exactly(ctx, make_user):
    uid = make_user()
    early = credits.grant(uid, 3, expires_in_days=1, now=T0)
    credits.grant(uid, 10, expires_in_days=30, now=T0)
    held = credits.hold(uid, 5, now=T0)
    credits.release(held.id, memo="GPU failed", idempotency_key="release-1", now=T0)
    assert credits.release(held.id, idempotency_key="release-1", now=T0).status == "released"
    credits.release(held.id, now=T0)  # releasing twice gives nothing back twice
    with pytest.raises(ApiError) as raised:
        credits.spend(uid, 1, idempotency_key="release-1", now=T0)
    assert raised.value.status == 409
    assert credits.balance(uid, now=T0)["balance"] == 13 and credits.balance(uid, now=T0)["held"] == 0
    db.session.refresh(early)
    assert early.remaining == 3  # the credits went back to the grants they came from
    with pytest.raises(ApiError) as raised:
        credits.capture(held.id, 1, now=T0)
    assert (raised.value.status, raised.value.code) == (409, "hold_released")
    assert credits.capture(held.id, 0, now=T0).status == "released"  # capturing nothing is a release
    assert credits.audit().ok


def test_capture_of_nothing_releases_and_capture_above_the_hold_is_refused(ctx, make_user):
    uid = make_user()
    credits.grant(uid, 10, now=T0)
    held = credits.hold(uid, 4, now=T0)
    with pytest.raises(ApiError) as raised:
        credits.capture(held.id, 5, now=T0)
    assert raised.value.status == 422
    assert credits.capture(held.id, 0, now=T0).status == "released"
    assert credits.balance(uid, now=T0)["balance"] == 10 and credits.audit().ok


def test_reserved_block_captures_on_success_and_releases_on_error(ctx, make_user):
    uid = make_user()
    credits.grant(uid, 10)
    with credits.reserved(uid, 4, memo="render") as reservation:
        reservation.charge(3)
    assert credits.balance(uid)["balance"] == 7
    with pytest.raises(RuntimeError):
        with credits.reserved(uid, 5, memo="render"):
            raise RuntimeError("GPU host fell over")
    assert credits.balance(uid)["balance"] == 7 and credits.balance(uid)["held"] == 0
    assert credits.audit().ok


def test_expiry_posts_what_is_left_once_even_when_two_runs_race(app, ctx, make_user):
    uid = make_user()
    day1 = credits.grant(uid, 10, expires_in_days=1, now=T0)
    credits.grant(uid, 10, expires_in_days=30, now=T0)
    credits.spend(uid, 4, now=T0)  # drawn from the day-1 grant
    later = T0 + timedelta(days=2)
    results = run_concurrently(app, 2, lambda _: credits.expire_due(now=later))
    assert sorted(results) == [0, 1]
    expired = entries(uid, "expire")
    assert [(e.amount, e.allocations) for e in expired] == [(6, [{"entry": day1.id, "amount": 6}])]
    assert credits.expire_due(now=later) == 0
    assert credits.balance(uid, now=later)["balance"] == 10
    assert credits.audit(now=later).ok


def test_stale_holds_are_swept_exactly_once_by_racing_sweepers(app, ctx, make_user):
    uid = make_user()
    credits.grant(uid, 50, now=T0)
    stale = [credits.hold(uid, 5, now=T0).id for _ in range(4)]
    fresh = credits.hold(uid, 5, now=T0 + timedelta(minutes=25)).id
    sweep_at = T0 + timedelta(minutes=31)
    results = run_concurrently(app, 2, lambda _: credits.sweep_stale_holds(now=sweep_at))
    assert sum(results) == 4
    assert db.session.scalar(select(func.count()).where(Transaction.kind == "release")) == 4
    statuses = {h.id: h.status for h in entries(uid, "hold")}
    assert all(statuses[h] == "released" for h in stale) and statuses[fresh] == "active"
    assert credits.balance(uid, now=sweep_at) | {"expiring": None, "next_expiry": None} == {
        "balance": 45, "held": 5, "next_expiry": None, "expiring_amount": 45, "expiring": None}
    assert credits.audit(now=sweep_at).ok


def test_hundred_concurrent_spends_against_ten_credits(app, ctx, make_user):
    uid = make_user()
    credits.grant(uid, 10)
    results = run_concurrently(app, 100, lambda i: credits.spend(uid, 1, memo=f"request {i}").id)
    succeeded = [r for r in results if isinstance(r, int)]
    failures = [r for r in results if not isinstance(r, int)]
    assert len(succeeded) == 10 and len(set(succeeded)) == 10
    assert len(failures) == 90 and all(isinstance(f, ApiError) and f.status == 402 for f in failures)
    assert credits.balance(uid)["balance"] == 0
    assert credits.audit().ok


def test_ledger_works_on_sqlite_too(settings_overrides, tmp_path):
    from app import create_app
    from app.services import migrations

    url = f"sqlite:///{tmp_path / 'local.db'}"
    migrations.upgrade(url)
    app = create_app({**settings_overrides, "database_url": url})
    from app.models import User

    with app.app_context():
        user = User(email="local@example.com", password_hash="x", referral_code="local-code", is_verified=True)
        db.session.add(user)
        db.session.commit()
        credits.grant(user.id, 10)
        held = credits.hold(user.id, 4)
        credits.capture(held.id, 1)
        results = run_concurrently(app, 12, lambda _: credits.spend(user.id, 1).id)
        assert sum(isinstance(r, int) for r in results) == 9
        assert credits.balance(user.id)["balance"] == 0 and credits.audit().ok
        db.session.remove()
        db.engine.dispose()
