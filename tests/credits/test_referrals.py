"""Referrals and rewards: recording at sign-up, abuse (self, second referrer, races, early triggers), caps, catch-up."""
from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import signals
from app.errors import ApiError
from app.extensions import db
from app.models import Referral, Transaction, User
from app.services import accounts, credits, referrals, rewards
from tests.credits.conftest import run_concurrently

PASSWORD = "a long and unusual passphrase 42"


@pytest.fixture
def settings_overrides(settings_overrides):
    return {**settings_overrides, "signup_bonus_credits": 5}


def sign_up(email: str, code: str | None = None, verified: bool = False) -> User:
    return accounts.register(email, PASSWORD, code, verified=verified, send_email=False)


def rewards_of(user_id: int) -> list[tuple[int, int]]:
    """(rule id, amount) of each referral reward a user received."""
    return [(e.reward_id, e.amount) for e in db.session.scalars(
        select(Transaction).where(Transaction.user_id == user_id, Transaction.kind == "referral_reward")
        .order_by(Transaction.id))]


def test_sign_up_through_a_code_records_the_referral_and_grants_the_bonus(ctx):
    referrer = sign_up("ref@example.com", verified=True)
    friend = sign_up("friend@example.com", referrer.referral_code)
    referral = db.session.scalar(select(Referral).where(Referral.referred_id == friend.id))
    assert referral.referrer_id == referrer.id
    assert credits.balance(friend)["balance"] == 5 and credits.balance(referrer)["balance"] == 5
    assert referrals.summary(referrer)["referred"][0]["email"].endswith("@example.com")
    assert referrals.summary(referrer)["link"] == f"http://atelier.test/r/{referrer.referral_code}"


def test_unknown_code_aborts_the_sign_up_leaving_no_account(ctx):
    with pytest.raises(ApiError) as raised:
        sign_up("nobody@example.com", "not-a-code")
    assert (raised.value.status, raised.value.field) == (422, "referral_code")
    assert accounts.find_user_by_email("nobody@example.com") is None


def test_no_self_referral_and_no_second_referrer(ctx):
    alice = sign_up("alice@example.com", verified=True)
    bob = sign_up("bob@example.com", verified=True)
    carol = sign_up("carol@example.com", alice.referral_code)
    with pytest.raises(ApiError) as raised:
        referrals.record_referral(alice, alice.referral_code)
    assert raised.value.status == 422
    with pytest.raises(ApiError) as raised:
        referrals.record_referral(carol, bob.referral_code)
    assert raised.value.status == 409
    db.session.rollback()
    db.session.add(Referral(referrer_id=bob.id, referred_id=carol.id, code_used=bob.referral_code))
    with pytest.raises(IntegrityError):  # the database refuses a second referrer even if the check is skipped
        db.session.commit()
    db.session.rollback()
    assert db.session.scalars(select(Referral.referrer_id).where(Referral.referred_id == carol.id)).all() == [alice.id]


def test_triggers_before_verification_pay_nothing_until_the_user_verifies(ctx):
    on_verify = rewards.add_rule("welcome", "verified", 10, "referrer")
    on_generate = rewards.add_rule("first-image", "first_generation", 3, "both")
    referrer = sign_up("ref@example.com", verified=True)
    friend = sign_up("friend@example.com", referrer.referral_code)
    signals.generation_succeeded.send(friend, kind="image")
    signals.user_verified.send(friend)  # a stray signal for an unverified user pays nothing either
    db.session.commit()
    assert rewards.run_all() == 0
    assert rewards_of(referrer.id) == [] and rewards_of(friend.id) == []
    accounts.verify_user("friend@example.com")
    assert rewards_of(referrer.id) == [(on_verify.id, 10), (on_generate.id, 3)]
    assert rewards_of(friend.id) == [(on_generate.id, 3)]
    signals.generation_succeeded.send(friend, kind="image")
    db.session.commit()
    assert rewards.run_all() == 0 and len(rewards_of(referrer.id)) == 2
    assert credits.audit().ok


def test_twenty_concurrent_triggers_pay_each_beneficiary_once(app, ctx):
    rule = rewards.add_rule("first-image", "first_generation", 7, "both")
    referrer = sign_up("ref@example.com", verified=True)
    friend = sign_up("friend@example.com", referrer.referral_code, verified=True)
    friend_id = friend.id

    def trigger(_):
        user = db.session.get(User, friend_id)
        signals.generation_succeeded.send(user, kind="image")
        db.session.commit()

    results = run_concurrently(app, 20, trigger)
    assert [r for r in results if r is not None] == []
    assert rewards_of(referrer.id) == [(rule.id, 7)] and rewards_of(friend_id) == [(rule.id, 7)]
    assert credits.audit().ok


def test_cap_per_referrer_limits_paid_referrals(ctx):
    rule = rewards.add_rule("welcome", "verified", 4, "referrer", cap_per_referrer=2)
    referrer = sign_up("ref@example.com", verified=True)
    for i in range(3):
        sign_up(f"friend{i}@example.com", referrer.referral_code)
        accounts.verify_user(f"friend{i}@example.com")
    assert rewards_of(referrer.id) == [(rule.id, 4), (rule.id, 4)]
    assert rewards.run_all() == 0


def test_rewards_run_catches_up_what_the_triggers_missed(ctx):
    referrer = sign_up("ref@example.com", verified=True)
    friend = sign_up("friend@example.com", referrer.referral_code)
    friend.is_verified = True  # verified without the signal, e.g. before the rule existed
    db.session.commit()
    rule = rewards.add_rule("welcome", "verified", 10, "both", expires_in_days=7)
    assert rewards.run_all() == 2
    assert rewards_of(referrer.id) == [(rule.id, 10)] and rewards_of(friend.id) == [(rule.id, 10)]
    assert rewards.run_all() == 0
    rewards.disable_rule("welcome")
    other = sign_up("other@example.com", referrer.referral_code, verified=True)
    assert rewards_of(other.id) == []


def test_purchase_seam_credits_once_per_provider_reference_and_fires_first_purchase(ctx):
    rule = rewards.add_rule("buyer", "first_purchase", 20, "referrer")
    referrer = sign_up("ref@example.com", verified=True)
    friend = sign_up("friend@example.com", referrer.referral_code, verified=True)
    first = credits.purchase(friend, 100, "pi_123")
    assert credits.purchase(friend, 100, "pi_123").id == first.id
    with pytest.raises(ApiError) as raised:
        credits.purchase(friend, 50, "pi_123")
    assert raised.value.status == 409
    assert credits.balance(friend)["balance"] == 105
    assert rewards_of(referrer.id) == [(rule.id, 20)]
    credits.purchase(friend, 100, "pi_456")
    assert rewards_of(referrer.id) == [(rule.id, 20)]
    assert credits.audit().ok


def test_reward_rules_are_validated(ctx):
    with pytest.raises(ApiError) as raised:
        rewards.add_rule("bad", "on_login", 5, "referrer")
    assert raised.value.field == "trigger"
    with pytest.raises(ApiError) as raised:
        rewards.add_rule("bad", "verified", 0, "referrer")
    assert raised.value.field == "amount"
    rewards.add_rule("ok", "verified", 5, "referred")
    with pytest.raises(ApiError) as raised:
        rewards.add_rule("ok", "verified", 5, "referred")
    assert raised.value.status == 409


def test_referral_link_redirects_to_sign_up_with_the_code(client):
    response = client.get("/r/abcDEF123_-x")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/signup?ref=abcDEF123_-x")
    assert "Set-Cookie" not in response.headers
