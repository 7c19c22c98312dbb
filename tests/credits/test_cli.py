"""`flask credits ...` and `flask rewards ...` through the CLI runner, including an audit that catches corruption."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from app.extensions import db
from app.models import Referral, Transaction, User, utcnow
from app.services import credits


def test_grant_show_and_audit(app, runner, make_user):
    make_user(email="ada@example.com")
    result = runner.invoke(args=["credits", "grant", "ADA@example.com", "25", "--expires-in", "3", "--memo", "beta"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("granted 25 credits to ada@example.com")
    shown = runner.invoke(args=["credits", "show", "ada@example.com"])
    assert "balance 25, held 0" in shown.output and "grant" in shown.output and "+25 beta" in shown.output
    assert runner.invoke(args=["credits", "grant", "nobody@example.com", "5"]).exit_code != 0
    assert runner.invoke(args=["credits", "grant", "ada@example.com", "0"]).exit_code != 0
    audit = runner.invoke(args=["credits", "audit"])
    assert audit.exit_code == 0 and "audit ok: 1 entries of 1 users" in audit.output


def test_audit_fails_naming_the_first_corrupted_entry(app, runner, make_user):
    uid = make_user()
    with app.app_context():
        grant = credits.grant(uid, 10)
        credits.spend(uid, 4)
        public_id = grant.public_id
        # Someone "fixes" a balance by hand: remaining no longer matches what the ledger drew.
        db.session.execute(update(Transaction).where(Transaction.id == grant.id).values(remaining=9))
        db.session.commit()
    result = runner.invoke(args=["credits", "audit"])
    assert result.exit_code == 1
    assert f"entry {public_id} (grant, user {uid})" in result.output
    assert "differs from the 4 credits the ledger drew" in result.output


def test_audit_catches_a_hold_settled_twice(app, runner, make_user):
    uid = make_user()
    with app.app_context():
        credits.grant(uid, 10)
        held = credits.hold(uid, 4)
        credits.capture(held.id, 4)
        db.session.add(Transaction(user_id=uid, kind="capture", amount=4, hold_id=held.id,
                                   allocations=held.allocations))
        db.session.commit()
    result = runner.invoke(args=["credits", "audit"])
    assert result.exit_code == 1 and "hold" in result.output and "captured 8" in result.output


def test_expire_and_sweep_holds_commands(app, runner, make_user):
    uid = make_user()
    with app.app_context():
        past = utcnow() - timedelta(days=40)
        credits.grant(uid, 10, expires_in_days=30, now=past)
        credits.grant(uid, 10)
        credits.hold(uid, 3, now=utcnow() - timedelta(hours=2))
    assert runner.invoke(args=["credits", "expire"]).output.strip() == "expired 1 credit entries"
    assert runner.invoke(args=["credits", "expire"]).output.strip() == "expired 0 credit entries"
    assert runner.invoke(args=["credits", "sweep-holds"]).output.strip() == "released 1 stale holds"
    assert runner.invoke(args=["credits", "sweep-holds"]).output.strip() == "released 0 stale holds"
    with app.app_context():
        assert credits.balance(uid)["balance"] == 10
    assert runner.invoke(args=["credits", "audit"]).exit_code == 0


def test_rewards_add_list_run_disable(app, runner, make_user):
    referrer, friend = make_user(), make_user()
    with app.app_context():
        code = db.session.get(User, referrer).referral_code
        db.session.add(Referral(referrer_id=referrer, referred_id=friend, code_used=code))
        db.session.commit()
    added = runner.invoke(args=["rewards", "add", "welcome", "--trigger", "verified", "--amount", "15",
                                "--to", "both", "--cap", "10", "--expires-in", "60"])
    assert added.exit_code == 0, added.output
    assert runner.invoke(args=["rewards", "add", "welcome", "--trigger", "verified", "--amount", "1",
                               "--to", "both"]).exit_code != 0
    listed = runner.invoke(args=["rewards", "list"]).output
    assert "welcome: on verified give 15 to both, expiry 60d, cap per referrer 10 [enabled]" in listed
    assert runner.invoke(args=["rewards", "run"]).output.strip() == "paid 2 rewards"
    assert runner.invoke(args=["rewards", "run"]).output.strip() == "paid 0 rewards"
    assert runner.invoke(args=["rewards", "disable", "welcome"]).exit_code == 0
    assert "[disabled]" in runner.invoke(args=["rewards", "list"]).output
    assert runner.invoke(args=["rewards", "disable", "missing"]).exit_code != 0
    with app.app_context():
        amounts = db.session.scalars(select(Transaction.amount).where(Transaction.kind == "referral_reward")).all()
    assert amounts == [15, 15]
