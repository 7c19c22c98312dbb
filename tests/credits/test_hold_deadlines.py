"""Hold deadlines: a hold is stale only once its deadline (expires_at) passes; long work moves it forward with
extend_hold, which never moves it back and leaves settled holds alone."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from app.extensions import db
from app.models import Transaction
from app.services import credits
from tests.credits.conftest import T0, run_concurrently

TIMEOUT = timedelta(minutes=30)  # hold_timeout_minutes in the test settings


def _hold(hold_id: int) -> Transaction:
    return db.session.execute(select(Transaction).where(Transaction.id == hold_id)
                              .execution_options(populate_existing=True)).scalar_one()


def _releases(hold_id: int) -> int:
    return db.session.scalar(select(func.count()).where(Transaction.hold_id == hold_id,
                                                        Transaction.kind == "release"))


def test_a_hold_gets_a_deadline_and_a_longer_one_only_when_asked(ctx, make_user):
    uid = make_user()
    credits.grant(uid, 30, now=T0)
    plain = credits.hold(uid, 5, now=T0)
    long = credits.hold(uid, 5, now=T0, expires_at=T0 + timedelta(hours=6))
    short = credits.hold(uid, 5, now=T0, expires_at=T0 + timedelta(minutes=1))  # never shorter than the timeout
    assert plain.expires_at == T0 + TIMEOUT and short.expires_at == T0 + TIMEOUT
    assert long.expires_at == T0 + timedelta(hours=6)
    assert credits.sweep_stale_holds(now=T0 + TIMEOUT + timedelta(minutes=1)) == 2
    assert _hold(long.id).status == "active" and credits.balance(uid, now=T0)["held"] == 5
    assert credits.audit(now=T0 + TIMEOUT).ok


def test_an_extended_hold_outlives_the_timeout_and_one_left_alone_is_swept_exactly_once(app, ctx, make_user):
    uid = make_user()
    credits.grant(uid, 20, now=T0)
    working = credits.hold(uid, 8, now=T0).id
    forgotten = credits.hold(uid, 4, now=T0).id
    # The job's heartbeats: each moves the deadline a timeout ahead of "now".
    for minutes in (20, 40, 60):
        credits.extend_hold(working, T0 + timedelta(minutes=minutes) + TIMEOUT)
    sweep_at = T0 + timedelta(minutes=75)  # both are 75 minutes old
    results = run_concurrently(app, 2, lambda _: credits.sweep_stale_holds(now=sweep_at))
    assert sum(results) == 1 and credits.sweep_stale_holds(now=sweep_at) == 0
    assert _hold(working).status == "active" and _hold(forgotten).status == "released"
    assert _releases(forgotten) == 1 and _releases(working) == 0
    assert credits.balance(uid, now=sweep_at)["balance"] == 12
    # The job finishes and is charged from its hold, as if it had never been old.
    credits.capture(working, 6, now=sweep_at)
    assert credits.balance(uid, now=sweep_at) | {"expiring": None, "next_expiry": None} == {
        "balance": 14, "held": 0, "next_expiry": None, "expiring_amount": 14, "expiring": None}
    # Once the last extension's deadline passes without a heartbeat, the job is presumed dead.
    other = credits.hold(uid, 2, now=sweep_at).id
    credits.extend_hold(other, sweep_at + timedelta(hours=2))
    assert credits.sweep_stale_holds(now=sweep_at + timedelta(hours=2, seconds=1)) == 1
    assert credits.audit(now=sweep_at + timedelta(hours=3)).ok


def test_extend_never_moves_a_deadline_back_and_leaves_settled_holds_alone(ctx, make_user):
    uid = make_user()
    credits.grant(uid, 20, now=T0)
    active = credits.hold(uid, 5, now=T0).id
    credits.extend_hold(active, T0 + timedelta(hours=2))
    credits.extend_hold(active, T0 + timedelta(hours=2))  # a repeated heartbeat
    credits.extend_hold(active, T0 + timedelta(minutes=40))  # a late, older heartbeat
    assert _hold(active).expires_at == T0 + timedelta(hours=2)

    captured, released = credits.hold(uid, 5, now=T0).id, credits.hold(uid, 5, now=T0).id
    credits.capture(captured, 3, now=T0)
    credits.release(released, now=T0)
    before = credits.balance(uid, now=T0)
    for hold_id in (captured, released):
        entry = credits.extend_hold(hold_id, T0 + timedelta(days=1))
        assert entry.status in ("captured", "released") and entry.expires_at == T0 + TIMEOUT
    assert credits.balance(uid, now=T0) == before
    assert db.session.scalar(select(func.count()).where(Transaction.user_id == uid)) == 7  # nothing posted
    assert credits.sweep_stale_holds(now=T0 + timedelta(days=2)) == 1  # only the active one, once its time came
    assert credits.audit(now=T0 + timedelta(days=2)).ok


def test_holds_without_a_deadline_fall_back_to_their_age(ctx, make_user):
    uid = make_user()
    credits.grant(uid, 20, now=T0)
    old, extended = credits.hold(uid, 5, now=T0).id, credits.hold(uid, 5, now=T0).id
    # Rows taken before holds had deadlines.
    db.session.execute(update(Transaction).where(Transaction.id.in_([old, extended])).values(expires_at=None))
    db.session.commit()
    credits.extend_hold(extended, T0 + timedelta(minutes=10))  # earlier than created_at + timeout: no change
    assert _hold(extended).expires_at is None
    credits.extend_hold(extended, T0 + timedelta(hours=1))
    assert credits.sweep_stale_holds(now=T0 + TIMEOUT - timedelta(seconds=1)) == 0
    assert credits.sweep_stale_holds(now=T0 + TIMEOUT + timedelta(seconds=1)) == 1
    assert _hold(old).status == "released" and _hold(extended).status == "active"
    assert credits.audit(now=T0 + TIMEOUT).ok


def test_deadlines_work_on_sqlite_too(settings_overrides, tmp_path):
    from app import create_app
    from app.models import User
    from app.services import migrations

    url = f"sqlite:///{tmp_path / 'local.db'}"
    migrations.upgrade(url)
    app = create_app({**settings_overrides, "database_url": url})
    with app.app_context():
        user = User(email="local@example.com", password_hash="x", referral_code="local-code", is_verified=True)
        db.session.add(user)
        db.session.commit()
        credits.grant(user.id, 10, now=T0)
        kept, dropped = credits.hold(user.id, 4, now=T0).id, credits.hold(user.id, 3, now=T0).id
        credits.extend_hold(kept, T0 + timedelta(hours=1))
        assert credits.sweep_stale_holds(now=T0 + timedelta(minutes=45)) == 1
        assert (_hold(kept).status, _hold(dropped).status) == ("active", "released")
        assert credits.audit(now=T0 + timedelta(minutes=45)).ok
        db.session.remove()
        db.engine.dispose()
